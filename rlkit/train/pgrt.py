"""Policy-guided reward training (RetouchIQ Sec. 4.3, Eq. 4) and the alternation of the GRM with the policy.

PGRT trains the generalist reward model with trl's GRPOTrainer: the GRM answers a pair prompt (source,
strong = expert edit, weak = the policy's own edit, in the pair's recorded order) and is rewarded
``1[r_strong > r_weak] + r_format`` (:class:`PGRTRankingReward`, :class:`PGRTFormatReward`). The first RL
round uses perturbed weak edits, since the policy is not trained yet (``grm_rl_initial_steps``).

:func:`rlkit.train.pgrt_run.run_pgrt` runs the whole loop as stages recorded in ``<output_dir>/manifest.json``::

    data -> grm_sft [-> grm_rl0] [-> policy_sft] -> for r in 1..rounds:
        policy_grpo_r (format + current GRM, executed in RetouchEnv) -> sample_r (policy edits, saved in
        shards) -> pairs_r (policy pairs, filtered) -> grm_pgrt_r
    [fig5: fig5_policy_<grm> for every GRM variant -> fig5_report]

Killing the run and relaunching the same command resumes: finished stages are skipped, a trainer stage
continues from its last complete ``checkpoint-N``, and saved sample shards are not generated again. Every
stage seeds itself from the run's seed, so a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset
from trl import GRPOConfig

from rlkit.rewards import WeakFilter, completion_text, parse_grm_output
from rlkit.train.grm import grm_rl_rows
from rlkit.train.stages import train_grpo

logger = logging.getLogger("rlkit.train")

__all__ = ["PGRTArguments", "PGRTRankingReward", "PGRTFormatReward", "pgrt_reward_funcs", "train_grm_rl",
           "PGRTConfigError", "GRM_SERVE_MODES"]

GRM_SERVE_MODES = ("in_process", "local_server", "external")


class PGRTConfigError(ValueError):
    """A PGRT setting is invalid; the message names the field."""


# ------------------------------------------------------------------------------------------ config
@dataclass
class PGRTArguments:
    """Script arguments of ``recipes/pgrt.py`` (every field is a YAML key and a CLI flag). The policy's GRPO
    uses the run's ``GRPOConfig`` as is; the other stages take the run's Trainer settings with the overrides
    below (``grm_sft_*``, ``grm_rl_*``, ``policy_sft_*``)."""

    # data
    dataset_name: str = field(default="synthetic", metadata={"help": "RetouchRecord rows: 'synthetic' "
                              "(RetouchEval-style builder), a save_to_disk folder, a JSON(L) file or a hub id."})
    synthetic_size: int = field(default=16, metadata={"help": "Synthetic training items per RetouchEval split."})
    synthetic_seed: int = field(default=0, metadata={"help": "Seed of the synthetic training set."})
    eval_dataset_name: str | None = field(default="synthetic", metadata={
        "help": "Held-out RetouchEval-style rows ('synthetic' with eval_seed, a dataset, or null for the test "
                "split of dataset_name)."})
    eval_size: int = field(default=8, metadata={"help": "Synthetic held-out items per split."})
    eval_seed: int = field(default=1, metadata={"help": "Seed of the synthetic held-out set."})
    image_size: int = field(default=448, metadata={"help": "Longer image side in pixels."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training rows."})
    program_format: str = field(default="retouchiq", metadata={"help": "Policy program text form."})
    # GRM data
    grm_model_name_or_path: str | None = field(default=None, metadata={
        "help": "Base model of the GRM (default: the policy's model_name_or_path)."})
    grm_pairs_per_record: int = field(default=2, metadata={"help": "Perturbation pairs per training record."})
    grm_candidates: int = field(default=12, metadata={"help": "Perturbations proposed per record before the filter."})
    grm_gap_metric: str = field(default="delta_e2000", metadata={"help": "Weak-edit filter metric."})
    grm_min_gap: float = field(default=2.0, metadata={"help": "Keep weak edits with metric(weak, strong) >= this."})
    perturber: str = field(default="random", metadata={"help": "'random' (key-parameter perturbation) or 'mllm'."})
    perturber_base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible perturber server."})
    perturber_model: str | None = field(default=None, metadata={"help": "Perturber model name on that server."})
    annotator: str = field(default="template", metadata={"help": "'template' (offline) or 'endpoint'."})
    template_full_gap: float = field(default=6.0, metadata={
        "help": "Template annotator: the weak score falls from 7 to 2 (strong: 8) as the filter gap grows to this; "
                "equal to grm_min_gap, every weak edit scores 2 (two score levels, easiest to learn)."})
    annotator_base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible annotator server."})
    annotator_model: str | None = field(default=None, metadata={"help": "Annotator model name on that server."})
    endpoint_timeout: float = field(default=120.0, metadata={"help": "Per-attempt deadline of endpoint calls (s)."})
    # GRM SFT (Eq. 3)
    grm_sft_learning_rate: float = field(default=1e-5, metadata={"help": "GRM SFT learning rate."})
    grm_sft_max_steps: int = field(default=-1, metadata={"help": "GRM SFT steps (-1: grm_sft_num_train_epochs)."})
    grm_sft_num_train_epochs: float = field(default=2.0, metadata={"help": "GRM SFT epochs."})
    grm_sft_batch_size: int | None = field(default=None, metadata={"help": "GRM SFT batch per device."})
    grm_pointwise_rows: bool = field(default=True, metadata={"help": "Also train one-image scoring rows."})
    grm_use_peft: bool = field(default=False, metadata={"help": "Train the GRM as a LoRA adapter."})
    grm_lora_r: int = field(default=64, metadata={"help": "GRM LoRA rank."})
    grm_lora_alpha: int = field(default=32, metadata={"help": "GRM LoRA alpha."})
    # GRM RL (Eq. 4)
    grm_rl_initial_steps: int = field(default=0, metadata={
        "help": "Steps of the first GRM RL round on perturbed pairs, right after SFT (0: none)."})
    grm_pgrt_max_steps: int = field(default=100, metadata={"help": "GRM PGRT steps per round."})
    grm_rl_learning_rate: float = field(default=1e-6, metadata={"help": "GRM RL learning rate."})
    grm_rl_batch_size: int | None = field(default=None, metadata={"help": "GRM RL batch per device."})
    grm_num_generations: int = field(default=4, metadata={"help": "GRM answers sampled per pair in RL."})
    grm_max_completion_length: int = field(default=256, metadata={"help": "GRM answer tokens (RL, reward, eval)."})
    ranking_weight: float = field(default=1.0, metadata={"help": "Weight of 1[r_strong > r_weak] in Eq. 4."})
    format_weight: float = field(default=1.0, metadata={"help": "Weight of r_format in Eq. 4."})
    # the GRM as the policy's reward
    grm_reward_mode: str = field(default="pointwise", metadata={
        "help": "How policy GRPO asks the GRM: 'pointwise' (Eq. 2), 'pairwise' (vs the expert edit) or 'group'."})
    grm_serve: str = field(default="in_process", metadata={
        "help": "'in_process', 'local_server' (rlkit's loopback server, restarted with each new GRM) or "
                "'external' (grm_base_url, reloaded by grm_reload_command)."})
    grm_base_url: str | None = field(default=None, metadata={"help": "External GRM server (e.g. vLLM)."})
    grm_served_name: str = field(default="grm", metadata={"help": "Model name the GRM server answers to."})
    grm_reload_command: str | None = field(default=None, metadata={
        "help": "Shell command run before each policy stage to load a GRM checkpoint into the external server; "
                "{checkpoint} is replaced by its folder."})
    grm_reload_timeout: float = field(default=900.0, metadata={"help": "Seconds to wait for the reloaded server."})
    grm_eval_batch_size: int = field(default=8, metadata={"help": "GRM requests per generate call."})
    # policy
    policy_sft_model_path: str | None = field(default=None, metadata={
        "help": "An SFT'd policy (folder) to start from; otherwise a policy SFT stage runs first."})
    policy_sft_learning_rate: float = field(default=2e-4, metadata={"help": "Policy SFT learning rate."})
    policy_sft_max_steps: int = field(default=-1, metadata={"help": "Policy SFT steps (-1: epochs)."})
    policy_sft_num_train_epochs: float = field(default=1.0, metadata={"help": "Policy SFT epochs."})
    policy_sft_reasoning: bool = field(default=True, metadata={
        "help": "Train the policy to write the records' reasoning before its program (False: program only, "
                "short completions for CPU runs)."})
    # alternation
    rounds: int = field(default=2, metadata={"help": "Alternation rounds (policy GRPO -> sampling -> GRM PGRT)."})
    samples_per_round: int = field(default=64, metadata={"help": "Training records sampled per round."})
    samples_per_instruction: int = field(default=2, metadata={"help": "Policy edits sampled per training record."})
    heldout_samples_per_instruction: int = field(default=1, metadata={"help": "Policy edits per held-out record."})
    sample_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of policy edits."})
    sample_shard_size: int = field(default=16, metadata={"help": "Records per saved sample shard."})
    policy_unparsed: str = field(default="identity", metadata={
        "help": "A sampled policy edit that does not parse: 'identity' (its result, the unedited photo, is the "
                "weak image) or 'drop'."})
    # RetouchIQ Fig. 5
    fig5: bool = field(default=False, metadata={"help": "Also train a policy with each GRM and write Fig. 5."})
    fig5_policy_max_steps: int | None = field(default=None, metadata={
        "help": "GRPO steps of each Fig. 5 policy (default: max_steps)."})
    judge_model_name_or_path: str | None = field(default=None, metadata={
        "help": "Optional judge VLM scoring Fig. 5 policies (pointwise GRM prompt, 0-10)."})
    judge_base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible judge server."})

    def check(self) -> None:
        """Raise :class:`PGRTConfigError` naming the first invalid field."""
        def bad(name: str, why: str) -> None:
            raise PGRTConfigError(f"{name}={getattr(self, name)!r}: {why}")

        if self.rounds < 0:
            bad("rounds", "must be >= 0")
        for name in ("synthetic_size", "eval_size", "grm_pairs_per_record", "samples_per_round",
                     "samples_per_instruction", "heldout_samples_per_instruction", "sample_shard_size",
                     "grm_num_generations", "grm_max_completion_length", "grm_eval_batch_size"):
            if getattr(self, name) < 1:
                bad(name, "must be >= 1")
        if self.template_full_gap <= 0:
            bad("template_full_gap", "must be > 0")
        if self.grm_candidates < self.grm_pairs_per_record:
            bad("grm_candidates", f"must be >= grm_pairs_per_record ({self.grm_pairs_per_record})")
        if self.image_size < 28:
            bad("image_size", "must be >= 28 (two vision patches)")
        if self.perturber not in ("random", "mllm"):
            bad("perturber", "choose 'random' or 'mllm'")
        if self.perturber == "mllm" and not (self.perturber_base_url and self.perturber_model):
            bad("perturber", "'mllm' needs perturber_base_url and perturber_model")
        if self.annotator not in ("template", "endpoint"):
            bad("annotator", "choose 'template' or 'endpoint'")
        if self.annotator == "endpoint" and not (self.annotator_base_url and self.annotator_model):
            bad("annotator", "'endpoint' needs annotator_base_url and annotator_model")
        if self.grm_reward_mode not in ("pointwise", "pairwise", "group"):
            bad("grm_reward_mode", "choose 'pointwise', 'pairwise' or 'group'")
        if self.grm_serve not in GRM_SERVE_MODES:
            bad("grm_serve", f"choose one of {GRM_SERVE_MODES}")
        if self.grm_serve == "external" and not (self.grm_base_url and self.grm_reload_command):
            bad("grm_serve", "'external' needs grm_base_url and grm_reload_command (to load each new GRM)")
        if self.policy_unparsed not in ("identity", "drop"):
            bad("policy_unparsed", "choose 'identity' or 'drop'")
        if self.program_format not in ("retouchiq", "jarvis", "json"):
            bad("program_format", "choose 'retouchiq', 'jarvis' or 'json'")
        WeakFilter(self.grm_gap_metric, self.grm_min_gap)


# ------------------------------------------------------------------------------------------ Eq. 4 rewards
def _pair_scores(completions: Sequence[Any], strong_position: Sequence[Any] | None
                 ) -> tuple[list[tuple[float, float] | None], Counter]:
    if strong_position is None or len(strong_position) != len(completions):
        raise ValueError("PGRT rewards need the dataset's 'strong_position' column (1 or 2 for each row)")
    out: list[tuple[float, float] | None] = []
    reasons: Counter = Counter()
    for c, pos in zip(completions, strong_position):
        p = parse_grm_output(completion_text(c), 2)
        if not p.ok:
            out.append(None)
            reasons[p.reason] += 1
            continue
        a, b = p.scores  # type: ignore[misc]
        out.append((a, b) if int(pos) == 1 else (b, a))
    return out, reasons


class PGRTRankingReward:
    """Eq. 4's indicator: 1 when the GRM's answer scores the strong edit strictly above the weak one, else 0.

    An answer that does not parse gets 0 here and in :class:`PGRTFormatReward`; its reason is logged (the
    share of unparseable answers as ``pgrt/unparseable``), never silently mapped to a ranking."""

    __name__ = "pgrt_ranking"

    def __call__(self, prompts: Any = None, completions: Any = None, completion_ids: Any = None,
                 strong_position: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
        scores, reasons = _pair_scores(completions or [], strong_position)
        if reasons:
            top, count = reasons.most_common(1)[0]
            logger.info("PGRT: %d/%d GRM answers unparseable; most common: %s (x%d)", sum(reasons.values()),
                        len(scores), top, count)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            log_metric("pgrt/unparseable", sum(reasons.values()) / max(1, len(scores)))
        return [0.0 if s is None else float(s[0] > s[1]) for s in scores]


class PGRTFormatReward:
    """Eq. 4's ``r_format``: 1 when the answer has metrics and one score for each of the two images."""

    __name__ = "pgrt_format"

    def __call__(self, prompts: Any = None, completions: Any = None, completion_ids: Any = None,
                 strong_position: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
        scores, _ = _pair_scores(completions or [], strong_position)
        return [0.0 if s is None else 1.0 for s in scores]


def pgrt_reward_funcs() -> list[Any]:
    """trl ``reward_funcs`` of Eq. 4 (weights go in ``GRPOConfig.reward_weights``)."""
    return [PGRTRankingReward(), PGRTFormatReward()]


def train_grm_rl(model: Any, pairs: Any, args: GRPOConfig, *, processing_class: Any = None,
                 peft_config: Any = None, callbacks: Sequence[Any] | None = None,
                 resume_from_checkpoint: str | bool | None = None, save_dir: str | None = None) -> Any:
    """One GRM RL stage (Eq. 4) on ``pairs`` (perturbed or policy pairs) with trl's GRPOTrainer through
    :func:`rlkit.train.train_grpo`. Returns the trainer."""
    rows = grm_rl_rows(pairs)
    if not rows:
        raise ValueError("train_grm_rl: no pairs to train on")
    return train_grpo(model, pgrt_reward_funcs(), Dataset.from_list(rows), args, processing_class=processing_class,
                      peft_config=peft_config, callbacks=callbacks, resume_from_checkpoint=resume_from_checkpoint,
                      save_dir=save_dir)
