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
    DEFAULT_TEMPLATE,
    SCORE_MAX,
    Annotation,
    AnnotationRequest,
    EndpointAnnotator,
    GenerativeRewardModel,
    GRMBackend,
    GRMParse,
    GRMServer,
    GRMTemplate,
    MLLMPerturber,
    OpenAIBackend,
    PairBuild,
    PairDataError,
    PairSource,
    RandomKeyPerturber,
    TemplateAnnotator,
    TransformersBackend,
    WeakFilter,
    build_perturbed_pairs,
    build_policy_pairs,
    format_grm_answer,
    load_pairs,
    pair_features,
    pair_sources,
    parse_grm_output,
    save_pairs,
    transformers_answer_fn,
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
    # GRM training data and prompt pieces (rlkit.train.grm / rlkit.train.pgrt use them)
    "DEFAULT_TEMPLATE", "SCORE_MAX", "GRMBackend", "format_grm_answer", "transformers_answer_fn",
    "PairSource", "pair_sources", "WeakFilter", "RandomKeyPerturber", "MLLMPerturber", "AnnotationRequest",
    "Annotation", "TemplateAnnotator", "EndpointAnnotator", "PairBuild", "PairDataError", "build_perturbed_pairs",
    "build_policy_pairs", "pair_features", "save_pairs", "load_pairs",
]
