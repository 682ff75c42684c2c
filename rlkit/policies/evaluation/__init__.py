"""EditRefiner's evaluation agent: source + edited image + instruction -> perceptual quality, instruction
following and visual consistency on [0, 100], from a Qwen-VL backbone with an MLP head (stage 2) or the
five level words (stage 1, Q-Align read-out). See :mod:`rlkit.policies.evaluation.model`; importing it
registers the agent with ``AutoConfig`` / ``AutoModel``.
"""

from rlkit.policies.evaluation.levels import LEVEL_WEIGHTS, LEVELS, level_expectation, level_of, levels_of
from rlkit.policies.evaluation.losses import pearson, score_loss
from rlkit.policies.evaluation.model import READOUTS, EvaluationAgent, EvaluationAgentConfig, EvaluationOutput

__all__ = ["LEVELS", "LEVEL_WEIGHTS", "level_of", "levels_of", "level_expectation", "pearson", "score_loss",
           "EvaluationAgentConfig", "EvaluationAgent", "EvaluationOutput", "READOUTS"]
