"""Pow-free sRGB transfer functions and gain maps for torch.compile (inductor, CPU) code paths.

Why: a compiled ``x ** 2.4`` runs Sleef's ``powf``, about 1.7 passes of pure compute per pixel on our CPUs.
Under torch.compile the functions here are branch-free torch arithmetic (``where`` selects; no gathers,
no lookup tables, no data-dependent control flow) that inductor fuses into one vectorised loop. In eager
mode the same functions run the exact pow-based formulas instead: without fusion every one of the ~25
arithmetic steps below is a full memory pass, so the pow chain is the faster one there.

How (``benchmarks/fastmath.py`` measures the costs; 8x3x1024^2, 2 threads, in passes of ``x * 1.0``):

* ``gain_map(x, g) = encode(clamp(decode(x) * g, 0, 1))`` splits x at two per-channel thresholds. Toe in
  and toe out: ``x * g`` (the 1/12.92 and 12.92 cancel). Power in and power out: ``((x + 0.055) / 1.055)
  ** 2.4 * g`` encodes to exactly the affine ``(x + 0.055) * g ** (1/2.4) - 0.055``. Only the band between
  needs a fractional power, of an argument confined to a known range: for ``g >= 1`` (toe in, power
  out) ``1.055 u ** (1/2.4) - 0.055`` with ``u = x g / 12.92`` in ``[0.0031308, 1]``; for ``g < 1``
  (power in, toe out) ``12.92 g w ** 2.4`` with ``w = (x + 0.055) / 1.055`` in ``[0.0905, 8]``.
  Cost 1.3 passes (decode * g -> encode with pows: 4.8; kornia's adjust_brightness: 1.1).
* Those two powers are type (8, 8) rational functions P/Q (relative error 1.2e-7 and 1.7e-7): over a
  319:1 range a rational beats polynomials by orders of magnitude (its poles sit on the negative axis,
  next to the singularity at 0), for 16 fused multiply-adds and one division. (Squeezing the range with
  three chained square roots and a degree-6 polynomial costs more: zmm sqrt is slow, 1.6 passes.) The
  per-(image, channel) thresholds, band kind and coefficients, 25 numbers each, come from a custom op
  (opaque to inductor, which would otherwise recompute them, pows included, for every pixel).
* ``srgb_to_linear_fast`` / ``linear_to_srgb_fast`` use the same rationals (decode valid up to x = 8.4;
  the encode clamps to [0, 1] like the engine does before encoding): 1.25 passes each instead of 2.8.
  Each extra select costs more than its share: these loops sit right at the point where compute stops
  hiding under memory traffic (one more ``where`` took a measured 1.25 to 1.8 passes), hence no range
  reduction steps or argument clamps.

A general ``x ** e`` the same way (exponent split plus polynomial log2/exp2) was measured slower than a
compiled ``torch.pow`` (3.6 vs 2.7 passes: inductor does not vectorise bitcasts), so there is none here.
"""

from __future__ import annotations

import collections
import functools
import struct
import warnings

import numpy as np
import torch

from .color import linear_to_srgb, srgb_to_linear

__all__ = ["gain_map", "gain_map_reference", "gain_map_poly_params", "gain_map_poly_kernel", "srgb_to_linear_fast",
           "linear_to_srgb_fast"]

# sRGB (IEC 61966-2-1) constants, as in rlkit.ops.color
_X_KNEE = 0.04045  # decode: linear toe at or below
_L_KNEE = 0.0031308  # encode: linear toe at or below


def _f32_at_most(v: float) -> float:
    """Largest float32 <= v, so that ``x32 <= result`` decides exactly like ``float(x32) <= v``."""
    r = struct.unpack("f", struct.pack("f", v))[0]
    if r > v:
        r = float(np.nextafter(np.float32(r), np.float32(-np.inf)))
    return r


_X_KNEE32 = _f32_at_most(_X_KNEE)
_L_KNEE32 = _f32_at_most(_L_KNEE)

# Type (8, 8) rational approximations P/Q, coefficients lowest degree first, from scipy's AAA on a dense
# geometric + uniform grid (``_derive_rational``), scaled so that sum(Q) == 1. P and Q are positive on the
# interval; for band A every coefficient is positive (zeros and poles on the negative real axis), so
# float32 Horner evaluation has no cancellation.
# A: u ** (1/2.4) for u in [0.0031308, 1]   (max relative error 1.2e-7)
# B: w ** 2.4     for w in [0.0905, 8]      (max relative error 1.7e-7)
_P_A = (1.435210000203825e-12, 6.164970367373614e-09, 3.0036033781737105e-06, 0.000346544635207038,
        0.011743823847785464, 0.12555514444386834, 0.417576020049854, 0.3811906368391181, 0.06358481834856028)
_Q_A = (6.820060372475832e-11, 9.925679239584203e-08, 2.5434188954579082e-05, 0.00173474588763921,
        0.03622335275484889, 0.23967053543308467, 0.47666242841813083, 0.23234383034837267, 0.01333957364397613)
_P_B = (1.3675934515618874e-07, -1.2768420502308367e-05, 0.0014090698715789364, 0.04512742724002272,
        0.2551474193382476, 0.42313892447191614, 0.23246291354815635, 0.04094399483192769,
        0.0017828823454566077)
_Q_B = (0.00751497716618195, 0.10631724395432296, 0.3579950617988159, 0.3796696319888076,
        0.13398729813525856, 0.01423805780954291, 0.0002794042885936106, -1.6880371615349616e-06,
        1.2895638027053924e-08)
_N_PARAMS = 7 + 2 * len(_P_A)


def _derive_rational(power: float, lo: float, hi: float, degree: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Re-derive a (degree, degree) rational approximation of ``v ** power`` on [lo, hi] (needs scipy);
    returns (P, Q) coefficients lowest first with sum(Q) == 1. This is how the constants above were made."""
    from scipy.interpolate import AAA  # deferred: slow to import, and only this derivation helper needs it

    v = np.unique(np.concatenate([np.geomspace(lo, hi, 30000), np.linspace(lo, hi, 30000)]))
    y = v ** power
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AAA warns when it stops at max_terms, which is what we ask for
        r = AAA(v, y, max_terms=degree + 1, rtol=0)
    p = np.real(np.poly(r.roots()))[::-1]
    q = np.real(np.poly(r.poles()))[::-1]
    p = p * np.median(y * np.polyval(q[::-1], v) / np.polyval(p[::-1], v))
    return p / q.sum(), q / q.sum()


# ------------------------------------------------------------------------------------------ helpers
def _fma(a: torch.Tensor, b: torch.Tensor | float, c: torch.Tensor | float) -> torch.Tensor:
    """a * b + c: one fused instruction under torch.compile (inductor never contracts a * b + c itself),
    plain arithmetic in eager (the two differ by at most one rounding)."""
    if torch.compiler.is_compiling():
        # registers torch.ops.prims.fma; already imported whenever inductor compiles (too slow for import time)
        import torch._inductor.inductor_prims as _prims  # noqa: F401

        if not isinstance(b, torch.Tensor):
            b = torch.full_like(a, b)
        if not isinstance(c, torch.Tensor):
            c = torch.full_like(a, c)
        return torch.ops.prims.fma(a, b, c)
    return a * b + c


def _horner(coefs, t: torch.Tensor) -> torch.Tensor:
    """Polynomial with coefficients (lowest first; floats or broadcastable tensors) at t."""
    p = _fma(t, coefs[-1], coefs[-2])
    for c in coefs[-3::-1]:
        p = _fma(p, t, c)
    return p


def _float_input(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        what = type(x).__name__ + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else "")
        raise TypeError(f"{name}: x must be a floating-point tensor, got {what}")


# ------------------------------------------------------------------------------------------ gain map
def _band_bounds(gd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 (t1, t2) per gain: toe for x <= t1, the band (a fractional power) for t1 < x <= t2, affine
    above. g >= 1: toe out ends at x g / 12.92 = 0.0031308, the band at the decode knee (or where u = x g /
    12.92 reaches 1); g < 1: toe in ends at the decode knee, the band where decode(x) g = 0.0031308."""
    up = gd >= 1.0
    with np.errstate(divide="ignore", over="ignore"):
        t1 = np.where(up, (_L_KNEE * 12.92) / gd, _X_KNEE)
        t2 = np.where(up, np.minimum(_X_KNEE, 12.92 / gd), 1.055 * (_L_KNEE / gd) ** (1 / 2.4) - 0.055)
    return t1, t2


def _gain_params(g: torch.Tensor) -> torch.Tensor:
    """Per-(image, channel) thresholds, affine maps and rational coefficients, stacked along a new first
    dim: (_N_PARAMS, *g.shape) float32. Computed in float64 numpy: a few dozen numbers, so numpy's per-call
    cost (~30 us) beats ~60 small torch ops (~0.3 ms, a third of a pass at 8x3x512^2)."""
    gd = g.detach().to("cpu", torch.float64).numpy()
    up = gd >= 1.0

    def sel(a: float, b: float) -> np.ndarray:
        return np.where(up, a, b)

    # toe for x <= t1, band for t1 < x <= t2, affine above. For g >= 12.92 / 0.04045 the band ends where
    # u = x g / 12.92 reaches 1 and the affine part is made to saturate (slope 1e30).
    sat = gd * _X_KNEE >= 12.92
    t1, t2 = _band_bounds(gd)
    with np.errstate(over="ignore"):
        slope = np.where(sat, 1e30, gd ** (1 / 2.4))
    # band: arg = alpha x + beta (u for A, w for B); out = (k P(arg) + off Q(arg)) / Q(arg)
    alpha = np.where(up, gd / 12.92, 1 / 1.055)
    beta = sel(0.0, 0.055 / 1.055)
    k = np.where(up, 1.055, 12.92 * gd)
    off = sel(-0.055, 0.0)
    num = [k * sel(pa, pb) + off * sel(qa, qb) for pa, pb, qa, qb in zip(_P_A, _P_B, _Q_A, _Q_B, strict=True)]
    den = [sel(qa, qb) for qa, qb in zip(_Q_A, _Q_B, strict=True)]
    rest = np.stack([gd, slope, slope * 0.055 - 0.055, alpha, beta, *num, *den]).astype(np.float32)
    # thresholds rounded down to float32, so that x32 <= t decides like the float64 reference
    thr = np.stack([t1, t2])
    t32 = thr.astype(np.float32)
    t32 = np.where(t32.astype(np.float64) > thr, np.nextafter(t32, np.float32(-np.inf)), t32)
    return torch.from_numpy(np.concatenate([t32, rest])).to(g.device)


@torch.library.custom_op("rlkit::gain_map_params", mutates_args=())
def _gain_params_op(g: torch.Tensor) -> torch.Tensor:
    # opaque to inductor, so the (tiny) per-channel maths runs once instead of being inlined per pixel
    return _gain_params(g)


@_gain_params_op.register_fake
def _(g: torch.Tensor) -> torch.Tensor:
    return g.new_empty((_N_PARAMS, *g.shape), dtype=torch.float32)


def gain_map(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``linear_to_srgb(srgb_to_linear(x).clamp_min(0).mul(g).clamp(0, 1))``; pow-free under torch.compile.

    x: sRGB values, any float dtype (computed in float32; eager float64 takes the exact float64 path,
    compiled float64 is approximated in float32 like the rest).
    g: finite positive gains broadcastable to x without enlarging it, e.g. (N,3,1,1) exposure x white
    balance. Under torch.compile: the rational kernel (max abs error vs the float64 formula 5e-7 for every
    x and any gain >= 2^-15, x <= 1 for smaller ones; g is not differentiated through; inputs are not
    validated). Eager: the exact pow chain, which is the faster one without fusion (11 vs ~50 passes).
    x < 0 gives 0, NaN stays NaN.
    """
    if torch.compiler.is_compiling():
        return _gain_map_approx(x.float(), _gain_params_op(g.detach())).to(x.dtype)
    _check_gain(x, g)
    if x.dtype == torch.float64:
        return gain_map_reference(x, g)
    lin = srgb_to_linear(x.float())
    if torch.is_grad_enabled() and (lin.requires_grad or g.requires_grad):
        lin = lin.clamp_min(0.0).mul(g).clamp(0.0, 1.0)
    else:
        lin = lin.clamp_min_(0.0).mul_(g.float()).clamp_(0.0, 1.0)
    return linear_to_srgb(lin).to(x.dtype)


def _gain_map_approx(xf: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The pow-free kernel of :func:`gain_map` on float32 x, given ``_gain_params(g)``."""
    t1, t2, gf, slope, aoff, alpha, beta, *coefs = params.unbind(0)
    n = len(_P_A)
    arg = _fma(xf, alpha, beta)
    band = _horner(coefs[:n], arg) / _horner(coefs[n:], arg)
    out = torch.where(xf <= t1, torch.relu(xf) * gf, torch.where(xf <= t2, band, _fma(xf, slope, aoff)))
    return torch.where(out > 1.0, 1.0, out)


# ------------------------------------------------------------------------------------------ gain map, small gains
# For the gains programs use most (|EV| up to ~1.3 with white balance) each channel's band is narrow enough
# for a low-degree polynomial fitted per call, which compiles cheaper than the (8, 8) rational (no division,
# 4-6 multiply-adds instead of 16): ~1.15 vs ~1.3 passes at 8x3x1024^2.
_POLY_TOL = 1.5e-7  # max abs error of the fit (float64) on a dense grid of each band
_POLY_MAX_DEGREE = 6
_CHEB_NODES = np.cos(np.pi * (np.arange(32) + 0.5) / 32)
_CHECK_Z = np.linspace(-1.0, 1.0, 513)


def _band_exact(x: np.ndarray, gd: np.ndarray) -> np.ndarray:
    """The band's exact float64 value: encode(x g / 12.92) for g >= 1, 12.92 g decode(x) for g < 1."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        up = 1.055 * np.maximum(x * gd / 12.92, 0.0) ** (1 / 2.4) - 0.055
        down = 12.92 * gd * np.maximum((x + 0.055) / 1.055, 0.0) ** 2.4
    return np.where(gd >= 1.0, up, down)


def gain_map_poly_params(g: torch.Tensor) -> list[torch.Tensor] | None:
    """Parameters for :func:`gain_map_poly_kernel`: thresholds and affine parts as in :func:`gain_map`, the
    band as one polynomial per channel in ``z = alpha x + beta`` (z in [-1, 1] on the band), of the lowest
    degree (<= 6) that fits every channel to 1.5e-7; None when some gain needs more (use :func:`gain_map`).

    Cached per gains, shape and device (a training loop renders the same programs again and again); the
    returned tensors are shared, do not modify them."""
    gd = g.detach().to("cpu", torch.float64).numpy()
    key = (gd.tobytes(), gd.shape, str(g.device))
    if key in _PARAMS_CACHE:
        _PARAMS_CACHE.move_to_end(key)
        return _PARAMS_CACHE[key]
    uniq, inverse = np.unique(gd.reshape(-1), return_inverse=True)  # a broadcast program repeats its gains
    fit = _band_poly(tuple(uniq.tolist()))
    out = None
    if fit is not None:
        base = _gain_params(g)  # t1, t2, g, slope, affine offset, ...: the shared part
        alpha, beta, mono = fit
        extra = np.concatenate([np.stack([alpha[inverse], beta[inverse]]), mono[:, inverse]])
        extra = extra.reshape(-1, *gd.shape).astype(np.float32)
        out = [*base[:5].unbind(0), *torch.from_numpy(extra).to(g.device).unbind(0)]
    _PARAMS_CACHE[key] = out
    if len(_PARAMS_CACHE) > 1024:
        _PARAMS_CACHE.popitem(last=False)
    return out


_PARAMS_CACHE: collections.OrderedDict = collections.OrderedDict()


@functools.lru_cache(maxsize=4096)
def _band_poly(gains: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(alpha, beta, monomial coefficients (deg + 1, C)) of the band polynomials for these gains, or None."""
    flat = np.asarray(gains, dtype=np.float64)
    t1, t2 = _band_bounds(flat)
    if not np.all(np.isfinite(t1) & np.isfinite(t2)):
        return None
    half = np.maximum((t2 - t1) / 2.0, 1e-12)  # an empty band (g == 1) gets any polynomial
    mid = (t1 + t2) / 2.0
    f_nodes = _band_exact(mid[None, :] + half[None, :] * _CHEB_NODES[:, None], flat[None, :])  # (M, C)
    f_check = _band_exact(mid[None, :] + half[None, :] * _CHECK_Z[:, None], flat[None, :])
    cheb = np.polynomial.chebyshev
    for deg in range(1, _POLY_MAX_DEGREE + 1):
        c = cheb.chebfit(_CHEB_NODES, f_nodes, deg)  # (deg + 1, C)
        err = np.abs(cheb.chebval(_CHECK_Z, c).T - f_check)  # (513, C)
        if float(err.max()) <= _POLY_TOL:
            break
    else:
        return None
    mono = np.stack([cheb.cheb2poly(c[:, j]) for j in range(c.shape[1])], axis=1)  # (deg + 1, C), lowest first
    return 1.0 / half, -mid / half, mono


def gain_map_poly_kernel(x: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, gf: torch.Tensor,
                         slope: torch.Tensor, aoff: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
                         *coefs: torch.Tensor) -> torch.Tensor:
    """:func:`gain_map` with :func:`gain_map_poly_params`' parameters (meant for torch.compile; exact to 5e-7)."""
    xf = x.float()
    band = _horner(coefs, _fma(xf, alpha, beta))
    out = torch.where(xf <= t1, torch.relu(xf) * gf, torch.where(xf <= t2, band, _fma(xf, slope, aoff)))
    return torch.where(out > 1.0, 1.0, out).to(x.dtype)


def gain_map_reference(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The plain decode * gain -> encode chain with real pows (the definition ``gain_map`` approximates)."""
    lin = torch.where(x <= _X_KNEE, x / 12.92, ((x.clamp_min(_X_KNEE) + 0.055) / 1.055) ** 2.4)
    lin = (lin.clamp_min(0.0) * g).clamp(0.0, 1.0)
    return torch.where(lin <= _L_KNEE, lin * 12.92, 1.055 * lin.clamp_min(_L_KNEE) ** (1 / 2.4) - 0.055)


def _check_gain(x: torch.Tensor, g: torch.Tensor) -> None:
    _float_input("gain_map", x)
    if not isinstance(g, torch.Tensor) or not g.is_floating_point():
        what = type(g).__name__ + (f" of dtype {g.dtype}" if isinstance(g, torch.Tensor) else "")
        raise TypeError(f"gain_map: g must be a floating-point tensor of gains, got {what}")
    try:
        shape = torch.broadcast_shapes(x.shape, g.shape)
    except RuntimeError:
        raise ValueError(f"gain_map: g of shape {tuple(g.shape)} does not broadcast to x of shape "
                         f"{tuple(x.shape)}") from None
    if shape != x.shape:
        raise ValueError(f"gain_map: g of shape {tuple(g.shape)} would enlarge x of shape {tuple(x.shape)}")
    ok = (g > 0) & torch.isfinite(g)
    if not bool(ok.all()):
        raise ValueError(f"gain_map: gains must be finite and > 0, got {g[~ok].flatten()[0].item()}")


# ------------------------------------------------------------------------------------------ sRGB
# No range-reduction steps or argument clamps here on purpose: each extra select pushes the compiled loop
# over the point where it stops hiding under memory traffic (~1.25 -> ~1.8 passes, measured).
def srgb_to_linear_fast(x: torch.Tensor) -> torch.Tensor:
    """:func:`rlkit.ops.color.srgb_to_linear`, with the 2.4 power as a rational function under torch.compile.

    Compiled: max relative error 6e-7 for x in (0.04045, 8.385] (linear up to 256), absolute 1e-9 in the
    linear toe (which continues below 0 like the original); above 8.385 the approximation is out of its
    range, do not use it there. Eager: the exact function (in float64 for float64 input), faster without
    fusion; compiled float64 input is approximated in float32.
    NaN stays NaN.
    """
    _float_input("srgb_to_linear_fast", x)
    if not torch.compiler.is_compiling():
        return srgb_to_linear(x if x.dtype == torch.float64 else x.float()).to(x.dtype)
    return _decode_approx(x.float()).to(x.dtype)


def linear_to_srgb_fast(x: torch.Tensor) -> torch.Tensor:
    """``linear_to_srgb(x.clamp(0, 1))`` (the engine's final encode), the 1/2.4 power as a rational function
    under torch.compile.

    Note the clamp: unlike :func:`rlkit.ops.color.linear_to_srgb`, x < 0 gives 0 and x > 1 gives 1.
    Compiled: max abs error 5e-7 (float32, also for float64 input). Eager: the exact function. NaN stays NaN.
    """
    _float_input("linear_to_srgb_fast", x)
    if not torch.compiler.is_compiling():
        return linear_to_srgb((x if x.dtype == torch.float64 else x.float()).clamp(0.0, 1.0)).to(x.dtype)
    return _encode_approx(x.float()).to(x.dtype)


def _decode_approx(xf: torch.Tensor) -> torch.Tensor:
    w = _fma(xf, 1 / 1.055, 0.055 / 1.055)
    hi = _horner(_P_B, w) / _horner(_Q_B, w)
    return torch.where(xf <= _X_KNEE32, xf * (1 / 12.92), hi)


def _encode_approx(xf: torch.Tensor) -> torch.Tensor:
    hi = torch.where(xf >= 1.0, 1.0, _fma(_horner(_P_A, xf) / _horner(_Q_A, xf), 1.055, -0.055))
    return torch.where(xf <= _L_KNEE32, torch.relu(xf) * 12.92, hi)
