"""Rewards: the protocol, combinators, the trl adapter, built-in retouching rewards, paper presets, the GRM.

One :class:`Reward` object serves trl's GRPOTrainer (:func:`to_trl_reward_funcs`), rlkit's environments
and evaluation. Heavy dependencies (sentence-transformers, transformers) load lazily on first use.
"""

from rlkit.rewards.base import (
    AsyncReward,
    FunctionReward,
    Reward,
    RewardBatch,
    RewardResult,
    RewardValueError,
    completion_text,
    reward,
)
from rlkit.rewards.combinators import Gate, NormalizedSum, WeightedSum
from rlkit.rewards.diagnosis import DescriptionSimilarityReward, TypeAccuracyReward, match_diagnoses
from rlkit.rewards.format import FormatReward
from rlkit.rewards.grm import (
    GenerativeRewardModel,
    GRMParse,
    GRMServer,
    GRMTemplate,
    OpenAIBackend,
    TransformersBackend,
    parse_grm_output,
)
from rlkit.rewards.params import (
    JARVISART_THRESHOLDS,
    KeySetIoUReward,
    LocalAdjustmentReward,
    ParameterAccuracyReward,
    ToneCurveReward,
    curve_rmse,
    key_set_iou,
    parameter_accuracy,
)
from rlkit.rewards.presets import (
    PRESETS,
    agentic_retoucher_reasoning_reward,
    editrefiner_reasoning_reward,
    retouchiq_policy_reward,
)
from rlkit.rewards.region import RegionAgreementReward
from rlkit.rewards.similarity import ImageSimilarityReward
from rlkit.rewards.trl_adapter import to_trl_reward_funcs

__all__ = [
    "AsyncReward", "FunctionReward", "Reward", "RewardBatch", "RewardResult", "RewardValueError",
    "completion_text", "reward",
    "Gate", "NormalizedSum", "WeightedSum",
    "to_trl_reward_funcs",
    "FormatReward", "TypeAccuracyReward", "DescriptionSimilarityReward", "match_diagnoses",
    "KeySetIoUReward", "LocalAdjustmentReward", "ParameterAccuracyReward", "ToneCurveReward", "JARVISART_THRESHOLDS",
    "key_set_iou", "parameter_accuracy", "curve_rmse",
    "ImageSimilarityReward", "RegionAgreementReward",
    "editrefiner_reasoning_reward", "agentic_retoucher_reasoning_reward", "retouchiq_policy_reward", "PRESETS",
    "GenerativeRewardModel", "GRMParse", "GRMServer", "GRMTemplate", "OpenAIBackend", "TransformersBackend",
    "parse_grm_output",
]
