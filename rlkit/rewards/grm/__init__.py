"""Generalist reward model (RetouchIQ): prompt template, answer parser, backends, the reward, a local server,
and its training pairs (perturbed and policy weak edits, annotators)."""

from rlkit.rewards.grm.backends import GRMBackend, OpenAIBackend, Reply, TransformersBackend, encode_image
from rlkit.rewards.grm.model import GRM_MODES, GenerativeRewardModel
from rlkit.rewards.grm.prompt import (
    DEFAULT_TEMPLATE,
    SCORE_MAX,
    GRMParse,
    GRMTemplate,
    format_grm_answer,
    parse_grm_output,
)
from rlkit.rewards.grm.server import GRMServer, decode_messages, transformers_answer_fn
from rlkit.rewards.grm.training_data import (
    WEAK_KINDS,
    Annotation,
    AnnotationRequest,
    Annotator,
    EndpointAnnotator,
    MLLMPerturber,
    PairBuild,
    PairDataError,
    PairSource,
    Perturber,
    RandomKeyPerturber,
    TemplateAnnotator,
    WeakFilter,
    build_perturbed_pairs,
    build_policy_pairs,
    load_pairs,
    pair_features,
    pair_sources,
    program_metrics,
    save_pairs,
)

__all__ = [
    "GRMBackend", "OpenAIBackend", "Reply", "TransformersBackend", "encode_image",
    "GRM_MODES", "GenerativeRewardModel",
    "DEFAULT_TEMPLATE", "SCORE_MAX", "GRMParse", "GRMTemplate", "parse_grm_output", "format_grm_answer",
    "GRMServer", "decode_messages", "transformers_answer_fn",
    "PairSource", "pair_sources", "WeakFilter", "Perturber", "RandomKeyPerturber", "MLLMPerturber",
    "AnnotationRequest", "Annotation", "Annotator", "TemplateAnnotator", "EndpointAnnotator", "program_metrics",
    "PairBuild", "build_perturbed_pairs", "build_policy_pairs", "pair_features", "save_pairs", "load_pairs",
    "PairDataError", "WEAK_KINDS",
]
