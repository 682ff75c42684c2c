"""numba kernels for :mod:`rlkit.metrics.saliency`: fused single-pass sums (imported only when numba is installed).

numpy needs one call (and one pass over the map) per reduction; these kernels do the statistics pass's five
sums, and SIM's sum of minima, in one pass each with the GIL released, so images in parallel threads scale.
Sums run in blocks of ``_BLOCK`` elements in the map's dtype (vectorised: ``reassoc`` lets LLVM keep partial
sums per SIMD lane), then in float64 across blocks. No ``nnan``/``ninf`` fast-math flags: NaN and inf reach the
sums as IEEE arithmetic gives them (the caller checks finiteness with numpy's min/max first anyway).
The block loops have a constant trip count: LLVM vectorises those, not loops over ``range(start, stop)``.
"""

from __future__ import annotations

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
