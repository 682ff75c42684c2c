"""numba kernels for :mod:`rlkit.metrics.saliency`: fused single-pass sums (imported only when numba is installed).

numpy needs one call (and one pass over the map) per reduction; these kernels do the statistics pass's five
sums, SIM's sum of minima and AUC-Judd's counts above each threshold, in one pass each with the GIL released, so
images in parallel threads scale.
Sums run in blocks of ``_BLOCK`` elements in the map's dtype (vectorised: ``reassoc`` lets LLVM keep partial
sums per SIMD lane), then in float64 across blocks. No ``nnan``/``ninf`` fast-math flags: NaN and inf reach the
sums as IEEE arithmetic gives them (the caller checks finiteness with numpy's min/max first anyway).
The block loops have a constant trip count: LLVM vectorises those, not loops over ``range(start, stop)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FASTMATH = {"reassoc", "contract", "nsz"}
_BLOCK = 4096


@njit(nogil=True, fastmath=_FASTMATH, boundscheck=False, cache=True)
def moments2(x, y, cx, cy):  # pragma: no cover - compiled
    """(sum dx, sum dy, sum dx^2, sum dy^2, sum dx dy) in float64, with dx = x - cx and dy = y - cy.

    One map alone: ``moments2(x, x, c, c)`` (the second read hits the cache)."""
    n = x.size
    z = cx - cx
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for blk in range(n // _BLOCK):
        o = blk * _BLOCK
        a0 = z
        a1 = z
        a2 = z
        a3 = z
        a4 = z
        for j in range(_BLOCK):
            dx = x[o + j] - cx
            dy = y[o + j] - cy
            a0 += dx
            a1 += dy
            a2 += dx * dx
            a3 += dy * dy
            a4 += dx * dy
        s0 += a0
        s1 += a1
        s2 += a2
        s3 += a3
        s4 += a4
    for i in range(n // _BLOCK * _BLOCK, n):
        dx = x[i] - cx
        dy = y[i] - cy
        s0 += dx
        s1 += dy
        s2 += dx * dx
        s3 += dy * dy
        s4 += dx * dy
    return s0, s1, s2, s3, s4


@njit(nogil=True, fastmath=_FASTMATH, boundscheck=False, cache=True)
def sum_of_minima(x, y, lo_x, ratio, lo_y):  # pragma: no cover - compiled
    """sum(min((x - lo_x) * ratio, y - lo_y)) in float64 (SIM with the normalisations folded into scalars)."""
    n = x.size
    z = lo_x - lo_x
    tot = 0.0
    for blk in range(n // _BLOCK):
        o = blk * _BLOCK
        acc = z
        for j in range(_BLOCK):
            a = (x[o + j] - lo_x) * ratio
            b = y[o + j] - lo_y
            acc += a if a < b else b
        tot += acc
    for i in range(n // _BLOCK * _BLOCK, n):
        a = (x[i] - lo_x) * ratio
        b = y[i] - lo_y
        tot += a if a < b else b
    return tot


@njit(nogil=True, boundscheck=False, cache=True)
def count_at_least(x, thr, lo, scale, nb):  # pragma: no cover - compiled
    """#values of ``x`` >= each of the distinct ascending thresholds ``thr`` (int64), exact, without a sort.

    Values and thresholds go to ``nb`` buckets by the same monotone arithmetic ``min(int((v - lo) * scale), nb - 1)``
    in float64, so a value in a lower (higher) bucket than a threshold is below (above) it; only a threshold in
    the value's own bucket needs a comparison (a binary search among that bucket's thresholds). Each value adds
    one to the histogram of "thresholds <= value"; suffix sums give the counts. AUC-Judd's thresholds are the
    fixated values, a few hundred per map: one pass over the map instead of sorting it.
    """
    k = thr.size
    start = np.empty(nb + 1, np.int32)  # start[b]: first threshold whose bucket is >= b
    j = 0
    for b in range(nb + 1):
        while j < k and min(int((np.float64(thr[j]) - lo) * scale), nb - 1) < b:
            j += 1
        start[b] = j
    hist = np.zeros(k + 1, np.int64)  # hist[m]: values with exactly m thresholds <= them
    for i in range(x.size):
        v = x[i]
        b = min(int((np.float64(v) - lo) * scale), nb - 1)
        a = start[b]
        e = start[b + 1]
        while a < e:  # first threshold in the bucket that is > v
            mid = (a + e) >> 1
            if thr[mid] <= v:
                a = mid + 1
            else:
                e = mid
        hist[a] += 1
    out = np.empty(k, np.int64)
    acc = 0
    for m in range(k, 0, -1):
        acc += hist[m]
        out[m - 1] = acc  # values with more than m - 1 thresholds <= them, i.e. >= thr[m - 1]
    return out
