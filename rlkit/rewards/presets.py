"""The papers' reward recipes, built from rlkit's parts, in one place (the recipes and the CLI use these)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rlkit.rewards.combinators import WeightedSum
from rlkit.rewards.diagnosis_match import (
    DEFAULT_REFERENCE_COLUMN,
    DescriptionSimilarityReward,
    TypeAccuracyReward,
)
from rlkit.rewards.format import FormatReward
from rlkit.rewards.program_match import ParameterAccuracyReward
from rlkit.rewards.protocol import Reward
from rlkit.rewards.similarity import ImageImprovementReward, ImageSimilarityReward

__all__ = ["editrefiner_reasoning_reward", "agentic_retoucher_reasoning_reward", "retouchiq_policy_reward",
           "retoucher_reward", "RETOUCHER_PARTS", "PRESETS"]

#: the parts a retoucher reward can be composed of (``retoucher_reward``)
RETOUCHER_PARTS = ("format", "image", "improvement", "params", "grm")


def editrefiner_reasoning_reward(reference_column: str = DEFAULT_REFERENCE_COLUMN, *,
                                 model_path: str | None = None, require_tags: bool = False,
                                 dtype: str = "auto", description_method: str = "embedding",
                                 weights: Sequence[float] = (0.2, 0.4, 0.4)) -> WeightedSum:
    """EditRefiner reasoning agent: ``0.2 * format + 0.4 * flaw-type match + 0.4 * max(0, cos)`` of the
    sentence embeddings of predicted and reference descriptions (``dtype`` as in DescriptionSimilarityReward;
    ``description_method="rouge_l"`` needs no embedding model)."""
    return WeightedSum(
        [FormatReward("diagnosis", require_tags=require_tags),
         TypeAccuracyReward(reference_column),
         DescriptionSimilarityReward(reference_column, method=description_method, model_path=model_path,
                                     dtype=dtype)],
        list(weights), name="editrefiner_reasoning")


def agentic_retoucher_reasoning_reward(reference_column: str = DEFAULT_REFERENCE_COLUMN, *,
                                       model_path: str | None = None, dtype: str = "auto",
                                       description_method: str = "embedding",
                                       weights: Sequence[float] = (1.0, 1.0)) -> WeightedSum:
    """Agentic Retoucher reasoning agent (Sec. 4.3): distortion-type accuracy + description alignment
    (sentence-embedding similarity), equal weights; flaws matched per region by id, box or type."""
    return WeightedSum(
        [TypeAccuracyReward(reference_column),
         DescriptionSimilarityReward(reference_column, method=description_method, model_path=model_path,
                                     dtype=dtype)],
        list(weights), name="agentic_retoucher_reasoning")


def retouchiq_policy_reward(grm: Reward | None = None, *, fmt: str = "retouchiq",
                            rule_metric: str = "l1") -> WeightedSum:
    """RetouchIQ policy (Eq. 2): ``r_GRM(g, I_0, Execute(I_0, e)) + r_format``.

    With ``grm=None`` the GRM is replaced by the rule-based image similarity to the target
    (RetouchIQ-Rule, the paper's verifiable-reward baseline).
    """
    return retoucher_reward(["grm" if grm is not None else "image", "format"], fmt=fmt, image_metric=rule_metric,
                            grm=grm, name="retouchiq_policy")


def retoucher_reward(parts: Sequence[str], *, weights: Sequence[float] | None = None, fmt: str = "retouchiq",
                     image_metric: str = "l1", grm: Reward | None = None, name: str = "retoucher") -> WeightedSum:
    """A retoucher policy's reward as a weighted sum of named parts (weights default to 1 each):

    ``format`` (the program is well formed), ``image`` (similarity of the executed edit to the expert image,
    ``image_metric``), ``improvement`` (how much closer to the expert than the unedited photo),
    ``params`` (the program against the expert program, JarvisArt-style), ``grm`` (the generative reward
    model ``grm``).
    """
    unknown = [p for p in parts if p not in RETOUCHER_PARTS]
    if unknown or not parts:
        raise ValueError(f"retoucher reward parts {list(parts)}: choose one or more of {RETOUCHER_PARTS}")
    if weights is not None and len(weights) != len(parts):
        raise ValueError(f"{len(weights)} reward weights for {len(parts)} reward parts {list(parts)}")
    if "grm" in parts and grm is None:
        raise ValueError("the 'grm' reward part needs a generative reward model (grm=...)")
    build: dict[str, Callable[[], Reward]] = {
        "format": lambda: FormatReward("program", fmt=fmt),
        "image": lambda: ImageSimilarityReward(image_metric, fmt=fmt),
        "improvement": lambda: ImageImprovementReward(image_metric, fmt=fmt),
        "params": lambda: ParameterAccuracyReward("program", fmt=fmt),
        "grm": lambda: grm,  # type: ignore[return-value, arg-type]
    }
    return WeightedSum([build[p]() for p in parts], list(weights) if weights is not None else [1.0] * len(parts),
                       name=name)


PRESETS: dict[str, Callable[..., WeightedSum]] = {
    "editrefiner": editrefiner_reasoning_reward,
    "agentic_retoucher": agentic_retoucher_reasoning_reward,
    "retouchiq": retouchiq_policy_reward,
}
