"""The two recipes as functions (the scripts in ``recipes/`` parse arguments and call these).

- :func:`run_retoucher`: the RetouchIQ policy. SFT on (image, instruction -> reasoning + edit program),
  then GRPO in which every completion is executed by the engine in ``VectorRetouchEnv`` and scored by
  image rewards and/or the generative reward model.
- :func:`run_reasoner`: the reasoning agent of Agentic Retoucher / EditRefiner. SFT with LoRA on
  GenBlemish-style diagnoses, then GRPO from the SFT adapter with format + flaw-type accuracy +
  description similarity rewards (0.2 / 0.4 / 0.4); region boxes are given in the prompt.

Stage 1 writes ``<output_dir>/sft``; stage 2 trains into ``<output_dir>`` (checkpoints ``checkpoint-N``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlkit.train.config import (
    ReasonerArguments,
    RecipeArguments,
    RecipeConfigError,
    RetoucherArguments,
    parse_stages,
    sft_config_from,
)

__all__ = ["run_retoucher", "run_reasoner", "retoucher_reward", "reasoner_reward"]


def retoucher_reward(script_args: RetoucherArguments, weights: list[float] | None = None) -> Any:
    """The retoucher's reward: a ``WeightedSum`` of ``script_args.rewards`` (weights default to 1 each)."""
    from rlkit.rewards import FormatReward, ImageSimilarityReward, ParameterAccuracyReward, WeightedSum

    fmt = script_args.program_format
    metric = {"delta_e": "delta_e76"}.get(script_args.image_metric, script_args.image_metric)
    parts = []
    for name in script_args.rewards:
        if name == "format":
            parts.append(FormatReward("program", fmt=fmt))
        elif name == "image":
            parts.append(ImageSimilarityReward(metric, fmt=fmt))
        elif name == "params":
            parts.append(ParameterAccuracyReward("program", fmt=fmt))
        elif name == "grm":
            parts.append(_grm(script_args))
        else:
            raise RecipeConfigError(f"rewards: unknown reward {name!r}; choose from 'format', 'image', 'params', 'grm'")
    if not parts:
        raise RecipeConfigError("rewards: give at least one reward")
    if weights is not None and len(weights) != len(parts):
        raise RecipeConfigError(f"reward_weights has {len(weights)} values for {len(parts)} rewards {script_args.rewards}")
    return WeightedSum(parts, list(weights) if weights is not None else [1.0] * len(parts), name="retoucher")


def _grm(script_args: RetoucherArguments) -> Any:
    from rlkit.rewards import GenerativeRewardModel, OpenAIBackend, TransformersBackend

    if script_args.grm_base_url:
        if not script_args.grm_model_name_or_path:
            raise RecipeConfigError("grm_base_url needs grm_model_name_or_path (the served model's name)")
        backend = OpenAIBackend(script_args.grm_base_url, script_args.grm_model_name_or_path)
    elif script_args.grm_model_name_or_path:
        from rlkit.policies import load_processing_class, resolve_model_path

        path = resolve_model_path(script_args.grm_model_name_or_path)
        backend = TransformersBackend(path, load_processing_class(path))
    else:
        raise RecipeConfigError("the 'grm' reward needs grm_model_name_or_path (and grm_base_url for a server)")
    return GenerativeRewardModel(backend, program_format=script_args.program_format)


def reasoner_reward(script_args: ReasonerArguments) -> Any:
    """0.2 format + 0.4 flaw-type accuracy + 0.4 description similarity (weights from the script args)."""
    from rlkit.rewards import DescriptionSimilarityReward, FormatReward, TypeAccuracyReward, WeightedSum

    method = {"rouge": "rouge_l"}.get(script_args.description_method, script_args.description_method)
    if method not in ("embedding", "rouge_l"):
        raise RecipeConfigError(f"description_method={script_args.description_method!r}; use 'embedding' or 'rouge'")
    return WeightedSum(
        [FormatReward("diagnosis"), TypeAccuracyReward("reference_diagnosis"),
         DescriptionSimilarityReward("reference_diagnosis", method=method)],
        [script_args.format_weight, script_args.type_weight, script_args.description_weight], name="reasoner")


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)


def _run_two_stage(script_args: RecipeArguments, grpo_args: Any, model_args: Any, *, task: str,
                   to_rows: Callable[[list[dict[str, Any]], str], list[dict[str, Any]]],
                   reward_funcs: Callable[[Any], tuple[list[Any], list[float] | None]],
                   callbacks: list[Any] | None = None) -> dict[str, Any]:
    from trl import get_peft_config

    from rlkit.policies import is_adapter_dir, load_policy, load_processing_class, resolve_model_path
    from rlkit.train.recipe_data import load_rows
    from rlkit.train.stages import end_stage, train_grpo, train_sft

    stages = parse_stages(script_args.stages)
    if not model_args.model_name_or_path:
        raise RecipeConfigError("model_name_or_path is required (a folder, a hub id, or tiny:qwen2_5_vl)")
    model_path = resolve_model_path(model_args.model_name_or_path)
    processor = load_processing_class(model_path)
    train_rows, test_rows = load_rows(
        script_args.dataset_name, task=task, train_split=script_args.dataset_train_split,
        test_split=script_args.dataset_test_split, image_size=script_args.image_size,
        size=script_args.synthetic_size, seed=script_args.synthetic_seed,
        max_train_samples=script_args.max_train_samples)
    peft_config = get_peft_config(model_args)
    out: dict[str, Any] = {"stages": stages, "model": model_path, "train_rows": len(train_rows),
                           "test_rows": len(test_rows)}
    init_kwargs = dict(grpo_args.model_init_kwargs or {})
    if model_args.dtype and "dtype" not in init_kwargs:
        init_kwargs["dtype"] = model_args.dtype

    sft_dir = str(Path(grpo_args.output_dir) / "sft")
    if "sft" in stages:
        sft_args = sft_config_from(grpo_args, script_args, output_dir=sft_dir, model_init_kwargs=init_kwargs or None)
        trainer = train_sft(model_path, _dataset(to_rows(train_rows, "sft")), sft_args, processing_class=processor,
                            peft_config=peft_config, callbacks=callbacks)
        out["sft_dir"] = sft_dir
        out["sft_global_step"] = trainer.state.global_step
        out["sft_log_history"] = trainer.state.log_history
        end_stage(trainer)
        del trainer

    if "grpo" in stages:
        start = script_args.sft_model_path or (sft_dir if "sft" in stages else None)
        grpo_peft = peft_config
        if start is None:
            model: Any = model_path  # GRPO-only from the base model (the papers' ablation)
        elif is_adapter_dir(start):
            model, grpo_peft = load_policy(start, dtype=init_kwargs.get("dtype")), None  # keep training the adapter
        else:
            model = str(start)
        if init_kwargs and isinstance(model, str):
            grpo_args.model_init_kwargs = init_kwargs
        grpo_ds = _dataset(to_rows(train_rows, "grpo"))
        funcs, weights = reward_funcs(grpo_ds)
        grpo_args.reward_weights = weights
        trainer = train_grpo(model, funcs, grpo_ds, grpo_args, processing_class=processor, peft_config=grpo_peft,
                             callbacks=callbacks, resume_from_checkpoint=grpo_args.resume_from_checkpoint)
        out["grpo_dir"] = grpo_args.output_dir
        out["grpo_global_step"] = trainer.state.global_step
        out["grpo_log_history"] = trainer.state.log_history
        out["trainer"] = trainer
    return out


def run_retoucher(script_args: RetoucherArguments, grpo_args: Any, model_args: Any, *,
                  callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Run the retoucher recipe's stages; returns paths, step counts and log histories (and the GRPO trainer)."""
    from rlkit.envs import RetouchEnvReward
    from rlkit.policies import retoucher_rows

    fmt = script_args.program_format

    def to_rows(rows: list[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
        return retoucher_rows(rows, stage=stage, fmt=fmt)

    def funcs(dataset: Any) -> tuple[list[Any], list[float] | None]:
        # One environment step per completion; the reward's weights live inside the WeightedSum.
        reward = retoucher_reward(script_args, grpo_args.reward_weights)
        size = script_args.image_size
        return [RetouchEnvReward(reward, image_size=(size, size), fmt=fmt, name="retoucher")], None

    return _run_two_stage(script_args, grpo_args, model_args, task="retoucher", to_rows=to_rows,
                          reward_funcs=funcs, callbacks=callbacks)


def run_reasoner(script_args: ReasonerArguments, grpo_args: Any, model_args: Any, *,
                 callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Run the reasoning-agent recipe's stages; returns paths, step counts and log histories."""
    from rlkit.policies import reasoner_rows
    from rlkit.rewards import to_trl_reward_funcs

    def to_rows(rows: list[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
        return reasoner_rows(rows, stage=stage, boxes_in_prompt=script_args.boxes_in_prompt)

    def funcs(dataset: Any) -> tuple[list[Any], list[float] | None]:
        return to_trl_reward_funcs(reasoner_reward(script_args), dataset=dataset)

    return _run_two_stage(script_args, grpo_args, model_args, task="reasoner", to_rows=to_rows,
                          reward_funcs=funcs, callbacks=callbacks)
