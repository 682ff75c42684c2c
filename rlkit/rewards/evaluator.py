"""An evaluation agent's scores as a reward: GRPO samples, environment steps and loops scored like EditRefiner.

Any object with ``score(sources, edited, instructions) -> (N, D)`` on [0, 100] works (duck-typed: the
``rlkit.policies.EvaluationAgent``, a served judge, a test double); rewards do not depend on the loops. The
edited image of a sample is the ``output_image`` column, the environment's image, or the completion's
program executed on the source (``RewardBatch.output_images``); the source image and the instruction come
from their usual columns.

Score per sample: ``output`` = ``"overall"`` (EditRefiner Eq. 5, s_v^0.3 s_e^0.4 s_p^0.3; three scores
needed), a dimension index or name, or ``"mean"``; times ``scale`` (default 1/100: a reward on [0, 1]).
Components: each dimension (scaled) under ``<name>/<dimension>``. A sample without an edited or a source
image scores None with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from rlkit.data import MOS_DIMENSIONS
from rlkit.metrics import editrefiner_overall
from rlkit.rewards.batch import INSTRUCTION_COLUMNS, SOURCE_IMAGE_COLUMNS, RewardBatch, usable_samples
from rlkit.rewards.protocol import Reward, RewardResult

__all__ = ["ScoringAgent", "EvaluatorReward"]


class ScoringAgent(Protocol):
    """An evaluator: ``score(sources, edited, instructions)`` -> (N, D) scores on [0, 100]."""

    def score(self, sources: Sequence[Any], edited: Sequence[Any], instructions: Sequence[str]) -> Any: ...


class EvaluatorReward(Reward):
    """The evaluator's score of each sample's edited image (see the module docstring)."""

    def __init__(self, evaluator: ScoringAgent, *, output: str | int = "overall", scale: float = 0.01,
                 dimensions: Sequence[str] = MOS_DIMENSIONS, fmt: str | None = None,
                 name: str = "evaluator") -> None:
        if not callable(getattr(evaluator, "score", None)):
            raise TypeError(f"EvaluatorReward needs an object with score(sources, edited, instructions), got "
                            f"{type(evaluator).__name__}")
        self.dimensions = tuple(dimensions)
        if isinstance(output, str) and output not in ("overall", "mean") and output not in self.dimensions:
            raise ValueError(f"EvaluatorReward: output must be 'overall', 'mean', a dimension {self.dimensions} or "
                             f"an index, got {output!r}")
        if isinstance(output, int) and not 0 <= output < len(self.dimensions):
            raise ValueError(f"EvaluatorReward: output index {output} outside 0..{len(self.dimensions) - 1}")
        if output == "overall" and len(self.dimensions) != 3:
            raise ValueError("EvaluatorReward: output='overall' (Eq. 5) needs three dimensions")
        if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
            raise ValueError(f"EvaluatorReward: scale must be a positive number, got {scale!r}")
        self.evaluator, self.output, self.scale, self.fmt, self.name = evaluator, output, float(scale), fmt, name
        self.required_columns = ("|".join(SOURCE_IMAGE_COLUMNS),)

    def _combine(self, pred: np.ndarray) -> np.ndarray:
        if self.output == "overall":
            return np.asarray(editrefiner_overall(pred[:, 0], pred[:, 1], pred[:, 2]), dtype=np.float64)
        if self.output == "mean":
            return pred.mean(1)
        k = self.output if isinstance(self.output, int) else self.dimensions.index(self.output)
        return pred[:, k]

    def compute(self, batch: RewardBatch) -> RewardResult:
        n = len(batch)
        sources, outputs = batch.source_images, batch.output_images(self.fmt)
        has_instruction = batch.find_column(INSTRUCTION_COLUMNS) is not None
        instructions = batch.instructions if has_instruction else [None] * n
        scores: list[float | None] = [None] * n
        comps: dict[str, list[float | None]] = {f"{self.name}/{d}": [None] * n for d in self.dimensions}
        idx, reasons = usable_samples([
            (outputs, "no edited image (the program did not parse or there is no source image)"),
            (sources, "no source image to compare the edit with")])
        if idx:
            pred = np.asarray(self.evaluator.score([sources[i] for i in idx], [outputs[i] for i in idx],
                                                   [instructions[i] or "" for i in idx]), dtype=np.float64)
            if pred.shape != (len(idx), len(self.dimensions)):
                raise ValueError(f"reward {self.name!r}: the evaluator returned scores of shape {pred.shape}, "
                                 f"expected ({len(idx)}, {len(self.dimensions)})")
            if not np.isfinite(pred).all() or pred.min() < 0:
                raise ValueError(f"reward {self.name!r}: the evaluator returned non-finite or negative scores")
            combined = self._combine(pred) * self.scale
            for j, i in enumerate(idx):
                scores[i] = float(combined[j])
                for k, d in enumerate(self.dimensions):
                    comps[f"{self.name}/{d}"][i] = float(pred[j, k] * self.scale)
        return RewardResult(scores, comps, reasons)
