"""The compiled path (``compile=True``): torch.compile of the pipeline, with an eager fallback.

Each distinct set of active ops and image size is its own graph (the first call compiles; later calls with
the same structure reuse it). Under torch.compile the stages run on channel planes
(:class:`~rlkit.ops.planes.Planes`) with pow-free sRGB transfer functions (:mod:`rlkit.ops.fastmath`);
exposure / white balance alone take a closed form (:func:`gain_only`). Any compiler failure falls back to
eager for good.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from . import pipeline, stages
from .fastmath import gain_map, gain_map_poly_kernel, gain_map_poly_params
from .stages import Params

__all__ = ["call", "render", "gain_only", "FAST_DECODE_MAX"]

T = TypeVar("T")

_COMPILED: dict[str, Callable[..., object] | bool] = {}  # key -> compiled function, or False once compiling failed


def call(key: str, fn: Callable[..., T], *args: object) -> T:
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
    """The function torch.compile traces: plain dicts in (not :class:`Params`), so dynamo guards on tensors."""
    out = pipeline.render(x, Params(x.shape[0], x.device, values, local), luts, tail, fast=fast)
    if not fast:
        return out
    # with the rational decode, also return the input's maximum, so the caller can check afterwards that every
    # input was inside the rational's range; taken over the channel planes, the reduction runs in the same loop
    # as the planar decode (x.amax() over the flat tensor was a separate pass: ~0.7 of 5 ms, 8 x 512^2 contrast)
    return out, torch.maximum(torch.maximum(x[:, 0], x[:, 1]), x[:, 2]).amax()


def render(x: torch.Tensor, P: Params, luts: torch.Tensor | None,
           tail: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None, grad: bool = False
           ) -> torch.Tensor:
    """:func:`rlkit.ops.pipeline.render` compiled (``luts``, ``tail``: the point curves, see rlkit.ops.fused)."""
    # the rational sRGB decode is valid up to 8.385: render optimistically with it and check the maximum it
    # returns; brighter inputs (rare: images are [0, 1]) and NaN are rendered again with the exact pows, and
    # so are renders that record gradients (outside its range the rational overflows: NaN through where)
    args = (x, dict(P.values), dict(P.local), luts, tail)
    if not grad:
        out, xmax = call("render", _render_core, *args, True)
        if bool(xmax <= FAST_DECODE_MAX):
            return out
    return call("render", _render_core, *args, False)


FAST_DECODE_MAX = 8.385


def gain_only(x: torch.Tensor, P: Params) -> torch.Tensor:
    """A program of exposure / white balance alone (no curves, no local maps), compiled as a pow-free closed form.

    Within 5e-7 of the exact chain for any input and gains >= 2^-15, i.e. every program (rlkit.ops.fastmath);
    compiles to ~1.2 passes, the sampled LUT to ~2.
    """
    gains = stages.gain(torch.ones(x.shape[0], 3, 1, 1, device=x.device), P)
    poly = gain_map_poly_params(gains)  # a low-degree band polynomial for the common small gains
    if poly is not None:
        return call("gain_poly", gain_map_poly_kernel, x, *poly)
    return call("gain", gain_map, x, gains)
