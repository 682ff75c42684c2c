"""Sampled 1-D maps: point-curve lookup tables and the lerp that evaluates the fused tables.

:func:`curve_lut` samples a monotone cubic (Fritsch-Carlson, as scipy's PCHIP) through a 0..255 point curve;
:func:`apply_lut` looks values up in such tables; :func:`lut_lerp` evaluates the fused paths' tables
(:mod:`rlkit.ops.fused`), chunked through reused buffers in eager CPU mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .planes import inplace_ok

__all__ = ["curve_lut", "apply_lut", "lut_lerp", "LUT_SIZE"]

LUT_SIZE = 1024


def _edge_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    """Shape-preserving one-sided three-point end slope (Fritsch-Carlson / PCHIP convention)."""
    d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if math.copysign(1.0, d) != math.copysign(1.0, m0) or m0 == 0.0:
        return 0.0
    if math.copysign(1.0, m0) != math.copysign(1.0, m1) and abs(d) > abs(3.0 * m0):
        return 3.0 * m0
    return d


def curve_lut(points: Sequence[tuple[float, float]], size: int = LUT_SIZE) -> torch.Tensor:
    """Monotone cubic (Fritsch-Carlson) interpolation of a 0..255 point curve, sampled to a [0,1] LUT."""
    xs = torch.tensor([p[0] for p in points], dtype=torch.float64) / 255.0
    ys = torch.tensor([p[1] for p in points], dtype=torch.float64) / 255.0
    n = xs.numel()
    h = xs[1:] - xs[:-1]
    delta = (ys[1:] - ys[:-1]) / h
    m = torch.zeros(n, dtype=torch.float64)
    m[0], m[-1] = delta[0], delta[-1]
    if n > 2:
        m[0] = _edge_slope(float(h[0]), float(h[1]), float(delta[0]), float(delta[1]))
        m[-1] = _edge_slope(float(h[-1]), float(h[-2]), float(delta[-1]), float(delta[-2]))
        for i in range(1, n - 1):
            if delta[i - 1] * delta[i] <= 0:
                m[i] = 0.0
            else:
                w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
                m[i] = (w1 + w2) / (w1 / delta[i - 1] + w2 / delta[i])
    t = torch.linspace(0.0, 1.0, size, dtype=torch.float64)
    idx = torch.searchsorted(xs, t, right=True).clamp(1, n - 1) - 1
    x0, x1, y0, y1 = xs[idx], xs[idx + 1], ys[idx], ys[idx + 1]
    hh = x1 - x0
    s = ((t - x0) / hh).clamp(0.0, 1.0)
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    out = h00 * y0 + h10 * hh * m[idx] + h01 * y1 + h11 * hh * m[idx + 1]
    out = torch.where(t < xs[0], ys[0], torch.where(t > xs[-1], ys[-1], out))
    return out.clamp(0.0, 1.0).float()


def apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """x (N,C,H,W) in [0,1]; lut (N,C,K): linear interpolation between LUT entries."""
    n, c, h, w = x.shape
    k = lut.shape[-1]
    pos = x.clamp(0.0, 1.0).reshape(n, c, h * w) * (k - 1)
    i0 = pos.floor().clamp(0, k - 2)
    frac = pos - i0
    # NaN (a non-finite intermediate) casts to INT64_MIN: clamped, it stays NaN through frac, not an index error
    i0 = i0.long().clamp_(0, k - 2)
    a = torch.gather(lut, 2, i0)
    b = torch.gather(lut, 2, i0 + 1)
    return (a + (b - a) * frac).reshape(n, c, h, w)



def lut_lerp(x: torch.Tensor, top: torch.Tensor, vals: torch.Tensor, slope: torch.Tensor,
              sqrt: bool = False) -> torch.Tensor:
    """Evaluate the fused tables at x (N,C,H,W) (at sqrt(x) for sqrt-spaced tables); differentiable w.r.t. x
    (slope of the segment)."""
    n, c, h, w = x.shape
    k = vals.shape[-1] - 1
    if inplace_ok(x) and not torch.compiler.is_compiling() and x.is_contiguous() and x.device.type == "cpu":
        return _lut_lerp_chunked(x, top, vals, slope, sqrt)
    pos = torch.clamp(x.reshape(n, c, h * w), min=torch.zeros_like(top), max=top)
    fast = inplace_ok(pos) and not torch.compiler.is_compiling()
    if sqrt:
        pos = pos.sqrt_() if fast else pos.sqrt()
    scale = k / top
    pos = pos.mul_(scale) if fast else pos * scale
    # floor, as pos >= 0; pos <= k (+ rounding) < k + 1, and slope[k] == 0. NaN (a non-finite intermediate, e.g.
    # from unclamped apply_params values) casts to INT64_MIN: clamped, so the lookup gives NaN through frac, as
    # the stage-by-stage path does, instead of an index error inside gather
    i0 = pos.long().clamp_(0, k)
    frac = pos.sub_(i0) if fast else pos - i0
    out = torch.gather(vals, 2, i0)
    s = torch.gather(slope, 2, i0)
    out = out.addcmul_(s, frac) if fast else out + s * frac
    return out.reshape(n, c, h, w)


LUT_CHUNK = 1 << 20  # elements (all images and channels together) per chunk of the eager lookup


def _lut_lerp_chunked(x: torch.Tensor, top: torch.Tensor, vals: torch.Tensor, slope: torch.Tensor,
                      sqrt: bool) -> torch.Tensor:
    """:func:`lut_lerp` without autograd, in chunks of pixels through reused buffers (same values).

    Eager torch allocates every intermediate afresh; at batch 8 x 512^2 each one page-faults in ~25-50 MB
    (the int64 index alone cost ~17 passes). Chunks keep the intermediates in cache: 61 -> 15 passes at 512^2.
    """
    n, c, h, w = x.shape
    hw, k = h * w, vals.shape[-1] - 1
    xf = x.reshape(n, c, hw)
    out = torch.empty_like(xf)
    scale = k / top
    m = min(hw, max(1024, LUT_CHUNK // (n * c)))  # pixels per image per chunk
    pos_b = xf.new_empty(n, c, m)
    idx_b = torch.empty(n, c, m, dtype=torch.long, device=x.device)
    slope_b = xf.new_empty(n, c, m)
    for s in range(0, hw, m):
        e = min(s + m, hw)
        pos, idx, sl, o = pos_b[..., :e - s], idx_b[..., :e - s], slope_b[..., :e - s], out[..., s:e]
        torch.minimum(xf[..., s:e], top, out=pos)
        pos.clamp_min_(0.0)
        if sqrt:
            pos.sqrt_()
        pos.mul_(scale)
        idx.copy_(pos)  # floor, as pos >= 0; pos <= k (+ rounding) < k + 1, and slope[k] == 0
        idx.clamp_(0, k)  # NaN casts to INT64_MIN: it stays NaN through pos - idx (see lut_lerp)
        pos.sub_(idx)
        torch.gather(vals, 2, idx, out=o)
        torch.gather(slope, 2, idx, out=sl)
        o.addcmul_(sl, pos)
    return out.view(n, c, h, w)
