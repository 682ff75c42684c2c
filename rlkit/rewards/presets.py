"""The papers' reward recipes, built from rlkit's parts."""

from __future__ import annotations

from rlkit.rewards.combinators import WeightedSum
from rlkit.rewards.diagnosis_match import (
    DEFAULT_REFERENCE_COLUMN,
    DescriptionSimilarityReward,
    TypeAccuracyReward,
)
from rlkit.rewards.format import FormatReward
from rlkit.rewards.protocol import Reward
from rlkit.rewards.similarity import ImageSimilarityReward

__all__ = ["editrefiner_reasoning_reward", "agentic_retoucher_reasoning_reward", "retouchiq_policy_reward",
           "PRESETS"]


def editrefiner_reasoning_reward(reference_column: str = DEFAULT_REFERENCE_COLUMN, *,
                                 model_path: str | None = None, require_tags: bool = False,
                                 dtype: str = "auto") -> WeightedSum:
    """EditRefiner reasoning agent: ``0.2 * format + 0.4 * flaw-type match + 0.4 * max(0, cos)`` of the
    sentence embeddings of predicted and reference descriptions (``dtype`` as in DescriptionSimilarityReward)."""
    return WeightedSum(
        [FormatReward("diagnosis", require_tags=require_tags),
         TypeAccuracyReward(reference_column),
         DescriptionSimilarityReward(reference_column, model_path=model_path, dtype=dtype)],
        [0.2, 0.4, 0.4], name="editrefiner_reasoning")


def agentic_retoucher_reasoning_reward(reference_column: str = DEFAULT_REFERENCE_COLUMN, *,
                                       model_path: str | None = None, dtype: str = "auto") -> WeightedSum:
    """Agentic Retoucher reasoning agent (Sec. 4.3): distortion-type accuracy + description alignment
    (sentence-embedding similarity), equal weights; flaws matched per region by id, box or type."""
    return WeightedSum(
        [TypeAccuracyReward(reference_column),
         DescriptionSimilarityReward(reference_column, model_path=model_path, dtype=dtype)],
        [1.0, 1.0], name="agentic_retoucher_reasoning")


def retouchiq_policy_reward(grm: Reward | None = None, *, fmt: str = "retouchiq",
                            rule_metric: str = "l1") -> WeightedSum:
    """RetouchIQ policy (Eq. 2): ``r_GRM(g, I_0, Execute(I_0, e)) + r_format``.

    With ``grm=None`` the GRM is replaced by the rule-based image similarity to the target
    (RetouchIQ-Rule, the paper's verifiable-reward baseline).
    """
    judge = grm if grm is not None else ImageSimilarityReward(rule_metric, fmt=fmt)
    return WeightedSum([judge, FormatReward("program", fmt=fmt)], [1.0, 1.0], name="retouchiq_policy")


PRESETS = {
    "editrefiner": editrefiner_reasoning_reward,
    "agentic_retoucher": agentic_retoucher_reasoning_reward,
    "retouchiq": retouchiq_policy_reward,
}
