"""Local adjustments: slider offsets under a mask, and the per-pixel offset maps the engine adds to the sliders."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .color import srgb_to_linear
from .errors import ProgramError
from .masks import Mask, clamping, mask_from_dict
from .params import LOCAL_PARAMS, canonical_name
from .values import ClampNote, check_param

__all__ = ["LocalAdjustment", "local_params", "mask_clamps", "local_maps"]


@dataclass(frozen=True)
class LocalAdjustment:
    """Slider offsets applied under a mask; they add to the global values per pixel, weighted by the mask."""

    mask: Mask
    params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.mask, Mapping):
            object.__setattr__(self, "mask", mask_from_dict(self.mask, where="local adjustment mask"))
        if not isinstance(self.mask, Mask):
            raise ProgramError(f"local adjustment: 'mask' must be a mask, got {type(self.mask).__name__}")
        object.__setattr__(self, "params", local_params(self.params, clamp=False, notes=None, where="local"))

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form."""
        return {"mask": self.mask.to_dict(), "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, clamp: bool = False, notes: list[ClampNote] | None = None,
                  where: str = "local") -> LocalAdjustment:
        """Build from ``{"mask": {...}, "params": {...}}`` (param names canonical or Lightroom)."""
        if not isinstance(d, Mapping):
            raise ProgramError(f"{where}: expected an object with 'mask' and 'params', got {type(d).__name__}")
        unknown = sorted(set(d) - {"mask", "params"})
        if unknown:
            raise ProgramError(f"{where}: unknown field(s) {unknown}; expected 'mask' and 'params'")
        if "mask" not in d:
            raise ProgramError(f"{where}: missing 'mask'")
        with mask_clamps(clamp, notes, f"{where}.mask"):
            mask = mask_from_dict(d["mask"], where=f"{where}.mask")
        params = local_params(d.get("params", {}), clamp=clamp, notes=notes, where=where)
        return cls(mask, params)


@contextlib.contextmanager
def mask_clamps(clamp: bool, notes: list[ClampNote] | None, where: str) -> Iterator[None]:
    """Clamp mode for the masks built inside the block: their clamps become notes prefixed with ``where``."""
    if not clamp:
        yield
        return
    with clamping([]) as records:
        yield
    if notes is not None:
        notes.extend(ClampNote(f"{where}: {w}", g, u, lo, hi) for w, g, u, lo, hi in records)


def local_params(raw: object, *, clamp: bool, notes: list[ClampNote] | None, where: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise ProgramError(f"{where}: 'params' must be an object of slider offsets, got {type(raw).__name__}")
    out: dict[str, float] = {}
    for k, v in raw.items():
        name = canonical_name(k) if isinstance(k, str) else None
        if name is None or name not in LOCAL_PARAMS:
            raise ProgramError(f"{where}: unknown or non-local parameter {k!r}; local parameters: {list(LOCAL_PARAMS)}")
        val = check_param(where, name, v, clamp, notes, local=True)
        if val != 0.0:
            out[name] = out.get(name, 0.0) + val
    return out


def local_maps(x: torch.Tensor, locals_: Sequence[Sequence[LocalAdjustment]]) -> dict[str, torch.Tensor]:
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
