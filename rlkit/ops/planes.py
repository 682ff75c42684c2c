"""How the stages hold an image: an (N,3,H,W) tensor, or (under torch.compile) three channel planes.

The stage formulas (:mod:`rlkit.ops.stages`) are written once against a small tensor-like interface. Eager,
they get (N,3,H,W) tensors and update the engine's own intermediates in place where autograd allows
(:func:`add`, :func:`mul`); under ``compile=True`` they get :class:`Planes`, so inductor computes a pixel's
three channels in one loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["Planes", "channels", "inplace_ok", "add", "mul"]


def inplace_ok(t: torch.Tensor) -> bool:
    """In-place updates of the engine's own intermediates are safe (and skip fresh allocations) unless autograd
    is recording them (or the image is held as planes under torch.compile)."""
    return isinstance(t, torch.Tensor) and not (torch.is_grad_enabled() and t.requires_grad)


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.add_(b) if inplace_ok(a) and isinstance(b, torch.Tensor) and not b.requires_grad and torch.broadcast_shapes(a.shape, b.shape) == a.shape \
        else a.add(b)


def mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.mul_(b) if inplace_ok(a) and isinstance(b, torch.Tensor) and not b.requires_grad and torch.broadcast_shapes(a.shape, b.shape) == a.shape \
        else a.mul(b)


class Planes:
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
    def split(o: Planes | torch.Tensor | float) -> tuple:
        if isinstance(o, Planes):
            return o.p
        if isinstance(o, torch.Tensor) and o.dim() >= 2 and o.shape[1] == 3:
            return o[:, 0:1], o[:, 1:2], o[:, 2:3]
        return o, o, o

    def _map(self, other: Planes | torch.Tensor | float,
             fn: Callable[[torch.Tensor, torch.Tensor | float], torch.Tensor]) -> Planes:
        return Planes([fn(a, b) for a, b in zip(self.p, Planes.split(other))])

    # method calls, not operators: dynamo cannot dispatch ``planes - tensor`` to a user class
    def add(self, o: Planes | torch.Tensor | float) -> Planes:
        return self._map(o, lambda a, b: a + b)

    def sub(self, o: Planes | torch.Tensor | float) -> Planes:
        return self._map(o, lambda a, b: a - b)

    def mul(self, o: Planes | torch.Tensor | float) -> Planes:
        return self._map(o, lambda a, b: a * b)

    def div(self, o: Planes | torch.Tensor | float) -> Planes:
        return self._map(o, lambda a, b: a / b)

    def __getitem__(self, idx: object) -> torch.Tensor:
        # only the channel slices the stages use: x[:, i:i+1]
        if isinstance(idx, tuple) and len(idx) == 2 and idx[0] == slice(None) and isinstance(idx[1], slice):
            i = idx[1].start or 0
            if idx[1].stop == i + 1 and (idx[1].step in (None, 1)):
                return self.p[i]
        raise IndexError(f"_Planes supports x[:, i:i+1] only, got {idx!r}")

    def clamp(self, lo: float | None = None, hi: float | None = None) -> Planes:
        return Planes([a.clamp(lo, hi) for a in self.p])

    def clamp_min(self, lo: float) -> Planes:
        return Planes([a.clamp_min(lo) for a in self.p])

    def sqrt(self) -> Planes:
        return Planes([a.sqrt() for a in self.p])

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
        return True  # never update planes in place (see inplace_ok)

    def stack(self) -> torch.Tensor:
        return torch.stack([a[:, 0] for a in self.p], 1)


def channels(like: Planes | torch.Tensor | None, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
             ) -> Planes | torch.Tensor:
    """Three per-channel values as planes when ``like`` is planar, else concatenated (N,3,...)."""
    if isinstance(like, Planes):
        return Planes(torch.broadcast_tensors(a, b, c))
    return torch.cat(torch.broadcast_tensors(a, b, c), dim=1)

