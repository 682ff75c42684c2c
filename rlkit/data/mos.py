"""Mean opinion scores from raw ratings, as EditFHF (Eq. 1) following ITU-R BT.500.

1. A rating is an outlier when it deviates from its item's mean by more than ``outlier_sigma`` (2) standard
   deviations of that item's ratings (sample std, ddof=1).
2. Annotators with more than ``max_outlier_fraction`` (5%) of their ratings flagged are dropped entirely;
   the remaining outlier ratings are removed.
3. Each kept annotator's remaining ratings become z-scores z_ij = (s_ij - mu_i) / sigma_i (their own mean
   and sample std); z_j is the mean over the item's valid ratings; Score_j = 100 (z_j + 3) / 6.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["MOSResult", "mos_from_ratings", "ratings_matrix"]


@dataclass
class MOSResult:
    """MOS per item plus what the normalisation removed."""

    mos: np.ndarray  # (items,) on [0, 100] (nominally; z beyond +-3 leaves it)
    z: np.ndarray  # (items,) mean z-score
    outliers: np.ndarray  # (annotators, items) bool, ratings flagged by the 2-sigma rule
    dropped_annotators: list[int]
    n_valid: np.ndarray  # (items,) ratings that entered each MOS
    items: list[Hashable] | None = None
    annotators: list[Hashable] | None = None


def ratings_matrix(rows: Iterable[tuple[Hashable, Hashable, float]]) -> tuple[np.ndarray, list, list]:
    """Long-format ``(annotator, item, score)`` rows -> (annotators x items) matrix with NaN for missing."""
    rows = list(rows)
    annotators = list(dict.fromkeys(r[0] for r in rows))
    items = list(dict.fromkeys(r[1] for r in rows))
    ai = {a: i for i, a in enumerate(annotators)}
    ii = {t: i for i, t in enumerate(items)}
    m = np.full((len(annotators), len(items)), np.nan)
    for k, (a, t, s) in enumerate(rows):
        if not np.isnan(m[ai[a], ii[t]]):
            raise ValueError(f"ratings row {k}: annotator {a!r} rated item {t!r} twice")
        m[ai[a], ii[t]] = float(s)
    return m, annotators, items


def mos_from_ratings(
    ratings: np.ndarray | Iterable[tuple[Hashable, Hashable, float]],
    *,
    outlier_sigma: float = 2.0,
    max_outlier_fraction: float = 0.05,
    ddof: int = 1,
) -> MOSResult:
    """MOS on [0, 100] from raw ratings: 2-sigma outliers out, unreliable annotators out, z-scores, rescale.

    ``ratings``: an (annotators x items) array with NaN where an annotator did not rate an item, or an
    iterable of ``(annotator, item, score)`` rows.
    """
    annotators = items = None
    if isinstance(ratings, np.ndarray):
        m = np.asarray(ratings, dtype=np.float64)
    else:
        m, annotators, items = ratings_matrix(ratings)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"mos_from_ratings: expected an (annotators, items) matrix, got shape {m.shape}")
    if np.isinf(m).any():
        raise ValueError("mos_from_ratings: ratings contain inf")
    have = ~np.isnan(m)
    n_item = have.sum(0)
    mean = np.nanmean(np.where(have, m, np.nan), axis=0) if have.any() else np.zeros(m.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.nansum((m - mean) ** 2, axis=0) / np.maximum(n_item - ddof, 1))
    outliers = have & (np.abs(m - mean) > outlier_sigma * std) & (n_item > ddof)
    n_rated = have.sum(1)
    frac = np.divide(outliers.sum(1), n_rated, out=np.zeros(m.shape[0]), where=n_rated > 0)
    dropped = np.flatnonzero(frac > max_outlier_fraction).tolist()
    valid = have & ~outliers
    valid[dropped] = False
    z = np.full(m.shape, np.nan)
    for a in range(m.shape[0]):
        v = valid[a]
        if v.sum() <= ddof:
            valid[a] = False
            continue
        mu = m[a, v].mean()
        sd = m[a, v].std(ddof=ddof)
        if sd == 0:  # an annotator who gives one score to everything carries no ranking information
            valid[a] = False
            continue
        z[a, v] = (m[a, v] - mu) / sd
    n_valid = valid.sum(0)
    zj = np.divide(np.nansum(np.where(valid, z, 0.0), axis=0), n_valid, out=np.full(m.shape[1], np.nan),
                   where=n_valid > 0)
    return MOSResult(100.0 * (zj + 3.0) / 6.0, zj, outliers, dropped, n_valid, items, annotators)
