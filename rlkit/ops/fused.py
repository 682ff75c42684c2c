"""Fused 1-D paths: programs (or the tail of a program) that are per-channel maps of the value, as one lookup.

Which of our ops are per-channel 1-D maps of the pixel value: sRGB decode / encode, the clamps, exposure and
white balance (one per-channel gain) and the point tone curves. A program whose only active ops are those
(grain comes after) runs as ONE sampled 1-D map per channel per image (:func:`tables`: pipeline steps 1, 3, 9,
10 composed, evaluated exactly through :func:`rlkit.ops.pipeline.render` in float64, applied by
:func:`rlkit.ops.lut.lut_lerp`); otherwise, with point curves, steps 9-10 (clamp, encode, curves) are one such
map (:func:`tail_tables`). Same results to < 1e-5 (docs/engine.md); neither is used while autograd records
slider gradients.
"""

from __future__ import annotations

import torch

from . import pipeline, stages
from .color import linear_to_srgb
from .lut import LUT_SIZE, apply_lut
from .stages import Params

__all__ = ["fusible", "pays_off", "worth_tables", "tables", "tail_tables", "FUSIBLE", "FUSE_INTERVALS",
           "MIN_PIXELS_GAIN", "MIN_PIXELS_CURVES"]

FUSE_INTERVALS = 4 * (LUT_SIZE - 1)  # a refinement of the curve-LUT grid: a curve's knots are grid nodes
FUSIBLE = frozenset({"exposure", "temperature", "tint", "grain_amount", "grain_size"})


def pays_off(device: torch.device) -> bool:
    """Whether the fusions are used on ``device``: they save memory passes on CPU, but on CUDA building the
    tables costs more than it saves (H200, batch 8 at 512^2 and 1024^2: fused 0.34-1.05x the speed of stage
    by stage, eager and compiled; ``benchmarks/engine.py``), so GPUs run stage by stage."""
    return device.type == "cpu"


#: Pixels per image from which the tables cost less than the passes they save (CPU, eager, batch 8, 2 threads;
#: ``python benchmarks/engine.py --crossover``, 2026-12-05). Building them renders ~3 x 4093 float64 samples per
#: image, which at 64^2 costs more than the whole unfused render: exposure / white balance alone break even
#: between 256^2 and 448^2 (runs vary; unfused they are only ~5 passes), with point curves (whole program or
#: tail) near 100^2.
MIN_PIXELS_GAIN = 384 * 384
MIN_PIXELS_CURVES = 100 * 100


def worth_tables(pixels: int, curves: bool) -> bool:
    """Whether images of ``pixels`` pixels are large enough for a fusion's tables to pay for themselves."""
    return pixels >= (MIN_PIXELS_CURVES if curves else MIN_PIXELS_GAIN)


def fusible(x: torch.Tensor | None, P: Params, luts: torch.Tensor | None) -> bool:
    """True when the pipeline is a per-channel pointwise map of ``x`` that a sampled LUT reproduces.

    Not when a slider needs gradients (the LUT would carry them only approximately), when local maps
    make the gain spatial, or when ``x`` has values above 1 or NaN (outside the sampled domain; values
    below 0 are exact: the pipeline maps them to black like 0). ``x=None`` skips the value check.
    """
    if P.local or P.profiles or not set(P.values) <= FUSIBLE:
        return False
    if torch.is_grad_enabled() and (any(v.requires_grad for v in P.values.values())
                                    or (luts is not None and luts.requires_grad)):
        return False
    return x is None or bool(x.max() <= 1.0)


def tables(P: Params, luts: torch.Tensor | None, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(top, vals, slope): per image and channel, inputs >= top map to a constant (the linear-light clamp
    at white), and f(x) = vals[i] + slope[i] * frac on ``FUSE_INTERVALS`` equal steps of [0, top].

    Placing the white-clip knee exactly on the last node keeps the result within float rounding there.
    None for gains so extreme (unclamped apply_params values) that the knee underflows float32.
    """
    n = P.n
    with torch.no_grad():
        g = torch.ones(n, 3, 1, 1, dtype=torch.float64, device=device)
        g = stages.gain(g, P).double().reshape(n, 3, 1)  # the real per-channel gain (exposure x white balance)
        # decode(top) * g == 1  ->  top = encode(1 / g) (exactly 1 when g <= 1)
        top = linear_to_srgb((1.0 / g).clamp(max=1.0)).clamp(0.0, 1.0)
        if not bool(top.min() >= 1e-6):
            return None
        t = torch.linspace(0.0, 1.0, FUSE_INTERVALS + 1, dtype=torch.float64, device=device)
        grid = (t.view(1, 1, -1) * top).unsqueeze(2)  # (n,3,1,K)
        f = pipeline.render(grid, P, luts).reshape(n, 3, -1)
        slope = torch.cat([f[..., 1:] - f[..., :-1], torch.zeros_like(f[..., :1])], dim=-1)
    return top.float(), f.float().contiguous(), slope.float().contiguous()


def tail_tables(luts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tables for the pipeline's tail (clamp to [0,1], sRGB encode, master then R/G/B point curves, clamp):
    one 1-D map per channel per image, sampled exactly in float64 on a sqrt-spaced grid of linear light
    (dense where encode bends most), so it replaces a pow and two curve lookups by one lerp."""
    n = luts.shape[0]
    with torch.no_grad():
        u = torch.linspace(0.0, 1.0, FUSE_INTERVALS + 1, dtype=torch.float64, device=luts.device)
        out = linear_to_srgb(u * u).view(1, 1, 1, -1).expand(n, 3, 1, -1).contiguous()
        out = apply_lut(out, luts[:, :1].expand(-1, 3, -1).contiguous())
        f = apply_lut(out, luts[:, 1:]).clamp(0.0, 1.0).reshape(n, 3, -1)
        slope = torch.cat([f[..., 1:] - f[..., :-1], torch.zeros_like(f[..., :1])], dim=-1)
    top = torch.ones(n, 3, 1, device=luts.device)
    return top, f.float().contiguous(), slope.float().contiguous()
