"""The pipeline order: sRGB in, the stages of :mod:`rlkit.ops.stages` one after another, sRGB out.

One documented order for every image, in linear light unless noted:

1. decode sRGB -> linear (IEC 61966-2-1)
2. detail: luminance and colour noise reduction, texture, clarity, dehaze; then negative light is clipped
3. exposure and white balance (temperature, tint) as one per-channel gain; then camera calibration (the
   primaries moved, shadow tint) and the program's Lightroom profile (look / RGB table), if any
4. tone: blacks, whites, shadows, highlights, contrast, parametric curve (on perceptual luminance
   p = sqrt(Y); the result rescales RGB by Y'/Y so hue and saturation are kept); then black and white
   (grey through the 8-band gray mixer) when the treatment is monochrome
5. 8-band HSL (hue rotation about the grey axis, chroma scale, luminance gain; bands weighted by saturation)
6. vibrance and saturation (chroma scaled around luminance)
7. colour grading (shadow / midtone / highlight / global tints and luminance)
8. vignette, then sharpening
9. clamp to [0, 1], encode linear -> sRGB
10. point tone curves (master, then R/G/B) in display space, then seeded grain; clamp to [0, 1]

Steps 1-10 but grain are :func:`render`; grain (which needs the seeds) runs after it, in
:func:`rlkit.ops.engine.apply_program`. Eager no-grad renders go through :func:`render_in_groups` (groups of
images, fewer page faults). The fused paths (:mod:`rlkit.ops.fused`) and the compiled path
(:mod:`rlkit.ops.compiled`) compute the same function.
"""

from __future__ import annotations

import torch

from . import stages
from .color import linear_to_srgb, srgb_to_linear
from .fastmath import linear_to_srgb_fast, srgb_to_linear_fast
from .lut import apply_lut, lut_lerp
from .planes import Planes, inplace_ok
from .stages import Params

__all__ = ["render", "render_in_groups", "GROUP_PIXELS"]


def render(x: torch.Tensor, P: Params, luts: torch.Tensor | None,
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
    lin = Planes([decode(x[:, i:i + 1]) for i in range(3)]) if planar else srgb_to_linear(x)
    lin = stages.detail(lin, P)
    lin = lin.clamp_min_(0.0) if inplace_ok(lin) else lin.clamp_min(0.0)  # no negative light from here on
    lin = stages.gain(lin, P)
    lin = stages.calibration(lin, P)
    lin = stages.profile(lin, P)
    lin = stages.tone(lin, P)
    lin = stages.monochrome(lin, P)
    lin = stages.hsl(lin, P)
    lin = stages.saturation(lin, P)
    lin = stages.grading(lin, P)
    lin = stages.vignette(lin, P)
    lin = stages.sharpen(lin, P)
    if isinstance(lin, Planes):
        if tail is None and luts is None:
            if fast:  # clamps to [0, 1] itself
                return Planes([linear_to_srgb_fast(c) for c in lin.p]).stack()
            return Planes([linear_to_srgb(c.clamp(0.0, 1.0)).clamp(0.0, 1.0) for c in lin.p]).stack()
        lin = lin.stack()
    if tail is not None:  # clamp, encode and the point curves as one sampled 1-D map (see rlkit.ops.fused.tail_tables)
        return lut_lerp(lin, *tail, sqrt=True)
    out = linear_to_srgb(lin.clamp_(0.0, 1.0) if inplace_ok(lin) else lin.clamp(0.0, 1.0))
    if luts is not None:
        out = apply_lut(out, luts[:, :1].expand(-1, 3, -1).contiguous())
        out = apply_lut(out, luts[:, 1:])
    return out.clamp_(0.0, 1.0) if inplace_ok(out) else out.clamp(0.0, 1.0)


GROUP_PIXELS = 1 << 18  # pixels per group of images rendered together in eager mode


def render_in_groups(x: torch.Tensor, P: Params, luts: torch.Tensor | None,
                     tail: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Eager :func:`render` (no autograd) over groups of images of about ``GROUP_PIXELS`` pixels each.

    Unfused torch allocates every intermediate afresh; batch-sized ones (100 MB at 8 x 1024^2) page-fault in
    on every allocation, which cost more than the arithmetic. Groups of a few MB reuse the allocator's memory:
    the 10-op program at 8 x 1024^2 went from ~1.5 s to ~0.6 s. Every stage is per image, so the values are
    those of one batched call (blurs may differ in the last bit).
    """
    n, _, h, w = x.shape
    per = max(1, GROUP_PIXELS // (h * w))
    if per >= n or x.device.type != "cpu":  # (CUDA's caching allocator does not page-fault)
        return render(x, P, luts, tail)
    out = torch.empty_like(x)
    for i in range(0, n, per):
        j = min(n, i + per)
        out[i:j] = render(x[i:j], P.images(i, j), luts[i:j] if luts is not None else None,
                          tuple(t[i:j] for t in tail) if tail is not None else None)
    return out

