"""The retouch engine: apply edit programs to batches of sRGB images in pure torch.

Pipeline order (one documented order, linear light unless noted):

1. decode sRGB -> linear
2. detail: luminance noise reduction, texture, clarity, dehaze
3. exposure and white balance (temperature, tint) as one per-channel gain
4. tone: blacks, whites, shadows, highlights, contrast, parametric curve (on perceptual luminance
   p = sqrt(Y); the result rescales RGB by Y'/Y so hue and saturation are kept)
5. 8-band HSL (hue rotation about the grey axis, chroma scale, luminance gain; bands weighted by saturation)
6. vibrance and saturation (chroma scaled around luminance)
7. colour grading (shadow / midtone / highlight / global tints and luminance)
8. vignette, then sharpening
9. clamp to [0, 1], encode linear -> sRGB
10. point tone curves (master, then R/G/B) in display space, then seeded grain; clamp to [0, 1]

Fused 1-D paths (same results to < 1e-5, see docs/engine.md): a program whose only active ops are
per-channel functions of the value (exposure, white balance, point curves; grain comes after) runs as ONE
sampled 1-D map per channel per image (steps 1, 3, 9, 10 composed, evaluated exactly through the stages
in float64, applied by linear interpolation); otherwise, with point curves, steps 9-10 (clamp, encode,
curves) are one such map. Neither is used while autograd records slider gradients.

Under ``compile=True`` the stages run on the image held as three channel planes (:class:`_Planes`), so
inductor computes each pixel's three channels in one loop and shares their luminance, tone ratio and
hue weights instead of recomputing them per channel (same results to float rounding).

Local adjustments add their (mask-weighted) offsets to the global slider values per pixel before each
step. All formulas are smooth in the continuous sliders, so :func:`apply_params` with tensors that
require grad gives gradients.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .color import hue_saturation, linear_to_srgb, luminance, srgb_to_linear
from .errors import ProgramError
from .fastmath import (
    gain_map,
    gain_map_poly_kernel,
    gain_map_poly_params,
    linear_to_srgb_fast,
    srgb_to_linear_fast,
)
from .params import CURVE_CHANNELS, HSL_BAND_HUES, HSL_BANDS, LOCAL_PARAMS, PARAM_SPECS
from .program import EditProgram, LocalAdjustment

__all__ = ["apply_program", "apply_params", "curve_lut", "gaussian_blur"]

_LUT_SIZE = 1024


# ---------------------------------------------------------------------------------------------- helpers
def _check_images(images: Any, where: str = "apply_program") -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{where}: images must be a torch.Tensor (N,3,H,W) in [0,1], got {type(images).__name__}; "
                        "use rlkit.ops.to_tensor for PIL images or arrays")
    if images.dim() == 3:
        raise ValueError(f"{where}: images must be (N,3,H,W); got a single (3,H,W) image, add a batch dim "
                         "with images[None]")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{where}: images must be (N,3,H,W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{where}: images must be float in [0,1], got dtype {images.dtype}; "
                         "divide uint8 images by 255 (or use rlkit.ops.to_tensor)")
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{where}: images must be non-empty, got shape {tuple(images.shape)}")
    return images


def _gauss_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    r = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    k = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return k / k.sum()


def _shift_blur(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian as a sum of shifted, weighted views (replicated borders)."""
    r = max(1, int(math.ceil(3.0 * sigma)))
    k = [math.exp(-(i * i) / (2.0 * sigma * sigma)) for i in range(-r, r + 1)]
    tot = sum(k)
    k = [v / tot for v in k]
    h, w = y.shape[-2:]
    p = F.pad(y, (r, r, 0, 0), mode="replicate")
    o = p[..., :, 0:w] * k[0]
    for i in range(1, len(k)):
        o = o + p[..., :, i:i + w] * k[i]
    p = F.pad(o, (0, 0, r, r), mode="replicate")
    o = p[..., 0:h, :] * k[0]
    for i in range(1, len(k)):
        o = o + p[..., i:i + h, :] * k[i]
    return o


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with replicated borders; sigma > 3 runs on a downsampled copy (much cheaper; on
    smooth content within ~1% inside and a few percent at the borders, where a block average is replicated)."""
    if sigma <= 0:
        return x
    n, c, h, w = x.shape
    f = int(sigma // 2) if sigma > 3 else 1
    f = max(1, min(f, h // 2 or 1, w // 2 or 1))
    hp, wp = -(-h // f) * f, -(-w // f) * f  # pooled in whole f x f blocks: edges replicated up to a multiple
    if f > 1 and (hp, wp) != (h, w):        # of f (pooling alone dropped the last h % f rows and w % f columns)
        x = F.pad(x, (0, wp - w, 0, hp - h), mode="replicate")
    y = F.avg_pool2d(x, f, f) if f > 1 else x
    s = sigma / f
    if torch.compiler.is_compiling():
        # shifted multiply-adds fuse well, but only from a stored input: inductor would otherwise recompute
        # the (pow-heavy) producer of ``y`` once per tap. An opaque copy stores it without a graph break
        # (a break made dynamo run the code after the blur eagerly)
        y = _shift_blur(torch.ops.rlkit.materialize(y), s)
    else:
        k = _gauss_kernel(s, x.device).to(x.dtype)
        r = (k.numel() - 1) // 2
        y = y.reshape(n * c, 1, y.shape[-2], y.shape[-1])
        y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
        y = y.reshape(n, c, y.shape[-2], y.shape[-1])
    if f > 1:
        y = _upsample(y, hp, wp)
        if (hp, wp) != (h, w):
            y = y[..., :h, :w]
    return y


def _upsample(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear upsampling; under torch.compile ATen's kernel as an opaque op (~1.5x faster than inductor's
    lowering of it on CPU; clarity was most of the compiled 10-op program's time at 512^2)."""
    if torch.compiler.is_compiling():
        return torch.ops.rlkit.upsample_bilinear(y, h, w)
    return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


@torch.library.custom_op("rlkit::upsample_bilinear", mutates_args=())
def _upsample_op(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


@_upsample_op.register_fake
def _(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return y.new_empty((*y.shape[:-2], h, w))


@torch.library.custom_op("rlkit::upsample_bilinear_backward", mutates_args=())
def _upsample_backward_op(grad: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.upsample_bilinear2d_backward(grad.contiguous(), list(grad.shape[-2:]), list(y.shape),
                                                        False)


@_upsample_backward_op.register_fake
def _(grad: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(y)


def _upsample_backward(ctx: Any, grad: torch.Tensor) -> tuple:
    return torch.ops.rlkit.upsample_bilinear_backward(grad, ctx.saved_tensors[0]), None, None


def _upsample_setup(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    ctx.save_for_backward(inputs[0])


_upsample_op.register_autograd(_upsample_backward, setup_context=_upsample_setup)


@torch.library.custom_op("rlkit::materialize", mutates_args=())
def _materialize_op(y: torch.Tensor) -> torch.Tensor:
    """An opaque copy: makes inductor store ``y`` instead of fusing (and recomputing) its producer."""
    return y.clone()


@_materialize_op.register_fake
def _(y: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(y)


_materialize_op.register_autograd(lambda ctx, grad: grad)


def _smoothstep(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _edge_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    """Shape-preserving one-sided three-point end slope (Fritsch-Carlson / PCHIP convention)."""
    d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if math.copysign(1.0, d) != math.copysign(1.0, m0) or m0 == 0.0:
        return 0.0
    if math.copysign(1.0, m0) != math.copysign(1.0, m1) and abs(d) > abs(3.0 * m0):
        return 3.0 * m0
    return d


def curve_lut(points: Sequence[tuple[float, float]], size: int = _LUT_SIZE) -> torch.Tensor:
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


def _apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """x (N,C,H,W) in [0,1]; lut (N,C,K): linear interpolation between LUT entries."""
    n, c, h, w = x.shape
    k = lut.shape[-1]
    pos = x.clamp(0.0, 1.0).reshape(n, c, h * w) * (k - 1)
    i0 = pos.floor().clamp(0, k - 2)
    frac = pos - i0
    i0 = i0.long()
    a = torch.gather(lut, 2, i0)
    b = torch.gather(lut, 2, i0 + 1)
    return (a + (b - a) * frac).reshape(n, c, h, w)


def _inplace(t: torch.Tensor) -> bool:
    """In-place updates of the engine's own intermediates are safe (and skip fresh allocations) unless autograd
    is recording them (or the image is held as planes under torch.compile)."""
    return isinstance(t, torch.Tensor) and not (torch.is_grad_enabled() and t.requires_grad)


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.add_(b) if _inplace(a) and isinstance(b, torch.Tensor) and not b.requires_grad and torch.broadcast_shapes(a.shape, b.shape) == a.shape \
        else a.add(b)


def _mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.mul_(b) if _inplace(a) and isinstance(b, torch.Tensor) and not b.requires_grad and torch.broadcast_shapes(a.shape, b.shape) == a.shape \
        else a.mul(b)


class _Planes:
    """An (N,3,H,W) image held as three (N,1,H,W) channel planes, used under torch.compile only.

    Stage code is written once for (N,3,H,W) tensors; fed planes instead, every per-pixel quantity that
    the channels share (luminance, the tone ratio, HSL weights, ...) appears once in inductor's graph and
    the final stack becomes one loop computing a pixel's three outputs together. On whole (N,3,H,W)
    tensors inductor loops over channels and recomputes those shared quantities (pows included) per
    channel: 2-3x slower (benchmarks/engine.py).
    """

    __slots__ = ("p",)

    def __init__(self, planes: Sequence[torch.Tensor]) -> None:
        self.p = tuple(planes)

    @staticmethod
    def split(o: Any) -> tuple:
        if isinstance(o, _Planes):
            return o.p
        if isinstance(o, torch.Tensor) and o.dim() >= 2 and o.shape[1] == 3:
            return o[:, 0:1], o[:, 1:2], o[:, 2:3]
        return o, o, o

    def _map(self, other: Any, fn: Any) -> _Planes:
        return _Planes([fn(a, b) for a, b in zip(self.p, _Planes.split(other))])

    # method calls, not operators: dynamo cannot dispatch ``planes - tensor`` to a user class
    def add(self, o: Any) -> _Planes:
        return self._map(o, lambda a, b: a + b)

    def sub(self, o: Any) -> _Planes:
        return self._map(o, lambda a, b: a - b)

    def mul(self, o: Any) -> _Planes:
        return self._map(o, lambda a, b: a * b)

    def div(self, o: Any) -> _Planes:
        return self._map(o, lambda a, b: a / b)

    def __getitem__(self, idx: Any) -> torch.Tensor:
        # only the channel slices the stages use: x[:, i:i+1]
        if isinstance(idx, tuple) and len(idx) == 2 and idx[0] == slice(None) and isinstance(idx[1], slice):
            i = idx[1].start or 0
            if idx[1].stop == i + 1 and (idx[1].step in (None, 1)):
                return self.p[i]
        raise IndexError(f"_Planes supports x[:, i:i+1] only, got {idx!r}")

    def clamp(self, lo: float | None = None, hi: float | None = None) -> _Planes:
        return _Planes([a.clamp(lo, hi) for a in self.p])

    def clamp_min(self, lo: float) -> _Planes:
        return _Planes([a.clamp_min(lo) for a in self.p])

    def sqrt(self) -> _Planes:
        return _Planes([a.sqrt() for a in self.p])

    def amax(self, dim: int = 1, keepdim: bool = True) -> torch.Tensor:
        return torch.maximum(torch.maximum(self.p[0], self.p[1]), self.p[2])

    def amin(self, dim: int = 1, keepdim: bool = True) -> torch.Tensor:
        return torch.minimum(torch.minimum(self.p[0], self.p[1]), self.p[2])

    def mean(self, dim: int = 1, keepdim: bool = True) -> torch.Tensor:
        return (self.p[0] + self.p[1] + self.p[2]) * (1.0 / 3.0)

    @property
    def shape(self) -> torch.Size:
        s = self.p[0].shape
        return torch.Size((s[0], 3, *s[2:]))

    @property
    def device(self) -> torch.device:
        return self.p[0].device

    @property
    def requires_grad(self) -> bool:
        return True  # never update planes in place (see _inplace)

    def stack(self) -> torch.Tensor:
        return torch.stack([a[:, 0] for a in self.p], 1)


def _chans(like: Any, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> Any:
    """Three per-channel values as planes when ``like`` is planar, else concatenated (N,3,...)."""
    if isinstance(like, _Planes):
        return _Planes(torch.broadcast_tensors(a, b, c))
    return torch.cat(torch.broadcast_tensors(a, b, c), dim=1)


# ---------------------------------------------------------------------------------------------- params
class _Params:
    """Per-image slider values: global (N,1,1,1) tensors plus local (N,1,H,W) offset maps."""

    def __init__(self, n: int, device: torch.device, values: Mapping[str, torch.Tensor],
                 local: Mapping[str, torch.Tensor]):
        self.n, self.device, self.values, self.local = n, device, values, local

    def active(self, name: str) -> bool:
        return name in self.values or name in self.local

    def get(self, name: str, *, clip: bool = True) -> torch.Tensor:
        spec = PARAM_SPECS[name]
        v = self.values.get(name)
        if v is None:
            v = torch.full((self.n, 1, 1, 1), spec.default, device=self.device)
        if name in self.local:
            v = v + self.local[name]
            if clip:
                v = v.clamp(spec.lo, spec.hi)
        return v

    def images(self, i: int, j: int) -> _Params:
        """The parameters of images i..j-1 (maps shared by the batch, of size 1, stay shared)."""
        def cut(t: torch.Tensor) -> torch.Tensor:
            return t[i:j] if t.shape[0] == self.n else t
        return _Params(j - i, self.device, {k: cut(v) for k, v in self.values.items()},
                       {k: cut(v) for k, v in self.local.items()})

    def scalar(self, name: str) -> list[float]:
        """Per-image Python floats (for structural parameters such as blur radii)."""
        v = self.values.get(name)
        if v is None:
            return [PARAM_SPECS[name].default] * self.n
        return [float(t) for t in v.detach().reshape(-1).cpu()]


def _group_blur(y: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """Blur image i with sigmas[i], grouping equal sigmas into one call."""
    if len(set(sigmas)) == 1:
        return gaussian_blur(y, sigmas[0])
    out = torch.empty_like(y)
    for s in sorted(set(sigmas)):
        idx = torch.tensor([i for i, v in enumerate(sigmas) if v == s], device=y.device)
        out[idx] = gaussian_blur(y[idx], s)
    return out


# ---------------------------------------------------------------------------------------------- stages
def _detail(lin: torch.Tensor, P: _Params) -> torch.Tensor:
    h, w = lin.shape[-2:]
    size = max(h, w)
    if P.active("noise_reduction"):
        # blend luminance towards a 1.5 px blur; the same offset on R,G,B keeps chroma
        y = luminance(lin)
        s = P.get("noise_reduction") / 100.0 * 0.85
        lin = _add(lin, s * (gaussian_blur(y, 1.5) - y))
    if P.active("texture"):
        # fine detail (2 px band-pass of luminance) added back with gain texture/100
        y = luminance(lin)
        lin = _add(lin, P.get("texture") / 100.0 * (y - gaussian_blur(y, 2.0)))
    if P.active("clarity"):
        # medium-radius local contrast, strongest in the midtones
        y = luminance(lin)
        q = y.clamp(1e-8, 1.0).sqrt()
        lin = _add(lin, P.get("clarity") / 100.0 * 0.8 * (4.0 * q * (1.0 - q)) * (y - gaussian_blur(y, size / 40.0)))
    if P.active("dehaze"):
        # + : subtract a smooth dark-channel haze estimate and renormalise; - : blend towards a haze veil
        d = P.get("dehaze") / 100.0
        dark = gaussian_blur(lin.amin(dim=1, keepdim=True), size / 15.0).clamp(0.0, 1.0)
        kp = d.clamp_min(0.0) * 0.9 * dark
        kn = (-d).clamp_min(0.0) * 0.5
        lin = lin.sub(kp).div(1.0 - kp).mul(1.0 - kn).add(kn * 0.8)
    return lin


def _gain(lin: torch.Tensor, P: _Params) -> torch.Tensor:
    """Exposure (x 2^EV) and white balance as one per-channel gain, normalised to keep grey's luminance."""
    if not (P.active("exposure") or P.active("temperature") or P.active("tint")):
        return lin
    g = torch.exp2(P.get("exposure")) if P.active("exposure") else None
    if P.active("temperature") or P.active("tint"):
        t = P.get("temperature") / 100.0
        m = P.get("tint") / 100.0
        lr = torch.exp2(0.5 * t + 0.25 * m)
        lg = torch.exp2(-0.5 * m)
        lb = torch.exp2(-0.5 * t + 0.25 * m)
        norm = 0.2126 * lr + 0.7152 * lg + 0.0722 * lb
        wb = _chans(lin, lr / norm, lg / norm, lb / norm)
        g = wb if g is None else wb.mul(g)
    return _mul(lin, g)


_TONE = ("blacks", "whites", "shadows", "highlights", "contrast", "tone_shadows", "tone_darks", "tone_lights",
         "tone_highlights")


def _tone(lin: torch.Tensor, P: _Params) -> torch.Tensor:
    if not any(P.active(n) for n in _TONE):
        return lin
    y = luminance(lin)
    # perceptual luminance p = sqrt(Y), the display-like space HSL and grading use too: a square root and a
    # square cost a fraction of the 1/2.2 and 2.2 powers they replaced (compiled tone stage ~3x cheaper)
    p = y.clamp_min(1e-8).sqrt()
    if P.active("blacks"):  # additive at the bottom: lifts or crushes the black point
        q = p.clamp(0.0, 1.0)
        p = p + 0.15 * (P.get("blacks") / 100.0) * (1.0 - q) ** 3
    if P.active("whites"):  # gain concentrated at the top: moves the white point (+-0.35 stop)
        q = p.clamp(0.0, 1.0)
        p = p * torch.exp2(0.35 * (P.get("whites") / 100.0) * q**4)
    if P.active("shadows"):  # up to +-1.5 stops in the deep shadows, fading out by white
        q = p.clamp(0.0, 1.0)
        p = p * torch.exp2(1.5 * (P.get("shadows") / 100.0) * (1.0 - q) ** 2)
    if P.active("highlights"):  # up to +-0.6 stop above mid grey; also pulls values past white back
        q = p.clamp(0.0, 1.0)
        p = p * torch.exp2(0.6 * (P.get("highlights") / 100.0) * _smoothstep(0.45, 1.0, q))
    if P.active("contrast"):  # blend towards (or away from) a smoothstep S-curve; 0 and 1 stay fixed
        q = p.clamp(0.0, 1.0)
        p = p + (P.get("contrast") / 100.0) * (q * q * (3.0 - 2.0 * q) - q)
    zones = ("tone_shadows", "tone_darks", "tone_lights", "tone_highlights")
    if any(P.active(z) for z in zones):
        a, b, c = (P.get(f"tone_{z}_split") / 100.0 for z in ("shadow", "midtone", "highlight"))
        # used in sorted order, as Lightroom keeps them: crossed (e.g. shadow split 41, midtone split 25), a
        # zone's bump had zero width and its slider silently did nothing
        s1 = torch.minimum(torch.minimum(a, b), c)
        s2 = torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
        s3 = torch.maximum(torch.maximum(a, b), c)
        edges = [(0.0 * s1, s1), (s1, s2), (s2, s3), (s3, 1.0 + 0.0 * s3)]

        def bumps(q: torch.Tensor) -> torch.Tensor:
            pin = 4.0 * q * (1.0 - q)  # keeps 0 and 1 fixed
            out = 0.0
            for z, (a, b) in zip(zones, edges):
                if P.active(z):
                    c, half = (a + b) / 2.0, (b - a) / 2.0 + 0.08
                    out = out + 0.25 * (P.get(z) / 100.0) * pin * torch.exp(-(((q - c) / half) ** 2))
            return out

        # keep the curve monotone, as Lightroom's is: strong or opposite neighbouring zones could make
        # q + bumps(q) fall (tone inversion); where its slope would drop below 0.05 the bumps are scaled
        # down per image just enough (the zone sliders are global, so this is a per-image scalar)
        grid = torch.linspace(0.0, 1.0, 257, device=p.device).view(1, 1, 1, -1)
        slope = torch.diff(bumps(grid), dim=-1) * 256.0
        worst = (-slope.amin(dim=-1, keepdim=True)).clamp_min(1e-12)
        scale = (0.95 / worst).clamp(max=1.0)
        p = p + scale * bumps(p.clamp(0.0, 1.0))
    pc = p.clamp_min(0.0)
    y2 = pc * pc
    # rescale RGB by Y'/Y (keeps hue and saturation); the grey term lifts pure black exactly to Y'. For pixels
    # whose brightest channel is near black (below ~16/255), the ratio is held to _TONE_MAX_RATIO and the rest
    # of Y' is added as grey: unbounded, the blacks lift turned shadow noise such as sRGB (0, 0, 1) into vivid
    # blue (0, 0, 154). Brighter pixels, saturated blues with their tiny Y included, keep the full ratio
    r = y2 / y.clamp_min(1e-12)
    rc = r.clamp_max(_TONE_MAX_RATIO)
    w = (lin.amax(dim=1, keepdim=True) * (1.0 / _NEAR_BLACK)).clamp_max(1.0)
    r = rc + w * w * (r - rc)
    return _add(_mul(lin, r), y2 - y * r)


# 4 stops: above what shadows +100 gives alone (x8 in Y at black)
_TONE_MAX_RATIO = 16.0
_NEAR_BLACK = 0.0052  # linear light of sRGB 16/255


_HSL_CENTRES = [HSL_BAND_HUES[b] for b in HSL_BANDS]


def _band_weights(hue: torch.Tensor) -> list[torch.Tensor]:
    """Piecewise-linear partition of unity over the 8 band centres (circular)."""
    out = []
    n = len(_HSL_CENTRES)
    for i, c in enumerate(_HSL_CENTRES):
        prev_c = _HSL_CENTRES[i - 1] - (360.0 if i == 0 else 0.0)
        next_c = _HSL_CENTRES[(i + 1) % n] + (360.0 if i == n - 1 else 0.0)
        d = hue - c
        d = d - torch.round(d * (1.0 / 360.0)) * 360.0  # wrapped to [-180, 180] (3x cheaper than remainder)
        # rising edge for d < 0, falling edge for d >= 0 (one of the two terms is 0): the values of
        # where(d < 0, 1 + d / rise, 1 - d / fall) without where (slow on CPU: ~4 passes)
        w = 1.0 - d.clamp(max=0.0).neg() / (c - prev_c) - d.clamp(min=0.0) / (next_c - c)
        out.append(w.clamp(0.0, 1.0))
    return out


def _hsl(lin: torch.Tensor, P: _Params) -> torch.Tensor:
    names = [(k, b) for b in HSL_BANDS for k in ("hue", "saturation", "luminance")]
    if not any(P.active(f"hsl_{k}_{b}") for k, b in names):
        return lin
    # bands are defined on the display-like image; linear values below 1e-6 (sRGB 1.3e-5) count as 0 there:
    # sqrt's slope near 0 turned last-bit differences (e.g. a blur's, by batch size) into 1e-5 output changes
    hue, sat = hue_saturation(lin.clamp_min(1e-6).sqrt())
    ws = _band_weights(hue)
    theta = scale = lum = None
    for b, w in zip(HSL_BANDS, ws):
        w = w * sat
        for kind in ("hue", "saturation", "luminance"):
            n = f"hsl_{kind}_{b}"
            if not P.active(n):
                continue
            term = w * (P.get(n) / 100.0)
            if kind == "hue":
                theta = term if theta is None else theta + term
            elif kind == "saturation":
                scale = term if scale is None else scale + term
            else:
                lum = term if lum is None else lum + term
    m = lin.mean(dim=1, keepdim=True)
    c = lin.sub(m)
    if theta is not None:  # rotate chroma about the grey axis by up to 30 degrees
        a = theta * math.radians(30.0)
        cr, cg, cb = c[:, 0:1], c[:, 1:2], c[:, 2:3]
        cross = _chans(c, cb - cg, cr - cb, cg - cr).mul(1.0 / math.sqrt(3.0))
        c = c.mul(torch.cos(a)).add(cross.mul(torch.sin(a)))
    if scale is not None:
        c = c.mul(1.0 + scale)
    out = c.add(m)
    if lum is not None:
        out = out.mul(torch.exp2(lum))
    return out


def _saturation(lin: torch.Tensor, P: _Params) -> torch.Tensor:
    if not (P.active("saturation") or P.active("vibrance")):
        return lin
    y = luminance(lin)
    f = None
    if P.active("saturation"):
        f = 1.0 + P.get("saturation") / 100.0
    if P.active("vibrance"):  # saturation that fades out for already saturated pixels
        mx = lin.amax(dim=1, keepdim=True)
        mn = lin.amin(dim=1, keepdim=True)
        s = ((mx - mn) / mx.clamp_min(1e-6)).clamp(0.0, 1.0)
        fv = 1.0 + P.get("vibrance") / 100.0 * (1.0 - s)
        f = fv if f is None else f * fv
    if _inplace(lin):
        return lin.sub_(y).mul_(f).add_(y)
    return lin.sub(y).mul(f).add(y)


_ZONES = ("shadow", "midtone", "highlight", "global")


def _hue_vector(hue_deg: torch.Tensor, like: Any = None) -> Any:
    h = torch.deg2rad(hue_deg)
    return _chans(like, torch.cos(h), torch.cos(h - 2.0943951), torch.cos(h - 4.1887902))


def _grading(lin: torch.Tensor, P: _Params) -> torch.Tensor:
    act = [z for z in _ZONES if P.active(f"grade_{z}_saturation") or P.active(f"grade_{z}_luminance")]
    if not act:
        return lin
    q = luminance(lin).clamp(1e-8, 1.0).sqrt()
    if P.active("grade_balance"):
        q = q.clamp_min(1e-6) ** torch.exp2(-P.get("grade_balance") / 100.0)
    w = {"shadow": (1.0 - q) ** 2, "midtone": 2.0 * q * (1.0 - q), "highlight": q * q}
    if P.active("grade_blending"):
        gamma = torch.exp2((50.0 - P.get("grade_blending")) / 50.0)
        ww = {k: v.clamp_min(1e-8) ** gamma for k, v in w.items()}
        tot = ww["shadow"] + ww["midtone"] + ww["highlight"]
        w = {k: v / tot for k, v in ww.items()}
    tint = 1.0
    stops = 0.0
    for z in act:
        wz = w.get(z, 1.0)
        sat = P.get(f"grade_{z}_saturation") / 100.0
        tint = _hue_vector(P.get(f"grade_{z}_hue"), lin).mul(wz * 0.3 * sat).add(tint)
        stops = stops + wz * 0.5 * P.get(f"grade_{z}_luminance") / 100.0
    return _mul(lin, tint.mul(torch.exp2(stops)))


def _vignette(lin: torch.Tensor, P: _Params) -> torch.Tensor:
    if not P.active("vignette_amount"):
        return lin
    h, w = lin.shape[-2:]
    xs = (torch.arange(w, device=lin.device, dtype=torch.float32) + 0.5) / w * 2.0 - 1.0
    ys = (torch.arange(h, device=lin.device, dtype=torch.float32) + 0.5) / h * 2.0 - 1.0
    r = torch.sqrt(xs.view(1, 1, 1, w) ** 2 + ys.view(1, 1, h, 1) ** 2) / math.sqrt(2.0)  # 0 centre, 1 corner
    r0 = 0.15 + 0.6 * P.get("vignette_midpoint") / 100.0
    width = 0.05 + 0.9 * P.get("vignette_feather") / 100.0
    t = ((r - r0) / width).clamp(0.0, 1.0)
    v = t * t * (3.0 - 2.0 * t)
    return _mul(lin, torch.exp2(1.5 * P.get("vignette_amount") / 100.0 * v))


def _sharpen(lin: torch.Tensor, P: _Params) -> torch.Tensor:
    if not P.active("sharpening"):
        return lin
    y = luminance(lin)
    detail = y - _group_blur(y, P.scalar("sharpen_radius"))
    return _add(lin, P.get("sharpening") / 100.0 * detail)


def _grain(x: torch.Tensor, P: _Params, seeds: list[int]) -> torch.Tensor:
    if not P.active("grain_amount"):
        return x
    n, _, h, w = x.shape
    noise = torch.empty(n, 1, h, w, device=x.device)
    for i, s in enumerate(seeds):
        g = torch.Generator(device=x.device).manual_seed(int(s))
        noise[i] = torch.randn(1, h, w, generator=g, device=x.device)
    sizes = P.scalar("grain_size")
    sig = [0.3 + 1.7 * s / 100.0 for s in sizes]
    noise = _group_blur(noise, sig)
    # renormalise: a Gaussian blur of white noise with sigma s has std ~ 1 / (2 sqrt(pi) s)
    std = torch.tensor([min(1.0, 1.0 / (2.0 * math.sqrt(math.pi) * s)) for s in sig], device=x.device)
    noise = noise / std.view(n, 1, 1, 1)
    yd = (0.2126 * x[:, 0:1] + 0.7152 * x[:, 1:2] + 0.0722 * x[:, 2:3]).clamp(0.0, 1.0)
    return x + P.get("grain_amount") / 100.0 * 0.1 * noise * (0.3 + 2.8 * yd * (1.0 - yd))


# ---------------------------------------------------------------------------------------------- driver
def _render(x: torch.Tensor, P: _Params, luts: torch.Tensor | None,
            tail: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None, planar: bool | None = None,
            fast: bool = False) -> torch.Tensor:
    """The pipeline, stage by stage. ``fast``: under torch.compile, sRGB decode/encode as rational functions
    (rlkit.ops.fastmath; max error 6e-7, inputs <= 8.385) instead of pows."""
    planar = torch.compiler.is_compiling() if planar is None else planar
    fast = fast and planar
    decode = srgb_to_linear_fast if fast else srgb_to_linear
    # under torch.compile, decode and encode per channel plane and restack: inductor then emits one loop
    # that computes a pixel's three channels together (sharing its luminance and the like) instead of
    # re-running the whole upstream chain once per output channel (~3x fewer pows; benchmarks/engine.py)
    lin = _Planes([decode(x[:, i:i + 1]) for i in range(3)]) if planar else srgb_to_linear(x)
    lin = _detail(lin, P)
    lin = lin.clamp_min_(0.0) if _inplace(lin) else lin.clamp_min(0.0)  # no negative light from here on
    lin = _gain(lin, P)
    lin = _tone(lin, P)
    lin = _hsl(lin, P)
    lin = _saturation(lin, P)
    lin = _grading(lin, P)
    lin = _vignette(lin, P)
    lin = _sharpen(lin, P)
    if isinstance(lin, _Planes):
        if tail is None and luts is None:
            if fast:  # clamps to [0, 1] itself
                return _Planes([linear_to_srgb_fast(c) for c in lin.p]).stack()
            return _Planes([linear_to_srgb(c.clamp(0.0, 1.0)).clamp(0.0, 1.0) for c in lin.p]).stack()
        lin = lin.stack()
    if tail is not None:  # clamp, encode and the point curves as one sampled 1-D map (see _tail_tables)
        return _lut_lerp(lin, *tail, sqrt=True)
    out = linear_to_srgb(lin.clamp_(0.0, 1.0) if _inplace(lin) else lin.clamp(0.0, 1.0))
    if luts is not None:
        out = _apply_lut(out, luts[:, :1].expand(-1, 3, -1).contiguous())
        out = _apply_lut(out, luts[:, 1:])
    return out.clamp_(0.0, 1.0) if _inplace(out) else out.clamp(0.0, 1.0)


#: sliders that set a blur kernel's size: read as Python floats, so they get no gradient in :func:`apply_params`
STRUCTURAL_PARAMS = frozenset({"sharpen_radius", "grain_size"})

_GROUP_PIXELS = 1 << 18  # pixels per group of images rendered together in eager mode


def _render_in_groups(x: torch.Tensor, P: _Params, luts: torch.Tensor | None,
                      tail: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Eager :func:`_render` (no autograd) over groups of images of about ``_GROUP_PIXELS`` pixels each.

    Unfused torch allocates every intermediate afresh; batch-sized ones (100 MB at 8 x 1024^2) page-fault in
    on every allocation, which cost more than the arithmetic. Groups of a few MB reuse the allocator's memory:
    the 10-op program at 8 x 1024^2 went from ~1.5 s to ~0.6 s. Every stage is per image, so the values are
    those of one batched call (blurs may differ in the last bit).
    """
    n, _, h, w = x.shape
    per = max(1, _GROUP_PIXELS // (h * w))
    if per >= n or x.device.type != "cpu":  # (CUDA's caching allocator does not page-fault)
        return _render(x, P, luts, tail)
    out = torch.empty_like(x)
    for i in range(0, n, per):
        j = min(n, i + per)
        out[i:j] = _render(x[i:j], P.images(i, j), luts[i:j] if luts is not None else None,
                           tuple(t[i:j] for t in tail) if tail is not None else None)
    return out


_COMPILED: dict[str, Any] = {}


def _compiled_call(key: str, fn: Any, *args: Any) -> Any:
    """``torch.compile(fn)(*args)``, compiled once per ``key``; eager ``fn`` when compiling is unavailable or
    fails (then for good)."""
    c = _COMPILED.get(key)
    if c is None:
        try:
            # each distinct set of active ops / image size is its own graph: allow more than the default 8
            cfg = torch._dynamo.config
            for name in ("recompile_limit", "cache_size_limit"):
                if hasattr(cfg, name) and getattr(cfg, name) < 64:
                    setattr(cfg, name, 64)
            c = torch.compile(fn, dynamic=False)
        except Exception:  # noqa: BLE001 - compile unavailable: eager
            c = False
        _COMPILED[key] = c
    if c is not False:
        try:
            return c(*args)
        except Exception:  # noqa: BLE001 - any compiler failure falls back to eager
            _COMPILED[key] = False
    return fn(*args)


def _render_core(x: torch.Tensor, values: dict, local: dict, luts: torch.Tensor | None, tail: tuple | None,
                 fast: bool) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    out = _render(x, _Params(x.shape[0], x.device, values, local), luts, tail, fast=fast)
    if not fast:
        return out
    # with the rational decode, also return the input's maximum, so the caller can check afterwards that every
    # input was inside the rational's range; taken over the channel planes, the reduction runs in the same loop
    # as the planar decode (x.amax() over the flat tensor was a separate pass: ~0.7 of 5 ms, 8 x 512^2 contrast)
    return out, torch.maximum(torch.maximum(x[:, 0], x[:, 1]), x[:, 2]).amax()


def _render_compiled(x: torch.Tensor, P: _Params, luts: torch.Tensor | None,
                     tail: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None, grad: bool = False
                     ) -> torch.Tensor:
    # the rational sRGB decode is valid up to 8.385: render optimistically with it and check the maximum it
    # returns; brighter inputs (rare: images are [0, 1]) and NaN are rendered again with the exact pows, and
    # so are renders that record gradients (outside its range the rational overflows: NaN through where)
    args = (x, dict(P.values), dict(P.local), luts, tail)
    if not grad:
        out, xmax = _compiled_call("render", _render_core, *args, True)
        if bool(xmax <= _FAST_DECODE_MAX):
            return out
    return _compiled_call("render", _render_core, *args, False)


_FAST_DECODE_MAX = 8.385


# ---------------------------------------------------------------------------------------------- fused 1-D path
# Programs whose every active op is a per-channel function of the pixel value (exposure, white balance,
# point curves; grain runs after rendering) collapse, with sRGB decode/encode and the clamps, into ONE
# 1-D function per channel per image. It is sampled exactly through the real stages (float64 grid) and
# applied by linear interpolation: one gather-and-lerp instead of two transcendental passes and more.
_FUSE_INTERVALS = 4 * (_LUT_SIZE - 1)  # a refinement of the curve-LUT grid: a curve's knots are grid nodes
_FUSIBLE = frozenset({"exposure", "temperature", "tint", "grain_amount", "grain_size"})


def _fusible(x: torch.Tensor | None, P: _Params, luts: torch.Tensor | None) -> bool:
    """True when :func:`_render` is a per-channel pointwise map of ``x`` that a sampled LUT reproduces.

    Not when a slider needs gradients (the LUT would carry them only approximately), when local maps
    make the gain spatial, or when ``x`` has values above 1 or NaN (outside the sampled domain; values
    below 0 are exact: the pipeline maps them to black like 0). ``x=None`` skips the value check.
    """
    if P.local or not set(P.values) <= _FUSIBLE:
        return False
    if torch.is_grad_enabled() and (any(v.requires_grad for v in P.values.values())
                                    or (luts is not None and luts.requires_grad)):
        return False
    return x is None or bool(x.max() <= 1.0)


def _fused_tables(P: _Params, luts: torch.Tensor | None, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(top, vals, slope): per image and channel, inputs >= top map to a constant (the linear-light clamp
    at white), and f(x) = vals[i] + slope[i] * frac on ``_FUSE_INTERVALS`` equal steps of [0, top].

    Placing the white-clip knee exactly on the last node keeps the result within float rounding there.
    None for gains so extreme (unclamped apply_params values) that the knee underflows float32.
    """
    n = P.n
    with torch.no_grad():
        g = torch.ones(n, 3, 1, 1, dtype=torch.float64, device=device)
        g = _gain(g, P).double().reshape(n, 3, 1)  # the real per-channel gain (exposure x white balance)
        # decode(top) * g == 1  ->  top = encode(1 / g) (exactly 1 when g <= 1)
        top = linear_to_srgb((1.0 / g).clamp(max=1.0)).clamp(0.0, 1.0)
        if not bool(top.min() >= 1e-6):
            return None
        t = torch.linspace(0.0, 1.0, _FUSE_INTERVALS + 1, dtype=torch.float64, device=device)
        grid = (t.view(1, 1, -1) * top).unsqueeze(2)  # (n,3,1,K)
        f = _render(grid, P, luts).reshape(n, 3, -1)
        slope = torch.cat([f[..., 1:] - f[..., :-1], torch.zeros_like(f[..., :1])], dim=-1)
    return top.float(), f.float().contiguous(), slope.float().contiguous()


def _lut_lerp(x: torch.Tensor, top: torch.Tensor, vals: torch.Tensor, slope: torch.Tensor,
              sqrt: bool = False) -> torch.Tensor:
    """Evaluate the fused tables at x (N,C,H,W) (at sqrt(x) for sqrt-spaced tables); differentiable w.r.t. x
    (slope of the segment)."""
    n, c, h, w = x.shape
    k = vals.shape[-1] - 1
    if _inplace(x) and not torch.compiler.is_compiling() and x.is_contiguous() and x.device.type == "cpu":
        return _lut_lerp_chunked(x, top, vals, slope, sqrt)
    pos = torch.clamp(x.reshape(n, c, h * w), min=torch.zeros_like(top), max=top)
    fast = _inplace(pos) and not torch.compiler.is_compiling()
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


_LUT_CHUNK = 1 << 20  # elements (all images and channels together) per chunk of the eager lookup


def _lut_lerp_chunked(x: torch.Tensor, top: torch.Tensor, vals: torch.Tensor, slope: torch.Tensor,
                      sqrt: bool) -> torch.Tensor:
    """:func:`_lut_lerp` without autograd, in chunks of pixels through reused buffers (same values).

    Eager torch allocates every intermediate afresh; at batch 8 x 512^2 each one page-faults in ~25-50 MB
    (the int64 index alone cost ~17 passes). Chunks keep the intermediates in cache: 61 -> 15 passes at 512^2.
    """
    n, c, h, w = x.shape
    hw, k = h * w, vals.shape[-1] - 1
    xf = x.reshape(n, c, hw)
    out = torch.empty_like(xf)
    scale = k / top
    m = min(hw, max(1024, _LUT_CHUNK // (n * c)))  # pixels per image per chunk
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
        idx.clamp_(0, k)  # NaN casts to INT64_MIN: it stays NaN through pos - idx (see _lut_lerp)
        pos.sub_(idx)
        torch.gather(vals, 2, idx, out=o)
        torch.gather(slope, 2, idx, out=sl)
        o.addcmul_(sl, pos)
    return out.view(n, c, h, w)


def _tail_tables(luts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tables for the pipeline's tail (clamp to [0,1], sRGB encode, master then R/G/B point curves, clamp):
    one 1-D map per channel per image, sampled exactly in float64 on a sqrt-spaced grid of linear light
    (dense where encode bends most), so it replaces a pow and two curve lookups by one lerp."""
    n = luts.shape[0]
    with torch.no_grad():
        u = torch.linspace(0.0, 1.0, _FUSE_INTERVALS + 1, dtype=torch.float64, device=luts.device)
        out = linear_to_srgb(u * u).view(1, 1, 1, -1).expand(n, 3, 1, -1).contiguous()
        out = _apply_lut(out, luts[:, :1].expand(-1, 3, -1).contiguous())
        f = _apply_lut(out, luts[:, 1:]).clamp(0.0, 1.0).reshape(n, 3, -1)
        slope = torch.cat([f[..., 1:] - f[..., :-1], torch.zeros_like(f[..., :1])], dim=-1)
    top = torch.ones(n, 3, 1, device=luts.device)
    return top, f.float().contiguous(), slope.float().contiguous()


def _normalise_programs(programs: Any, n: int) -> list[EditProgram]:
    if isinstance(programs, EditProgram):
        return [programs] * n
    if isinstance(programs, Mapping):
        return [EditProgram.from_dict(programs)] * n
    if isinstance(programs, (str, bytes)) or not isinstance(programs, Sequence):
        raise TypeError(f"apply_program: programs must be an EditProgram or a sequence of them, got "
                        f"{type(programs).__name__}")
    progs = list(programs)
    if len(progs) == 1:
        progs = progs * n
    if len(progs) != n:
        raise ValueError(f"apply_program: got {len(progs)} programs for a batch of {n} images; pass one program "
                         "(broadcast) or one per image")
    out = []
    for i, p in enumerate(progs):
        if isinstance(p, Mapping):
            p = EditProgram.from_dict(p)
        if not isinstance(p, EditProgram):
            raise TypeError(f"apply_program: programs[{i}] must be an EditProgram, got {type(p).__name__}")
        out.append(p)
    return out


def _local_maps(x: torch.Tensor, locals_: Sequence[Sequence[LocalAdjustment]]) -> dict[str, torch.Tensor]:
    """Per-parameter offset maps (N,1,H,W): sum over local adjustments of mask x value.

    Geometric masks are rendered once per distinct mask; when every image shares one list of purely
    geometric adjustments (a broadcast program) the maps are built once and expanded over the batch.
    """
    n, _, h, w = x.shape
    image_dependent = any(la.mask.depends_on_image for adjs in locals_ for la in adjs)
    lin = srgb_to_linear(x) if image_dependent else x[:1, :, :0, :0].new_zeros(1, 3, h, w)
    if not image_dependent and all(adjs is locals_[0] for adjs in locals_):
        one = _local_maps_rows(lin[:1], [locals_[0]], {})
        return {k: v.expand(n, 1, h, w) for k, v in one.items()}
    return _local_maps_rows(lin, locals_, {})


def _local_maps_rows(lin: torch.Tensor, locals_: Sequence[Sequence[LocalAdjustment]],
                     cache: dict[int, torch.Tensor]) -> dict[str, torch.Tensor]:
    n = len(locals_)
    h, w = lin.shape[-2:]
    maps: dict[str, torch.Tensor] = {}
    for i, adjs in enumerate(locals_):
        for la in adjs:
            if la.mask.depends_on_image:
                m = la.mask.render(lin[i:i + 1])
            else:
                m = cache.get(id(la.mask))
                if m is None:
                    m = cache[id(la.mask)] = la.mask.render(lin[:1])
            for name, v in la.params.items():
                if name not in maps:
                    maps[name] = torch.zeros(n, 1, h, w, device=lin.device, dtype=torch.float32)
                maps[name][i:i + 1].add_(m, alpha=float(v))
    return maps


def _seed_int(v: Any, where: str) -> int:
    """An integer seed: Python, numpy or 0-d torch integers (``operator.index``); bools and floats are refused."""
    if isinstance(v, bool) or (isinstance(v, torch.Tensor) and v.dtype == torch.bool):
        raise TypeError(f"apply_program: {where} must be an integer, got {v!r}")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"apply_program: {where} must be an integer, got {type(v).__name__} {v!r}") from None


def _seeds(seed: int | Sequence[int] | None, n: int) -> list[int]:
    if seed is None:
        return [0] * n
    if isinstance(seed, (bool, float, str, bytes)):
        raise TypeError(f"apply_program: seed must be an integer or a sequence of integers, got {seed!r}")
    try:
        return [_seed_int(seed, "seed")] * n  # int, numpy integer, 0-d integer array or tensor
    except TypeError:
        pass
    try:
        s = list(seed)
    except TypeError:
        raise TypeError(f"apply_program: seed must be an integer or a sequence of integers, got "
                        f"{type(seed).__name__}") from None
    if len(s) != n:
        raise ValueError(f"apply_program: got {len(s)} seeds for a batch of {n} images")
    return [_seed_int(v, f"seed[{i}]") for i, v in enumerate(s)]


def apply_params(images: torch.Tensor, params: Mapping[str, torch.Tensor | float], *,
                 curves: Mapping[str, Sequence[tuple[float, float]]] | None = None,
                 local: Sequence[LocalAdjustment] | None = None, seed: int | Sequence[int] | None = None,
                 compile: bool = False) -> torch.Tensor:
    """Apply sliders given as floats or tensors (scalar or (N,)) to a batch; differentiable in tensor values.

    Unlike :class:`EditProgram`, values are not range-checked beyond being finite, so gradient-based
    searches can move freely (each op clamps internally where it must). The two blur sizes
    (:data:`STRUCTURAL_PARAMS`: ``sharpen_radius``, ``grain_size``) pick a blur kernel and get no gradient
    (a warning says so when one is passed with ``requires_grad``).
    """
    images = _check_images(images, "apply_params")
    n = images.shape[0]
    x = images.float()
    values: dict[str, torch.Tensor] = {}
    for k, v in params.items():
        if k not in PARAM_SPECS:
            raise ProgramError(f"apply_params: unknown parameter {k!r}")
        t = torch.as_tensor(v, dtype=torch.float32, device=x.device)
        if t.dim() == 0:
            t = t.expand(n)
        if t.shape != (n,):
            raise ValueError(f"apply_params: '{k}' must be a scalar or shape ({n},), got {tuple(t.shape)}")
        if not torch.isfinite(t.detach()).all():
            raise ProgramError(f"apply_params: '{k}' has non-finite values")
        if k in STRUCTURAL_PARAMS and t.requires_grad and torch.is_grad_enabled():
            warnings.warn(f"apply_params: '{k}' sets a blur kernel size and gets no gradient", stacklevel=2)
        if not t.requires_grad and bool((t == PARAM_SPECS[k].default).all()):
            continue
        values[k] = t.reshape(n, 1, 1, 1)
    progs_local = [list(local or [])] * n  # one shared list: masks are rendered once
    prog_curves = [EditProgram(curves=dict(curves or {})).curves] * n
    return _run(images, x, values, progs_local, prog_curves, _seeds(seed, n), compile)


def _run(images: torch.Tensor, x: torch.Tensor, values: dict[str, torch.Tensor],
         locals_: list[list[LocalAdjustment]], curves: list[dict], seeds: list[int], compile: bool) -> torch.Tensor:
    n = x.shape[0]
    local = _local_maps(x, locals_) if any(locals_) else {}
    for name in local:
        if name not in LOCAL_PARAMS:  # pragma: no cover - guarded by LocalAdjustment
            raise ProgramError(f"local parameter {name!r} is not supported")
    luts = None
    if any(curves):
        if not bool(torch.isfinite(x).all()):  # NaN/inf have no place on a lookup table: say so (not a gather error)
            raise ValueError("apply_program: images contain NaN or inf values; point tone curves need finite "
                             "inputs (check the image source, or torch.nan_to_num the batch)")
        ident = torch.linspace(0.0, 1.0, _LUT_SIZE)
        rows = []
        for c in curves:
            rows.append(torch.stack([curve_lut(c[ch]) if ch in c else ident for ch in CURVE_CHANNELS]))
        luts = torch.stack(rows).to(x.device)
    P = _Params(n, x.device, values, local)
    closed_form = compile and luts is None and _fusible(None, P, luts)
    tables = _fused_tables(P, luts, x.device) if not closed_form and _fusible(x, P, luts) else None
    if closed_form:
        # exposure / white balance only: a pow-free closed form (rlkit.ops.fastmath; within 5e-7 of the exact
        # chain for any input and gains >= 2^-15, i.e. every program) compiles to ~1.2 passes, the LUT to ~2
        gains = _gain(torch.ones(n, 3, 1, 1, device=x.device), P)
        poly = gain_map_poly_params(gains)  # a low-degree band polynomial for the common small gains
        out = _compiled_call("gain_poly", gain_map_poly_kernel, x, *poly) if poly is not None \
            else _compiled_call("gain", gain_map, x, gains)
    elif tables is not None:
        out = _compiled_call("lut", _lut_lerp, x, *tables) if compile else _lut_lerp(x, *tables)
    else:
        # the tail LUT approximates encode's derivative piecewise: only where no gradient is recorded
        grad = torch.is_grad_enabled() and (x.requires_grad or any(v.requires_grad for v in values.values())
                                            or any(v.requires_grad for v in local.values()))
        tail = _tail_tables(luts) if luts is not None and not grad else None
        if compile:
            out = _render_compiled(x, P, luts, tail, grad)
        else:
            out = _render(x, P, luts, tail) if grad else _render_in_groups(x, P, luts, tail)
    if P.active("grain_amount"):
        out = _grain(out, P, seeds).clamp(0.0, 1.0)
    return out.to(images.dtype)


def apply_program(images: torch.Tensor, programs: EditProgram | Sequence[EditProgram], *,
                  seed: int | Sequence[int] | None = None, compile: bool = False) -> torch.Tensor:
    """Apply one program (broadcast) or one per image to ``images`` (N,3,H,W) float sRGB in [0,1].

    Returns a tensor of the same shape, dtype and device, in [0,1]. ``seed`` seeds the grain (an int for the
    whole batch, or one per image; None means 0, so results are deterministic). ``compile=True`` fuses the
    pipeline with ``torch.compile`` (falls back to eager if compiling fails). Half-precision inputs are
    processed in float32 and returned in their dtype.
    """
    images = _check_images(images)
    n = images.shape[0]
    progs = _normalise_programs(programs, n)
    if all(p.is_identity() for p in progs):
        return images.clone()
    x = images.float()
    names = sorted({k for p in progs for k in p.params})
    values = {
        k: torch.tensor([p.get(k) for p in progs], dtype=torch.float32).to(x.device).view(n, 1, 1, 1)
        for k in names
    }
    return _run(images, x, values, [p.local for p in progs], [p.curves for p in progs], _seeds(seed, n), compile)
