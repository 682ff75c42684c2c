"""Local-adjustment masks: geometric (radial, linear gradient, brush/disk), tensor, colour and luminance range.

Every mask renders to a soft weight map in [0, 1] of shape (1, 1, H, W) for one image. Geometric
masks use normalised coordinates (x as a fraction of the width, y of the height) unless stated
otherwise, so one program fits any resolution. Masks combine with :class:`CompositeMask`:
``add`` is the soft union ``1-(1-a)(1-b)``, ``intersect`` the product ``a*b``, ``subtract`` ``a*(1-b)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .color import hue_saturation
from .errors import ProgramError
from .ramps import smoothstep

__all__ = [
    "Mask",
    "RadialMask",
    "LinearMask",
    "BrushMask",
    "TensorMask",
    "LuminanceRangeMask",
    "ColorRangeMask",
    "CompositeMask",
    "mask_from_dict",
    "clamping",
    "MASK_TYPES",
]


# clamp mode (EditProgram.from_dict(clamp=True)): while set, out-of-range mask fields are clamped and recorded
# here as (where, given, used, lo, hi) instead of raising
_CLAMPS: contextvars.ContextVar[list | None] = contextvars.ContextVar("rlkit_mask_clamps", default=None)


@contextlib.contextmanager
def clamping(records: list) -> Iterator[list]:
    """Within the block, masks built clamp out-of-range numeric fields and append (where, given, used, lo, hi)."""
    token = _CLAMPS.set(records)
    try:
        yield records
    finally:
        _CLAMPS.reset(token)


def _num(op: str, name: str, value: object, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProgramError(f"{op}: parameter '{name}' must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ProgramError(f"{op}: parameter '{name}' must be finite, got {value!r}")
    lo_f = -math.inf if lo is None else lo
    hi_f = math.inf if hi is None else hi
    if not lo_f <= v <= hi_f:
        records = _CLAMPS.get()
        if records is None:
            raise ProgramError(f"{op}: parameter '{name}'={v:g} is outside the allowed range [{lo_f:g}, {hi_f:g}"
                               + (")" if hi is None else "]"))
        used = min(max(v, lo_f), hi_f)
        records.append((f"{op}.{name}", v, used, lo_f, hi_f))
        return used
    return v


def _set(obj: Mask, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _set_invert(obj: Mask, op: str) -> None:
    if not isinstance(obj.invert, bool):
        raise ProgramError(f"{op}: 'invert' must be true or false, got {obj.invert!r}")


def _grid(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates as fractions of width / height, shapes (1,1,1,W) and (1,1,H,1)."""
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    return xs.view(1, 1, 1, w), ys.view(1, 1, h, 1)


class Mask:
    """Base class of masks. ``render(image_linear)`` returns a (1,1,H,W) float weight map in [0, 1]."""

    kind: str = "mask"
    invert: bool = False
    #: True when the mask is computed from the image's pixels (range masks), False for pure geometry
    depends_on_image: bool = False

    def render(self, image: torch.Tensor) -> torch.Tensor:
        """Render for one linear-light image (1,3,H,W); honours ``invert``."""
        m = self._render(image).clamp(0.0, 1.0)
        return 1.0 - m if self.invert else m

    def _render(self, image: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form (``{"type": kind, ...}``)."""
        d: dict[str, Any] = {"type": self.kind}
        for k, v in self.__dict__.items():
            if k == "invert" and not v:
                continue
            d[k] = v
        return d


@dataclass(frozen=True)
class RadialMask(Mask):
    """Ellipse centred at (cx, cy) with radii (rx, ry), rotated by ``angle`` degrees.

    1 inside the inner ellipse, 0 at and beyond the ellipse, smoothstep in between; ``feather``
    (0..100) is the percentage of the radius used for the transition.
    """

    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0
    feather: float = 50.0
    invert: bool = False
    kind = "radial"

    def __post_init__(self) -> None:
        for n in ("cx", "cy"):
            _set(self, n, _num("radial mask", n, getattr(self, n), -10.0, 10.0))
        for n in ("rx", "ry"):
            _set(self, n, _num("radial mask", n, getattr(self, n), 1e-6, 100.0))
        _set(self, "angle", _num("radial mask", "angle", self.angle, -360.0, 360.0))
        _set(self, "feather", _num("radial mask", "feather", self.feather, 0.0, 100.0))
        _set_invert(self, "radial mask")

    def _render(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        x, y = _grid(h, w, image.device)
        a = math.radians(self.angle)
        # rotate in pixel-aspect-correct space (x scaled by W/H), radii follow the same scaling
        dx = (x - self.cx) * (w / h)
        dy = y - self.cy
        u = dx * math.cos(a) + dy * math.sin(a)
        v = -dx * math.sin(a) + dy * math.cos(a)
        r = torch.sqrt((u / (self.rx * w / h)) ** 2 + (v / self.ry) ** 2)
        inner = 1.0 - self.feather / 100.0
        if inner >= 1.0 - 1e-6:
            return (r < 1.0).float()
        return 1.0 - smoothstep(inner, 1.0, r)


@dataclass(frozen=True)
class LinearMask(Mask):
    """Linear gradient: 0 on the line through (x0, y0), 1 on the parallel line through (x1, y1), smoothstep between."""

    x0: float
    y0: float
    x1: float
    y1: float
    invert: bool = False
    kind = "linear"

    def __post_init__(self) -> None:
        for n in ("x0", "y0", "x1", "y1"):
            _set(self, n, _num("linear mask", n, getattr(self, n), -10.0, 10.0))
        _set_invert(self, "linear mask")
        if abs(self.x1 - self.x0) + abs(self.y1 - self.y0) < 1e-6:
            raise ProgramError("linear mask: the zero point (x0, y0) and full point (x1, y1) must differ")

    def _render(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        x, y = _grid(h, w, image.device)
        ax, ay = (self.x1 - self.x0) * w / h, self.y1 - self.y0
        t = ((x - self.x0) * (w / h) * ax + (y - self.y0) * ay) / (ax * ax + ay * ay)
        return smoothstep(0.0, 1.0, t)


@dataclass(frozen=True)
class BrushMask(Mask):
    """Union of disks ``(x, y, r)`` (brush dabs or annotated blemish regions).

    Normalised units by default (x of width, y of height, r of the shorter side); ``pixels=True``
    takes pixel units of the image being edited. ``feather`` (0..100) softens the outer part of each disk.
    """

    disks: tuple[tuple[float, float, float], ...]
    feather: float = 0.0
    pixels: bool = False
    invert: bool = False
    kind = "brush"

    def __post_init__(self) -> None:
        if isinstance(self.disks, (str, bytes)) or not isinstance(self.disks, Sequence) or not self.disks:
            raise ProgramError(f"brush mask: 'disks' must be a non-empty list of [x, y, r], got {self.disks!r}")
        clean = []
        for i, d in enumerate(self.disks):
            if isinstance(d, (str, bytes)) or not isinstance(d, Sequence) or len(d) != 3:
                raise ProgramError(f"brush mask: disks[{i}] must be [x, y, r], got {d!r}")
            x = _num("brush mask", f"disks[{i}].x", d[0])
            y = _num("brush mask", f"disks[{i}].y", d[1])
            r = _num("brush mask", f"disks[{i}].r", d[2], 0.0, None if self.pixels else 100.0)
            clean.append((x, y, r))
        object.__setattr__(self, "disks", tuple(clean))
        _set(self, "feather", _num("brush mask", "feather", self.feather, 0.0, 100.0))
        _set_invert(self, "brush mask")
        if not isinstance(self.pixels, bool):
            raise ProgramError(f"brush mask: 'pixels' must be true or false, got {self.pixels!r}")

    def _render(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        xs = torch.arange(w, device=image.device, dtype=torch.float32).view(1, 1, 1, w) + 0.5
        ys = torch.arange(h, device=image.device, dtype=torch.float32).view(1, 1, h, 1) + 0.5
        out = torch.zeros(1, 1, h, w, device=image.device)
        short = min(h, w)
        for x, y, r in self.disks:
            px, py, pr = (x, y, r) if self.pixels else (x * w, y * h, r * short)
            if pr <= 0:
                continue
            d = torch.sqrt((xs - px) ** 2 + (ys - py) ** 2) / pr
            inner = 1.0 - self.feather / 100.0
            m = (d <= 1.0).float() if inner >= 1.0 - 1e-6 else 1.0 - smoothstep(inner, 1.0, d)
            out = torch.maximum(out, m)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["disks"] = [list(t) for t in self.disks]
        return d


@dataclass(frozen=True, eq=False)
class TensorMask(Mask):
    """Any soft or binary mask (e.g. a saliency map): (H,W), (1,H,W) or (1,1,H,W) values in [0,1], resized bilinearly."""

    data: torch.Tensor
    invert: bool = False
    kind = "tensor"

    def __post_init__(self) -> None:
        t = self.data
        if not isinstance(t, torch.Tensor):
            try:
                t = torch.as_tensor(t, dtype=torch.float32)
            except Exception as e:  # noqa: BLE001
                raise ProgramError(f"tensor mask: 'data' must be a 2-D array of numbers ({e})") from None
        t = t.detach().float() if not t.requires_grad else t.float()
        while t.dim() > 2 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 2 or t.numel() == 0:
            raise ProgramError(f"tensor mask: 'data' must be 2-D (H, W), got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ProgramError("tensor mask: 'data' contains NaN or infinite values")
        if t.min() < 0 or t.max() > 1:
            raise ProgramError(
                f"tensor mask: values must be in [0, 1], got range [{float(t.min()):g}, {float(t.max()):g}]")
        object.__setattr__(self, "data", t)

    def __eq__(self, other: object) -> bool:  # by value, so that programs compare equal after a round trip
        if not isinstance(other, TensorMask):
            return NotImplemented
        return (self.invert == other.invert and self.data.shape == other.data.shape
                and torch.equal(self.data.detach().cpu(), other.data.detach().cpu()))

    def __hash__(self) -> int:
        return hash((self.kind, tuple(self.data.shape), self.invert))

    def _render(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        t = self.data.to(image.device)[None, None]
        if t.shape[-2:] != (h, w):
            t = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
        return t

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.kind, "data": self.data.detach().cpu().tolist()}
        if self.invert:
            d["invert"] = True
        return d


def _display_luma(image: torch.Tensor) -> torch.Tensor:
    y = 0.2126 * image[:, 0:1] + 0.7152 * image[:, 1:2] + 0.0722 * image[:, 2:3]
    # clamped above 0: the power's derivative at 0 is infinite, which made image gradients NaN at black pixels
    return y.clamp_min(1e-12) ** (1.0 / 2.2)


@dataclass(frozen=True)
class LuminanceRangeMask(Mask):
    """Selects tones whose display luminance lies in [lo, hi] (0..1), with a ``feather`` wide soft edge."""

    lo: float
    hi: float
    feather: float = 0.1
    invert: bool = False
    kind = "luminance_range"
    depends_on_image = True

    def __post_init__(self) -> None:
        for n in ("lo", "hi", "feather"):
            _set(self, n, _num("luminance range mask", n, getattr(self, n), 0.0, 1.0))
        _set_invert(self, "luminance range mask")
        if self.lo > self.hi:
            raise ProgramError(f"luminance range mask: lo={self.lo:g} must be <= hi={self.hi:g}")

    def _render(self, image: torch.Tensor) -> torch.Tensor:
        p = _display_luma(image)
        f = max(self.feather, 1e-4)
        return smoothstep(self.lo - f, self.lo, p) * (1.0 - smoothstep(self.hi, self.hi + f, p))


@dataclass(frozen=True)
class ColorRangeMask(Mask):
    """Selects colours whose hue is within ``width`` degrees of ``hue`` (soft edge ``feather`` deg), weighted by saturation."""

    hue: float
    width: float = 30.0
    feather: float = 15.0
    invert: bool = False
    kind = "color_range"
    depends_on_image = True

    def __post_init__(self) -> None:
        _set(self, "hue", _num("color range mask", "hue", self.hue, 0.0, 360.0))
        _set(self, "width", _num("color range mask", "width", self.width, 0.0, 180.0))
        _set(self, "feather", _num("color range mask", "feather", self.feather, 0.0, 180.0))
        _set_invert(self, "color range mask")

    def _render(self, image: torch.Tensor) -> torch.Tensor:
        hue, sat = hue_saturation(image.clamp_min(1e-12).sqrt())  # (not 0: sqrt's gradient there is infinite)
        d = torch.remainder(hue - self.hue + 180.0, 360.0) - 180.0
        f = max(self.feather, 1e-3)
        return (1.0 - smoothstep(self.width, self.width + f, d.abs())) * sat


_COMBINE_OPS = ("add", "intersect", "subtract")


@dataclass(frozen=True)
class CompositeMask(Mask):
    """Masks combined left to right: ``parts = ((op, mask), ...)`` with op in add / intersect / subtract.

    The first part's op is ignored (it starts the mask).
    """

    parts: tuple[tuple[str, Mask], ...] = field(default_factory=tuple)
    invert: bool = False
    kind = "composite"

    @property
    def depends_on_image(self) -> bool:  # type: ignore[override]
        return any(m.depends_on_image for _, m in self.parts)

    def __post_init__(self) -> None:
        if not self.parts:
            raise ProgramError("composite mask: 'parts' must hold at least one [op, mask]")
        clean = []
        for i, part in enumerate(self.parts):
            if not isinstance(part, Sequence) or isinstance(part, (str, bytes)) or len(part) != 2:
                raise ProgramError(f"composite mask: parts[{i}] must be [op, mask], got {part!r}")
            op, m = part
            if op not in _COMBINE_OPS:
                raise ProgramError(f"composite mask: parts[{i}] op {op!r} is not one of {list(_COMBINE_OPS)}")
            if isinstance(m, Mapping):
                m = mask_from_dict(m, where=f"composite mask parts[{i}]")
            if not isinstance(m, Mask):
                raise ProgramError(f"composite mask: parts[{i}] mask must be a mask, got {type(m).__name__}")
            clean.append((op, m))
        object.__setattr__(self, "parts", tuple(clean))

    def _render(self, image: torch.Tensor) -> torch.Tensor:
        out = self.parts[0][1].render(image)
        for op, m in self.parts[1:]:
            b = m.render(image)
            if op == "add":
                out = 1.0 - (1.0 - out) * (1.0 - b)
            elif op == "intersect":
                out = out * b
            else:
                out = out * (1.0 - b)
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.kind, "parts": [[op, m.to_dict()] for op, m in self.parts]}
        if self.invert:
            d["invert"] = True
        return d


MASK_TYPES: Mapping[str, type[Mask]] = {
    "radial": RadialMask,
    "linear": LinearMask,
    "brush": BrushMask,
    "disk": BrushMask,
    "tensor": TensorMask,
    "luminance_range": LuminanceRangeMask,
    "color_range": ColorRangeMask,
    "composite": CompositeMask,
}


def mask_from_dict(d: Mapping[str, Any], *, where: str = "mask") -> Mask:
    """Build a mask from its canonical dict form; unknown type or field -> :class:`ProgramError`."""
    if isinstance(d, Mask):
        return d
    if not isinstance(d, Mapping):
        raise ProgramError(f"{where}: expected an object with a 'type', got {type(d).__name__}")
    kind = d.get("type")
    cls = MASK_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProgramError(f"{where}: unknown mask type {kind!r}; expected one of {sorted(MASK_TYPES)}")
    fields = {k: v for k, v in d.items() if k != "type"}
    if kind == "disk":  # one disk shorthand: {"type": "disk", "x":..,"y":..,"r":..}
        if {"x", "y", "r"} <= set(fields):
            fields["disks"] = [[fields.pop("x"), fields.pop("y"), fields.pop("r")]]
    allowed = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ProgramError(f"{where}: {kind} mask has unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    if "invert" in fields and not isinstance(fields["invert"], bool):
        raise ProgramError(f"{where}: 'invert' must be true or false, got {fields['invert']!r}")
    if kind == "composite" and "parts" in fields:
        parts = fields["parts"]
        if not isinstance(parts, Sequence) or isinstance(parts, (str, bytes)):
            raise ProgramError(f"{where}: composite 'parts' must be a list of [op, mask]")
        fields["parts"] = tuple(tuple(p) if isinstance(p, Sequence) and not isinstance(p, (str, bytes)) else p
                                for p in parts)
    if kind in ("brush", "disk") and "disks" in fields:
        ds = fields["disks"]
        if isinstance(ds, Sequence) and not isinstance(ds, (str, bytes)):
            fields["disks"] = tuple(tuple(x) if isinstance(x, Sequence) and not isinstance(x, (str, bytes)) else x
                                    for x in ds)
    try:
        return cls(**fields)
    except ProgramError as e:
        raise ProgramError(f"{where}: {e}") from None
    except TypeError as e:
        raise ProgramError(f"{where}: {kind} mask: {e}") from None
