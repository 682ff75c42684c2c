"""``rlkit eval compare A B``: per-metric difference of two result folders with a paired bootstrap CI.

Records are paired by (system, sample id); for each metric the mean of the per-sample differences B - A is
reported with a percentile bootstrap confidence interval (resampling the pairs), the same interval
``scipy.stats.bootstrap(..., paired=True, method="percentile")`` gives for the mean difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlkit.eval.report import read_results

__all__ = ["paired_bootstrap", "compare_results", "Difference"]


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_resamples: int = 9999, confidence: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean of b - a, CI low, CI high): percentile bootstrap over the pairs, vectorised."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_bootstrap: need two 1-d arrays of one length, got {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError("paired_bootstrap: need at least 2 pairs")
    if not 0 < confidence < 1:
        raise ValueError(f"paired_bootstrap: confidence must be in (0, 1), got {confidence}")
    d = y - x
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, 2_000_000 // d.size)
    for s in range(0, n_resamples, step):
        k = min(step, n_resamples - s)
        means[s:s + k] = d[rng.integers(0, d.size, (k, d.size))].mean(1)
    alpha = (1 - confidence) / 2
    lo, hi = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return float(d.mean()), float(lo), float(hi)


@dataclass
class Difference:
    """One metric's paired comparison of result folders A and B for one system."""

    system: str
    metric: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


_SKIP = {"index", "valid"}


def compare_results(a: str | Path, b: str | Path, *, metrics: Sequence[str] | None = None,
                    n_resamples: int = 9999, confidence: float = 0.95, seed: int = 0) -> list[Difference]:
    """Paired differences B - A per (system, metric) over the samples both folders scored."""
    ra, rb = read_results(a)["records"], read_results(b)["records"]
    ia = {(r["system"], r["id"]): r for r in ra}
    pairs = [(ia[(r["system"], r["id"])], r) for r in rb if (r["system"], r["id"]) in ia]
    if not pairs:
        raise ValueError(f"{a} and {b} share no (system, sample) records to compare")
    keys = metrics or sorted({k for x, y in pairs for k, v in y.items()
                              if k not in _SKIP and _num(v) is not None and _num(x.get(k)) is not None})
    out = []
    for system in dict.fromkeys(y["system"] for _, y in pairs):
        for k in keys:
            xs, ys = [], []
            for x, y in pairs:
                if y["system"] == system and _num(x.get(k)) is not None and _num(y.get(k)) is not None:
                    xs.append(_num(x[k]))
                    ys.append(_num(y[k]))
            if len(xs) < 2:
                continue
            diff, lo, hi = paired_bootstrap(xs, ys, n_resamples=n_resamples, confidence=confidence, seed=seed)
            out.append(Difference(system, k, len(xs), float(np.mean(xs)), float(np.mean(ys)), diff, lo, hi))
    return out
