"""Rank and linear correlation for quality-assessment evaluation (SRCC, KRCC, PLCC with optional 4PL fit)."""

from __future__ import annotations

import warnings

import numpy as np

from rlkit.metrics._checks import as_1d

__all__ = ["srcc", "krcc", "plcc", "logistic4", "fit_logistic4"]


def _pair(x: object, y: object, minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_1d(x, "x"), as_1d(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x has {a.size} values but y has {b.size}; they must be parallel")
    if a.size < minimum:
        raise ValueError(f"need at least {minimum} pairs, got {a.size}")
    return a, b


def srcc(x: object, y: object) -> float:
    """Spearman rank-order correlation (ties get average ranks), as ``scipy.stats.spearmanr``."""
    from scipy import stats  # deferred: scipy.stats adds ~1.2 s to `import rlkit.metrics`

    a, b = _pair(x, y)
    return float(stats.spearmanr(a, b).statistic)


def krcc(x: object, y: object) -> float:
    """Kendall rank correlation, tau-b (handles ties), as ``scipy.stats.kendalltau``."""
    from scipy import stats  # deferred: scipy.stats adds ~1.2 s to `import rlkit.metrics`

    a, b = _pair(x, y)
    return float(stats.kendalltau(a, b).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """Four-parameter logistic f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2 (VQEG, IQA convention)."""
    z = np.clip(-(np.asarray(x, dtype=np.float64) - b3) / (abs(b4) + 1e-12), -500, 500)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic4(x: object, y: object) -> np.ndarray:
    """Least-squares fit of ``logistic4`` mapping predictions ``x`` to subjective scores ``y``; returns (b1..b4)."""
    from scipy.optimize import curve_fit  # deferred: scipy.optimize adds ~0.6 s to `import rlkit.metrics`

    a, b = _pair(x, y, minimum=5)
    sx = float(np.std(a)) or 1.0
    best, best_sse = None, np.inf
    # the least-squares surface has local minima: start from several slopes / centres, keep the best fit
    for b3 in (float(np.mean(a)), float(np.median(a))):
        for scale in (1.0, 0.3, 0.1):
            for lo_hi in ((b.max(), b.min()), (b.min(), b.max())):
                p0 = [lo_hi[0], lo_hi[1], b3, sx * scale]
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        params, _ = curve_fit(logistic4, a, b, p0=p0, maxfev=5000)
                except RuntimeError:
                    continue
                sse = float(np.sum((logistic4(a, *params) - b) ** 2))
                if sse < best_sse:
                    best, best_sse = params, sse
    if best is None:
        raise RuntimeError("fit_logistic4: the 4-parameter logistic fit did not converge")
    return best


def plcc(x: object, y: object, *, logistic: bool = False) -> float:
    """Pearson linear correlation; with ``logistic=True`` after mapping ``x`` by a fitted 4-parameter logistic.

    The logistic mapping (VQEG FR-TV Phase II) removes the monotonic non-linearity between objective
    predictions and MOS before measuring linearity, as quality-assessment papers report PLCC.
    """
    from scipy import stats  # deferred: scipy.stats adds ~1.2 s to `import rlkit.metrics`

    a, b = _pair(x, y, minimum=5 if logistic else 2)
    if logistic:
        a = logistic4(a, *fit_logistic4(a, b))
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise ValueError("plcc: undefined for a constant input (zero variance)")
    return float(stats.pearsonr(a, b).statistic)
