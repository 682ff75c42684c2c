"""Generalist reward model (RetouchIQ): prompt template, answer parser, backends, the reward, a local server."""

from rlkit.rewards.grm.backends import GRMBackend, OpenAIBackend, Reply, TransformersBackend, encode_image
from rlkit.rewards.grm.model import GRM_MODES, GenerativeRewardModel
from rlkit.rewards.grm.prompt import DEFAULT_TEMPLATE, SCORE_MAX, GRMParse, GRMTemplate, parse_grm_output
from rlkit.rewards.grm.server import GRMServer, decode_messages, transformers_answer_fn

__all__ = [
    "GRMBackend", "OpenAIBackend", "Reply", "TransformersBackend", "encode_image",
    "GRM_MODES", "GenerativeRewardModel",
    "DEFAULT_TEMPLATE", "SCORE_MAX", "GRMParse", "GRMTemplate", "parse_grm_output",
    "GRMServer", "decode_messages", "transformers_answer_fn",
]
