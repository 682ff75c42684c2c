"""Gaussian blurs for the detail, sharpening and grain stages: separable, replicated borders, eager and compiled.

Large sigmas run on a block-averaged copy; under torch.compile the blur is a sum of shifted views of a stored
input (``torch.ops.rlkit.materialize``) and upsampling is ATen's kernel as an opaque op (:mod:`.custom_ops`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import custom_ops  # noqa: F401 - registers torch.ops.rlkit.materialize / upsample_bilinear

__all__ = ["gaussian_blur", "group_blur"]


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



def group_blur(y: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """Blur image i with sigmas[i], grouping equal sigmas into one call."""
    if len(set(sigmas)) == 1:
        return gaussian_blur(y, sigmas[0])
    out = torch.empty_like(y)
    for s in sorted(set(sigmas)):
        idx = torch.tensor([i for i, v in enumerate(sigmas) if v == s], device=y.device)
        out[idx] = gaussian_blur(y[idx], s)
    return out
