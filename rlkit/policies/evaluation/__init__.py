"""EditRefiner's evaluation agent: source + edited image + instruction -> perceptual quality, instruction
following and visual consistency on [0, 100], from a Qwen-VL backbone with an MLP head (stage 2) or the
five level words (stage 1, Q-Align read-out). See :mod:`rlkit.policies.evaluation.model`.

``levels`` and ``losses`` need only torch; the model (transformers, peft) loads on first access, which
also registers it with ``AutoConfig`` / ``AutoModel``.
"""

from rlkit.policies.evaluation.levels import LEVEL_WEIGHTS, LEVELS, level_expectation, level_of, levels_of
from rlkit.policies.evaluation.losses import pearson, score_loss

_LAZY = {"EvaluationAgentConfig", "EvaluationAgent", "EvaluationOutput", "READOUTS"}

__all__ = ["LEVELS", "LEVEL_WEIGHTS", "level_of", "levels_of", "level_expectation", "pearson", "score_loss",
           "EvaluationAgentConfig", "EvaluationAgent", "EvaluationOutput", "READOUTS"]


def __getattr__(name: str):
    # transformers/peft load only when the model is first asked for.
    if name in _LAZY:
        from rlkit.policies.evaluation import model

        return getattr(model, name)
    raise AttributeError(f"module 'rlkit.policies.evaluation' has no attribute {name!r}")
