"""Scores as five text levels (stage 1 of EditRefiner's evaluation agent) and the Q-Align level read-out.

EditRefiner (Sec. 4.5) first trains the evaluator on "continuous scores converted into five textual levels
(bad, poor, fair, good, excellent)" with cross-entropy. Q-Align reads a score back from such a model as the
softmax over the five level words' logits dotted with their weights. Here:

- :func:`level_of`: score on [0, 100] -> level index by five equal bins, ``[0, 20) bad, [20, 40) poor,
  [40, 60) fair, [60, 80) good, [80, 100] excellent`` (Q-Align's equal division of the score range);
- :func:`level_expectation`: level probabilities -> ``100 * sum_i p_i w_i`` with Q-Align's weights
  ``w = (0, 0.25, 0.5, 0.75, 1)`` for (bad, ..., excellent), a score on [0, 100].
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["LEVELS", "LEVEL_WEIGHTS", "level_of", "levels_of", "level_expectation"]

LEVELS: tuple[str, ...] = ("bad", "poor", "fair", "good", "excellent")
"""The five level words, worst first (index = level)."""
LEVEL_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Q-Align's weight of each level word, worst first."""


def level_of(score: float) -> int:
    """Level index of one score on [0, 100] (five equal bins; 100 is excellent). ValueError outside [0, 100]."""
    s = float(score)
    if not 0.0 <= s <= 100.0:  # also rejects NaN
        raise ValueError(f"a score must be in [0, 100] to have a level, got {score!r}")
    return min(len(LEVELS) - 1, int(s // (100.0 / len(LEVELS))))


def levels_of(scores: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Level indices (int64 tensor, same shape) of an array of scores on [0, 100]."""
    t = torch.as_tensor(np.asarray(scores, dtype=np.float64) if not isinstance(scores, torch.Tensor) else scores)
    t = t.double()
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()) or bool((t > 100).any()):
        raise ValueError(f"scores must be finite and in [0, 100] to have levels, got min {float(t.min()):.4g}, "
                         f"max {float(t.max()):.4g}")
    return (t // (100.0 / len(LEVELS))).long().clamp_(max=len(LEVELS) - 1)


def level_expectation(probs: torch.Tensor) -> torch.Tensor:
    """``100 * probs @ LEVEL_WEIGHTS`` over the last axis (five level probabilities, worst first)."""
    if probs.shape[-1] != len(LEVELS):
        raise ValueError(f"expected {len(LEVELS)} level probabilities on the last axis, got shape {tuple(probs.shape)}")
    w = torch.tensor(LEVEL_WEIGHTS, dtype=probs.dtype, device=probs.device)
    return 100.0 * (probs * w).sum(-1)
