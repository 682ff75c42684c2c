"""Recipe configuration: dataclasses parsed by trl's ``TrlParser`` (every YAML field is also a CLI flag).

A recipe run is ``(script_args, grpo_args, model_args)``: the script arguments below (dataset, stages,
rewards and the ``sft_*`` overrides of stage 1), trl's ``GRPOConfig`` (all Trainer fields, used as is for
stage 2 and as the base of stage 1) and trl's ``ModelConfig`` with LoRA r=64, alpha=32 by default.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments
from trl import GRPOConfig, ModelConfig, SFTConfig, TrlParser

__all__ = [
    "STAGES",
    "RecipeArguments",
    "RetoucherArguments",
    "ReasonerArguments",
    "RecipeModelConfig",
    "RecipeConfigError",
    "parse_stages",
    "sft_config_from",
    "parse_recipe_args",
]

STAGES = ("sft", "grpo")


class RecipeConfigError(ValueError):
    """A recipe setting is invalid; the message names the field and the accepted values."""


@dataclass
class RecipeModelConfig(ModelConfig):
    """trl's ``ModelConfig`` with the recipes' LoRA defaults (r=64, alpha=32, all linear layers)."""

    use_peft: bool = field(default=True, metadata={"help": "Train a LoRA adapter (False: full fine-tuning)."})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scaling = alpha / r)."})
    lora_target_modules: list[str] | None = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "Modules that get LoRA adapters ('all-linear' = every linear layer)."},
    )


@dataclass
class RecipeArguments:
    """Script arguments shared by the recipes: data, stages, and stage-1 (SFT) overrides."""

    stages: str = field(
        default="sft,grpo",
        metadata={"help": "Comma-separated stages to run, in order: 'sft', 'grpo' or 'sft,grpo'."},
    )
    dataset_name: str = field(
        default="synthetic",
        metadata={"help": "'synthetic' (rlkit.data builders, no download), a `datasets.save_to_disk` folder, "
                          "a JSON/JSONL file, or a hub id."},
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split used for training."})
    dataset_test_split: str = field(default="test", metadata={"help": "Split used for evaluation."})
    synthetic_size: int = field(default=64, metadata={"help": "Rows of the synthetic dataset."})
    synthetic_seed: int = field(default=0, metadata={"help": "Seed of the synthetic dataset."})
    image_size: int = field(
        default=448, metadata={"help": "Images are resized so their longer side is this many pixels."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many rows."})
    sft_learning_rate: float = field(default=2e-4, metadata={"help": "Stage 1 (SFT) learning rate."})
    sft_num_train_epochs: float = field(default=1.0, metadata={"help": "Stage 1 epochs."})
    sft_max_steps: int = field(default=-1, metadata={"help": "Stage 1 steps (overrides epochs when > 0)."})
    sft_per_device_train_batch_size: int | None = field(
        default=None, metadata={"help": "Stage 1 batch size per device (default: the GRPO one)."}
    )
    sft_max_length: int | None = field(default=2048, metadata={"help": "Stage 1 maximum sequence length."})
    sft_lr_scheduler_type: str | None = field(
        default=None, metadata={"help": "Stage 1 learning-rate schedule (default: the GRPO stage's)."}
    )
    sft_model_path: str | None = field(
        default=None,
        metadata={"help": "For a GRPO-only run: the stage-1 output (LoRA adapter or full model folder) to start "
                          "from. Default with both stages: <output_dir>/sft."},
    )


@dataclass
class RetoucherArguments(RecipeArguments):
    """RetouchIQ policy: image + instruction -> reasoning + executable edit program, scored after execution."""

    program_format: str = field(
        default="retouchiq",
        metadata={"help": "Edit-program text form the policy writes: 'retouchiq', 'jarvis' or 'json'."},
    )
    rewards: list[str] = field(
        default_factory=lambda: ["format", "image"],
        metadata={"help": "Rewards summed (with GRPOConfig.reward_weights): 'format', 'image' (executed output "
                          "vs the expert image), 'params' (program vs the expert program), 'grm' (generative "
                          "reward model)."},
    )
    image_metric: str = field(
        default="l1", metadata={"help": "Similarity used by the 'image' reward: 'l1', 'l2' or 'delta_e'."}
    )
    grm_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Generative reward model (local path or id) for the 'grm' reward."}
    )
    grm_base_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible server (e.g. vLLM) serving the GRM; used instead of "
                                        "loading it in-process."}
    )


@dataclass
class ReasonerArguments(RecipeArguments):
    """Agentic Retoucher / EditRefiner reasoning agent: image + region boxes -> [{flaw_type, description}]."""

    paper: str = field(
        default="agentic_retoucher",
        metadata={"help": "Whose reward the GRPO stage uses: 'agentic_retoucher' (flaw-type accuracy + description "
                          "similarity, equal weights) or 'editrefiner' (0.2 format + 0.4 type + 0.4 description)."},
    )
    format_weight: float | None = field(default=None, metadata={"help": "Weight of the format reward (EditRefiner "
                                                                        "only; default 0.2)."})
    type_weight: float | None = field(default=None, metadata={"help": "Weight of the flaw-type accuracy reward "
                                                                      "(default: the paper's, 1.0 or 0.4)."})
    description_weight: float | None = field(default=None, metadata={"help": "Weight of the description similarity "
                                                                             "(default: the paper's, 1.0 or 0.4)."})
    description_method: str = field(
        default="embedding",
        metadata={"help": "Description similarity: 'embedding' (sentence-embedding cosine, the papers') or "
                          "'rouge' (ROUGE-L, no model)."},
    )
    boxes_in_prompt: bool = field(default=True, metadata={"help": "Give the region boxes in the prompt."})


def parse_stages(stages: str | Sequence[str]) -> list[str]:
    """'sft,grpo' -> ['sft', 'grpo']; unknown or repeated names raise RecipeConfigError."""
    items = [s.strip().lower() for s in (stages.split(",") if isinstance(stages, str) else stages)]
    items = [s for s in items if s]
    bad = [s for s in items if s not in STAGES]
    if bad or not items:
        raise RecipeConfigError(f"stages={stages!r}: expected a comma-separated subset of {STAGES}, got {bad or 'nothing'}")
    if len(set(items)) != len(items):
        raise RecipeConfigError(f"stages={stages!r} repeats a stage")
    return sorted(items, key=STAGES.index)


def _init_value(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


# GRPOConfig fields that TrainingArguments rewrites in __post_init__ or that only make sense for GRPO.
_NOT_COPIED = {"learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "output_dir",
               "logging_dir", "run_name", "resume_from_checkpoint", "model_init_kwargs", "remove_unused_columns"}


def sft_config_from(grpo_args: GRPOConfig, script_args: RecipeArguments, *, output_dir: str,
                    **overrides: Any) -> SFTConfig:
    """Stage-1 ``SFTConfig``: the run's Trainer settings (precision, DeepSpeed, logging, seed, ...) with the
    ``sft_*`` script overrides, so one YAML drives both stages."""
    # Only the Trainer's own fields are shared: trl fields of the same name mean different things per trainer
    # (e.g. ``loss_type``: GRPO's "dapo" vs SFT's "nll").
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(TrainingArguments):
        if f.init and f.name not in _NOT_COPIED and hasattr(grpo_args, f.name):
            kwargs[f.name] = _init_value(getattr(grpo_args, f.name))
    kwargs.update(
        output_dir=output_dir,
        learning_rate=script_args.sft_learning_rate,
        num_train_epochs=script_args.sft_num_train_epochs,
        max_steps=script_args.sft_max_steps,
        per_device_train_batch_size=script_args.sft_per_device_train_batch_size
        or grpo_args.per_device_train_batch_size,
        max_length=script_args.sft_max_length,
        model_init_kwargs=grpo_args.model_init_kwargs,
    )
    if script_args.sft_lr_scheduler_type:
        kwargs["lr_scheduler_type"] = script_args.sft_lr_scheduler_type
    # trl rewrites report_to / lr scheduler kwargs into its own forms; pass them back in their init forms.
    if isinstance(kwargs.get("report_to"), list) and not kwargs["report_to"]:
        kwargs["report_to"] = "none"
    kwargs.update(overrides)
    return SFTConfig(**kwargs)


def parse_recipe_args(script_cls: type[RecipeArguments], argv: Sequence[str] | None = None
                      ) -> tuple[RecipeArguments, GRPOConfig, RecipeModelConfig]:
    """Parse ``--config file.yaml`` plus CLI flags into (script args, GRPOConfig, model config)."""
    parser = TrlParser((script_cls, GRPOConfig, RecipeModelConfig))
    script_args, grpo_args, model_args = parser.parse_args_and_config(args=argv)
    parse_stages(script_args.stages)
    if script_args.image_size < 28:
        raise RecipeConfigError(f"image_size={script_args.image_size}: must be >= 28 (two vision patches)")
    return script_args, grpo_args, model_args
