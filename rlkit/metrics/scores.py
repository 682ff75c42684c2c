"""Overall scores that combine sub-scores, as the papers define them."""

from __future__ import annotations

import numpy as np

__all__ = ["editrefiner_overall", "viescore_overall"]


def _nonneg(x: object, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or inf")
    if (a < 0).any():
        raise ValueError(f"{name}: scores must be non-negative, got min {a.min():.4g}")
    return a


def editrefiner_overall(s_v: object, s_e: object, s_p: object) -> np.ndarray | float:
    """EditRefiner Eq. (5): s_overall = s_v^0.3 * s_e^0.4 * s_p^0.3.

    In the paper s_v is perceptual quality, s_e instruction adherence, s_p visual consistency (the names
    follow its Eq. 5). Scalars give a float, arrays an array (broadcast).
    """
    v, e, p = _nonneg(s_v, "s_v"), _nonneg(s_e, "s_e"), _nonneg(s_p, "s_p")
    out = v**0.3 * e**0.4 * p**0.3
    return float(out) if out.ndim == 0 else out


def viescore_overall(sc: object, pq: object) -> np.ndarray | float:
    """VIEScore-style overall O = sqrt(SC * PQ) (semantic consistency x perceptual quality), as RetouchEval's O."""
    s, q = _nonneg(sc, "sc"), _nonneg(pq, "pq")
    out = np.sqrt(s * q)
    return float(out) if out.ndim == 0 else out
