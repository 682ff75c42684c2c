"""rlkit.train: thin wiring over trl for the recipes (SFT -> GRPO), the env-executed reward, and the quickstart.

- :func:`run_retoucher` / :func:`run_reasoner`: the two recipes (``recipes/grpo_*.py`` call them);
- :class:`RetouchEnvReward`: a trl reward function that executes each completion in ``VectorRetouchEnv``;
- :func:`train_sft` / :func:`train_grpo`: one stage each over trl's trainers (resume, DeepSpeed-on-CPU);
- :func:`run_quickstart`: ``rlkit quickstart``;
- :func:`train_saliency` and its config / collator / trainer: the perception agents' saliency nets
  (``rlkit.train.saliency``, loaded on first use);
- :func:`train_evaluator` / :func:`run_evaluator_stages` and their config / collator / trainer: EditRefiner's
  evaluation agent in its two stages (``rlkit.train.evaluator``, loaded on first use).

Heavy libraries (trl, transformers, datasets) are imported inside functions, except in ``config``.
"""

from rlkit.envs import RetouchEnvReward, env_rows_from_trl
from rlkit.policies import (
    REASONER_SYSTEM_PROMPT,
    RETOUCHER_SYSTEM_PROMPT,
    DatasetColumnError,
    is_adapter_dir,
    load_policy,
    load_processing_class,
    reasoner_completion,
    reasoner_prompt,
    reasoner_rows,
    resolve_model_path,
    retoucher_completion,
    retoucher_prompt,
    retoucher_rows,
)
from rlkit.train.generate import generate_texts
from rlkit.train.plots import reward_history, save_image_grid, save_reward_curve
from rlkit.train.quickstart import QuickstartConfig, QuickstartResult, build_quickstart_rows, run_quickstart
from rlkit.train.recipe_data import load_rows
from rlkit.train.stages import init_distributed_for_deepspeed, train_grpo, train_sft

_SALIENCY = ("SaliencyConfig", "SaliencyScriptArguments", "SaliencyCollator", "SaliencyTrainer",
             "SaliencyTrainResult", "train_saliency", "saliency_datasets", "build_saliency_model")
_EVALUATOR = ("EvaluatorConfig", "EvaluatorScriptArguments", "EvaluatorCollator", "EvaluatorTrainer",
              "EvaluatorTrainResult", "train_evaluator", "run_evaluator_stages", "evaluator_datasets",
              "build_evaluator_model", "heldout_correlations")

__all__ = [
    "RetouchEnvReward", "env_rows_from_trl",
    "generate_texts",
    "resolve_model_path", "load_processing_class", "load_policy", "is_adapter_dir",
    "reward_history", "save_reward_curve", "save_image_grid",
    "RETOUCHER_SYSTEM_PROMPT", "REASONER_SYSTEM_PROMPT", "DatasetColumnError",
    "retoucher_prompt", "retoucher_completion", "retoucher_rows",
    "reasoner_prompt", "reasoner_completion", "reasoner_rows",
    "QuickstartConfig", "QuickstartResult", "build_quickstart_rows", "run_quickstart",
    "load_rows",
    "init_distributed_for_deepspeed", "train_sft", "train_grpo",
    "run_retoucher", "run_reasoner",
    *_SALIENCY,
    *_EVALUATOR,
]


def __getattr__(name: str):
    # The recipe runners import trl's config classes, the saliency trainer transformers.Trainer: first use.
    if name in ("run_retoucher", "run_reasoner"):
        from rlkit.train import recipes

        return getattr(recipes, name)
    if name in _SALIENCY:
        from rlkit.train import saliency

        return getattr(saliency, name)
    if name in _EVALUATOR:
        from rlkit.train import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module 'rlkit.train' has no attribute {name!r}")
