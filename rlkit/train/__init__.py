"""rlkit.train: thin wiring over trl and transformers.Trainer: one module per trainer with its config.

- :func:`run_retoucher` / :func:`run_reasoner` (``recipes``): the two GRPO recipes, run by
  ``recipes/grpo_*.py`` through :func:`recipe_main`;
- :func:`train_sft` / :func:`train_grpo` (``stages``): one stage each over trl's trainers (resume,
  DeepSpeed-on-CPU, a rich progress bar and summary);
- :func:`run_quickstart`: ``rlkit quickstart``;
- :func:`train_saliency` (``saliency``): the perception agents' saliency nets over transformers.Trainer;
- :func:`train_grm_sft` (``grm``) / :func:`train_grm_rl` (``pgrt``) / :func:`run_pgrt` (``pgrt_run``): the generalist reward
  model's SFT, its policy-guided RL (Eq. 4), and RetouchIQ's alternation of GRM and policy (``recipes/pgrt.py``).
- :func:`train_evaluator` / :func:`run_evaluator_stages` (``evaluator``): EditRefiner's evaluation agent in its
  two stages over transformers.Trainer.
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
from rlkit.train.evaluator import (
    EvaluatorCollator,
    EvaluatorConfig,
    EvaluatorScriptArguments,
    EvaluatorTrainer,
    EvaluatorTrainResult,
    build_evaluator_model,
    evaluator_datasets,
    heldout_correlations,
    run_evaluator_stages,
    train_evaluator,
)
from rlkit.train.generate import generate_texts
from rlkit.train.grm import GRMSFTConfig, grm_rl_rows, grm_sft_rows, pair_accuracy, train_grm_sft
from rlkit.train.manifest import CheckpointError, ManifestError, RunManifest
from rlkit.train.pgrt import (
    PGRTArguments,
    PGRTFormatReward,
    PGRTRankingReward,
    pgrt_reward_funcs,
    train_grm_rl,
)
from rlkit.train.pgrt_run import PGRTRun, run_pgrt
from rlkit.train.plots import reward_history, save_image_grid, save_reward_curve
from rlkit.train.quickstart import QuickstartConfig, QuickstartResult, build_quickstart_rows, run_quickstart
from rlkit.train.recipe_data import load_rows
from rlkit.train.recipes import recipe_main, run_reasoner, run_retoucher
from rlkit.train.saliency import (
    SaliencyCollator,
    SaliencyConfig,
    SaliencyScriptArguments,
    SaliencyTrainer,
    SaliencyTrainResult,
    build_saliency_model,
    saliency_datasets,
    train_saliency,
)
from rlkit.train.stages import init_distributed_for_deepspeed, train_grpo, train_sft

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
    "run_retoucher", "run_reasoner", "recipe_main",
    "SaliencyConfig", "SaliencyScriptArguments", "SaliencyCollator", "SaliencyTrainer", "SaliencyTrainResult",
    "train_saliency", "saliency_datasets", "build_saliency_model",
    "GRMSFTConfig", "grm_sft_rows", "grm_rl_rows", "pair_accuracy", "train_grm_sft",
    "PGRTArguments", "PGRTRankingReward", "PGRTFormatReward", "pgrt_reward_funcs", "train_grm_rl", "run_pgrt",
    "PGRTRun", "RunManifest", "ManifestError", "CheckpointError",
    "EvaluatorConfig", "EvaluatorScriptArguments", "EvaluatorCollator", "EvaluatorTrainer", "EvaluatorTrainResult",
    "train_evaluator", "run_evaluator_stages", "evaluator_datasets", "build_evaluator_model", "heldout_correlations",
]
