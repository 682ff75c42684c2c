"""The two recipes as functions (the scripts in ``recipes/`` call :func:`recipe_main`).

- :func:`run_retoucher`: the RetouchIQ policy. SFT on (image, instruction -> reasoning + edit program),
  then GRPO in which every completion is executed by the engine (one environment step, ``RetouchEnvReward``)
  and scored by the reward parts the config names (``rlkit.rewards.retoucher_reward``: format, image,
  improvement, params, the generative reward model).
- :func:`run_reasoner`: the reasoning agent. SFT with LoRA on region diagnoses, then GRPO from the SFT
  adapter with the paper's own reward preset (``paper``): Agentic Retoucher's type accuracy + description
  similarity, or EditRefiner's 0.2 format + 0.4 type + 0.4 description.

Stage 1 writes ``<output_dir>/sft``; stage 2 trains into ``<output_dir>`` (checkpoints ``checkpoint-N``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PreTrainedModel, TrainerCallback
from trl import GRPOConfig, get_peft_config

from rlkit.envs import RetouchEnvReward
from rlkit.policies import (
    is_adapter_dir,
    load_policy,
    load_processing_class,
    reasoner_rows,
    resolve_model_path,
    retoucher_rows,
)
from rlkit.rewards import (
    PRESETS,
    GenerativeRewardModel,
    OpenAIBackend,
    TransformersBackend,
    TrlRewardFunction,
    WeightedSum,
    retoucher_reward,
    to_trl_reward_funcs,
)
from rlkit.train.config import (
    ReasonerArguments,
    RecipeArguments,
    RecipeConfigError,
    RecipeModelConfig,
    RetoucherArguments,
    parse_recipe_args,
    parse_stages,
    sft_config_from,
)
from rlkit.train.progress import quiet_third_party
from rlkit.train.recipe_data import load_rows
from rlkit.train.stages import end_stage, finish_run, is_main_process, train_grpo, train_sft

__all__ = ["run_retoucher", "run_reasoner", "retoucher_recipe_reward", "reasoner_recipe_reward", "recipe_main",
           "REASONER_PAPERS"]

#: the reasoning agent's reward preset per paper
REASONER_PAPERS = ("agentic_retoucher", "editrefiner")


def retoucher_recipe_reward(script_args: RetoucherArguments, weights: Sequence[float] | None = None) -> WeightedSum:
    """The retoucher's reward: ``rlkit.rewards.retoucher_reward`` of ``script_args.rewards``."""
    metric = {"delta_e": "delta_e76"}.get(script_args.image_metric, script_args.image_metric)
    grm = _grm(script_args) if "grm" in script_args.rewards else None
    try:
        return retoucher_reward(script_args.rewards, weights=weights, fmt=script_args.program_format,
                                image_metric=metric, grm=grm)
    except ValueError as exc:
        raise RecipeConfigError(f"rewards: {exc}") from None


def _grm(script_args: RetoucherArguments) -> GenerativeRewardModel:
    if script_args.grm_base_url:
        if not script_args.grm_model_name_or_path:
            raise RecipeConfigError("grm_base_url needs grm_model_name_or_path (the served model's name)")
        backend: OpenAIBackend | TransformersBackend = OpenAIBackend(script_args.grm_base_url, script_args.grm_model_name_or_path)
    elif script_args.grm_model_name_or_path:
        path = resolve_model_path(script_args.grm_model_name_or_path)
        backend = TransformersBackend(path, load_processing_class(path))
    else:
        raise RecipeConfigError("the 'grm' reward needs grm_model_name_or_path (and grm_base_url for a server)")
    return GenerativeRewardModel(backend, program_format=script_args.program_format)


def reasoner_recipe_reward(script_args: ReasonerArguments) -> WeightedSum:
    """The reasoning agent's reward: the preset of ``script_args.paper`` with the configured weights."""
    method = {"rouge": "rouge_l"}.get(script_args.description_method, script_args.description_method)
    if method not in ("embedding", "rouge_l"):
        raise RecipeConfigError(f"description_method={script_args.description_method!r}; use 'embedding' or 'rouge'")
    a = script_args
    if a.paper == "editrefiner":
        weights: tuple[float, ...] = (_or(a.format_weight, 0.2), _or(a.type_weight, 0.4), _or(a.description_weight, 0.4))
    elif a.paper == "agentic_retoucher":
        if a.format_weight is not None:
            raise RecipeConfigError("format_weight: Agentic Retoucher's reward has no format term (paper=editrefiner "
                                    "has one)")
        weights = (_or(a.type_weight, 1.0), _or(a.description_weight, 1.0))
    else:
        raise RecipeConfigError(f"paper={a.paper!r}; choose one of {REASONER_PAPERS}")
    return PRESETS[a.paper](description_method=method, weights=weights)


def _or(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def _dataset(rows: list[dict[str, object]]) -> Dataset:
    return Dataset.from_list(rows)


def _run_two_stage(script_args: RecipeArguments, grpo_args: GRPOConfig, model_args: RecipeModelConfig, *, task: str,
                   to_rows: Callable[[list[dict[str, object]], str], list[dict[str, object]]],
                   reward_funcs: Callable[[Dataset], tuple[list[TrlRewardFunction], list[float] | None]],
                   callbacks: list[TrainerCallback] | None = None) -> dict[str, Any]:
    quiet_third_party()
    stages = parse_stages(script_args.stages)
    if not model_args.model_name_or_path:
        raise RecipeConfigError("model_name_or_path is required (a folder or a hub id; the recipe scripts also "
                                "take tiny:qwen2_5_vl)")
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
            model: PreTrainedModel | str = model_path  # GRPO-only from the base model (the papers' ablation)
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


def run_retoucher(script_args: RetoucherArguments, grpo_args: GRPOConfig, model_args: RecipeModelConfig, *,
                  callbacks: list[TrainerCallback] | None = None) -> dict[str, Any]:
    """Run the retoucher recipe's stages; returns paths, step counts and log histories (and the GRPO trainer)."""
    fmt = script_args.program_format

    def to_rows(rows: list[dict[str, object]], stage: str) -> list[dict[str, object]]:
        return retoucher_rows(rows, stage=stage, fmt=fmt)

    def funcs(dataset: Dataset) -> tuple[list[TrlRewardFunction], list[float] | None]:
        # One environment step per completion; the reward's weights live inside the WeightedSum.
        reward = retoucher_recipe_reward(script_args, grpo_args.reward_weights)
        size = script_args.image_size
        return [RetouchEnvReward(reward, image_size=(size, size), fmt=fmt, name="retoucher")], None

    return _run_two_stage(script_args, grpo_args, model_args, task="retoucher", to_rows=to_rows,
                          reward_funcs=funcs, callbacks=callbacks)


def run_reasoner(script_args: ReasonerArguments, grpo_args: GRPOConfig, model_args: RecipeModelConfig, *,
                 callbacks: list[TrainerCallback] | None = None) -> dict[str, Any]:
    """Run the reasoning-agent recipe's stages; returns paths, step counts and log histories."""

    def to_rows(rows: list[dict[str, object]], stage: str) -> list[dict[str, object]]:
        return reasoner_rows(rows, stage=stage, boxes_in_prompt=script_args.boxes_in_prompt)

    def funcs(dataset: Dataset) -> tuple[list[TrlRewardFunction], list[float] | None]:
        return to_trl_reward_funcs(reasoner_recipe_reward(script_args), dataset=dataset)

    return _run_two_stage(script_args, grpo_args, model_args, task="reasoner", to_rows=to_rows,
                          reward_funcs=funcs, callbacks=callbacks)


_RECIPES: dict[str, tuple[type[RecipeArguments], Callable[..., dict[str, Any]]]] = {
    "retoucher": (RetoucherArguments, run_retoucher),
    "reasoner": (ReasonerArguments, run_reasoner),
}


def recipe_main(task: str, argv: Sequence[str] | None = None, *,
                resolve_name: Callable[[str], str] | None = None) -> int:
    """What ``recipes/grpo_<task>.py`` runs: parse ``--config`` + flags, run the stages, report on rank 0.

    ``resolve_name`` maps model names before loading (the scripts pass ``rlkit.testing.resolve_model_name``
    so configs may name ``tiny:`` models).
    """
    if task not in _RECIPES:
        raise ValueError(f"recipe_main: task must be one of {sorted(_RECIPES)}, got {task!r}")
    script_cls, run = _RECIPES[task]
    script_args, grpo_args, model_args = parse_recipe_args(script_cls, argv)
    if resolve_name is not None:
        model_args.model_name_or_path = resolve_name(model_args.model_name_or_path)
        if getattr(script_args, "grm_model_name_or_path", None):
            script_args.grm_model_name_or_path = resolve_name(script_args.grm_model_name_or_path)
    out = run(script_args, grpo_args, model_args)
    if is_main_process():
        steps = ", ".join(f"{k}={out[k]}" for k in ("sft_global_step", "grpo_global_step") if k in out)
        print(f"rlkit {task} recipe done: stages {out['stages']} ({steps}); output in {grpo_args.output_dir}")
    return finish_run(out.get("trainer"))  # clean exit of every rank (see its docstring)
