"""Rewards: the protocol, the batch of rollouts they score, combinators, the one bridge to trl, built-in
retouching rewards, paper presets, the generative reward model.

One :class:`Reward` object serves trl's GRPOTrainer (:func:`to_trl_reward_funcs`), rlkit's environments
and evaluation. A completion is parsed and executed once (:class:`Rollout`); rewards read the result.
"""

from rlkit.rewards.batch import RewardBatch, completion_text
from rlkit.rewards.combinators import Gate, NormalizedSum, WeightedSum
from rlkit.rewards.diagnosis_match import DescriptionSimilarityReward, TypeAccuracyReward, match_diagnoses
from rlkit.rewards.evaluator import EvaluatorReward
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
from rlkit.rewards.presets import (
    PRESETS,
    RETOUCHER_PARTS,
    agentic_retoucher_reasoning_reward,
    editrefiner_reasoning_reward,
    retoucher_reward,
    retouchiq_policy_reward,
)
from rlkit.rewards.program_match import (
    JARVISART_THRESHOLDS,
    KeySetIoUReward,
    LocalAdjustmentReward,
    ParameterAccuracyReward,
    ToneCurveReward,
    curve_rmse,
    key_set_iou,
    parameter_accuracy,
)
from rlkit.rewards.protocol import AsyncReward, FunctionReward, Reward, RewardResult, RewardValueError, reward
from rlkit.rewards.region import RegionAgreementReward
from rlkit.rewards.rollout import Rollout
from rlkit.rewards.similarity import ImageImprovementReward, ImageSimilarityReward
from rlkit.rewards.trl_bridge import (
    AsyncTrlRewardFunction,
    RolloutExecutor,
    TrlRewardFunction,
    to_trl_reward_funcs,
)

__all__ = [
    "AsyncReward", "FunctionReward", "Reward", "RewardBatch", "RewardResult", "RewardValueError",
    "completion_text", "reward", "Rollout",
    "Gate", "NormalizedSum", "WeightedSum",
    "to_trl_reward_funcs", "TrlRewardFunction", "AsyncTrlRewardFunction", "RolloutExecutor",
    "FormatReward", "TypeAccuracyReward", "DescriptionSimilarityReward", "match_diagnoses",
    "KeySetIoUReward", "LocalAdjustmentReward", "ParameterAccuracyReward", "ToneCurveReward", "JARVISART_THRESHOLDS",
    "key_set_iou", "parameter_accuracy", "curve_rmse",
    "ImageSimilarityReward", "ImageImprovementReward", "RegionAgreementReward", "EvaluatorReward",
    "editrefiner_reasoning_reward", "agentic_retoucher_reasoning_reward", "retouchiq_policy_reward", "PRESETS",
    "retoucher_reward", "RETOUCHER_PARTS",
    "GenerativeRewardModel", "GRMParse", "GRMServer", "GRMTemplate", "OpenAIBackend", "TransformersBackend",
    "parse_grm_output",
    # GRM training data and prompt pieces (rlkit.train.grm / rlkit.train.pgrt use them)
    "DEFAULT_TEMPLATE", "SCORE_MAX", "GRMBackend", "format_grm_answer", "transformers_answer_fn",
    "PairSource", "pair_sources", "WeakFilter", "RandomKeyPerturber", "MLLMPerturber", "AnnotationRequest",
    "Annotation", "TemplateAnnotator", "EndpointAnnotator", "PairBuild", "PairDataError", "build_perturbed_pairs",
    "build_policy_pairs", "pair_features", "save_pairs", "load_pairs",
]
