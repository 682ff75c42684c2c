"""Annotated regions and the masks and saliency maps derived from them.

GenBlemish and EditFHF annotators mark flaws with disks of radius H/20 (H = image height) around a
clicked centre; EditFHF also draws a bounding box around the flawed object. Disks are aggregated with
Gaussian kernels into a pixel-level saliency map. Coordinates are pixels, (x, y) = (column, row), with
pixel centres at integer coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Region", "FlawRegion", "default_radius", "disk_mask", "disk_masks", "saliency_from_regions"]


def default_radius(height: int) -> float:
    """The papers' annotation disk radius: 1/20 of the image height, in pixels."""
    return float(height) / 20.0


def _num(v: object, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}: expected a number, got {v!r}")
    f = float(v)
    if not np.isfinite(f):
        raise ValueError(f"{where}: expected a finite number, got {v!r}")
    return f


def _point(p: object, where: str) -> tuple[float, float]:
    if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) != 2:
        raise ValueError(f"{where}: expected [x, y], got {p!r}")
    return (_num(p[0], f"{where}.x"), _num(p[1], f"{where}.y"))


@dataclass(frozen=True)
class Region:
    """One GenBlemish-style annotation: a disk centre (x, y) in pixels, a category and a description.

    ``radius`` None means the papers' H/20 of the image it is drawn on.
    """

    center: tuple[float, float]
    category: str = ""
    description: str = ""
    radius: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _point(self.center, "region.center"))
        if self.radius is not None:
            r = _num(self.radius, "region.radius")
            if r <= 0:
                raise ValueError(f"region.radius: must be > 0, got {r}")
            object.__setattr__(self, "radius", r)

    def check_inside(self, width: int, height: int) -> None:
        """Raise ValueError when the centre lies outside a width x height image."""
        x, y = self.center
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            raise ValueError(f"region centre ({x:g}, {y:g}) is outside the {width}x{height} image")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form ``{"center": [x, y], "category", "description", "radius"}``."""
        return {"center": list(self.center), "category": self.category, "description": self.description,
                "radius": self.radius}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Region:
        """Inverse of :meth:`to_dict`; also accepts flat ``x``/``y`` keys."""
        if not isinstance(d, Mapping):
            raise ValueError(f"region: expected an object, got {type(d).__name__}")
        center = d.get("center", (d.get("x"), d.get("y")) if "x" in d else None)
        if center is None:
            raise ValueError("region: missing 'center' ([x, y] in pixels)")
        return cls(center, str(d.get("category") or ""), str(d.get("description") or ""), d.get("radius"))


@dataclass(frozen=True)
class FlawRegion:
    """One EditFHF-style annotation: a box (x1, y1, x2, y2) around the flawed object, >= 1 disk centre, text.

    ``kind`` is ``"artifact"`` or ``"editing_failure"``; ``flaw_type`` is the optional short type label.
    """

    box: tuple[float, float, float, float]
    disks: tuple[tuple[float, float], ...]
    description: str = ""
    flaw_type: str = ""
    kind: str = "artifact"
    radius: float | None = None

    def __post_init__(self) -> None:
        b = self.box
        if isinstance(b, (str, bytes)) or not isinstance(b, Sequence) or len(b) != 4:
            raise ValueError(f"flaw region.box: expected [x1, y1, x2, y2], got {b!r}")
        box = tuple(_num(v, f"flaw region.box[{i}]") for i, v in enumerate(b))
        if box[2] < box[0] or box[3] < box[1]:
            raise ValueError(f"flaw region.box: expected x1 <= x2 and y1 <= y2, got {list(box)}")
        object.__setattr__(self, "box", box)
        if isinstance(self.disks, (str, bytes)) or not isinstance(self.disks, Iterable):
            raise ValueError(f"flaw region.disks: expected a list of [x, y], got {self.disks!r}")
        disks = tuple(_point(p, f"flaw region.disks[{i}]") for i, p in enumerate(self.disks))
        if not disks:
            raise ValueError("flaw region.disks: each box needs at least one disk (EditFHF protocol)")
        object.__setattr__(self, "disks", disks)
        if self.kind not in ("artifact", "editing_failure"):
            raise ValueError(f"flaw region.kind: expected 'artifact' or 'editing_failure', got {self.kind!r}")
        if self.radius is not None and _num(self.radius, "flaw region.radius") <= 0:
            raise ValueError(f"flaw region.radius: must be > 0, got {self.radius}")

    def check_inside(self, width: int, height: int) -> None:
        """Raise ValueError when the box or a disk centre lies outside a width x height image."""
        x1, y1, x2, y2 = self.box
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise ValueError(f"box {list(self.box)} is outside the {width}x{height} image")
        for x, y in self.disks:
            if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
                raise ValueError(f"disk centre ({x:g}, {y:g}) is outside the {width}x{height} image")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"box": list(self.box), "disks": [list(p) for p in self.disks], "description": self.description,
                "flaw_type": self.flaw_type, "kind": self.kind, "radius": self.radius}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], kind: str | None = None) -> FlawRegion:
        """Inverse of :meth:`to_dict`; ``kind`` overrides the stored kind."""
        if not isinstance(d, Mapping):
            raise ValueError(f"flaw region: expected an object, got {type(d).__name__}")
        for k in ("box", "disks"):
            if k not in d:
                raise ValueError(f"flaw region: missing {k!r}")
        return cls(d["box"], d["disks"], str(d.get("description") or ""), str(d.get("flaw_type") or ""),
                   kind or str(d.get("kind") or "artifact"), d.get("radius"))


#: what the mask and saliency helpers take per region: a Region, a FlawRegion (each of its disks) or an (x, y)
RegionLike = Region | FlawRegion | Sequence[float]


def _centers_radii(regions: Iterable[RegionLike], height: int, radius: float | None) -> tuple[np.ndarray, np.ndarray]:
    cs, rs = [], []
    for i, r in enumerate(regions):
        if isinstance(r, Region):
            cs.append(r.center)
            rs.append(r.radius if r.radius is not None else (radius if radius is not None else default_radius(height)))
        elif isinstance(r, FlawRegion):
            for p in r.disks:
                cs.append(p)
                rs.append(r.radius if r.radius is not None else (radius if radius is not None else default_radius(height)))
        else:
            cs.append(_point(r, f"regions[{i}]"))
            rs.append(radius if radius is not None else default_radius(height))
    return np.asarray(cs, dtype=np.float64).reshape(-1, 2), np.asarray(rs, dtype=np.float64)


def _check_shape(height: int, width: int) -> None:
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")


def disk_masks(regions: Iterable[RegionLike], height: int, width: int, *, radius: float | None = None) -> np.ndarray:
    """Boolean masks, one per disk, shape (K, H, W): pixel (x, y) is inside when (x-cx)^2 + (y-cy)^2 <= r^2.

    ``regions``: Regions, FlawRegions (each of their disks) or (x, y) centres; r defaults to H/20.
    """
    _check_shape(height, width)
    c, r = _centers_radii(regions, height, radius)
    yy = np.arange(height, dtype=np.float64)[None, :, None]
    xx = np.arange(width, dtype=np.float64)[None, None, :]
    d2 = (xx - c[:, 0, None, None]) ** 2 + (yy - c[:, 1, None, None]) ** 2
    return d2 <= (r[:, None, None] ** 2)


def disk_mask(regions: Iterable[RegionLike], height: int, width: int, *, radius: float | None = None) -> np.ndarray:
    """Union of the disks of ``regions`` as one boolean (H, W) mask (radius H/20 by default)."""
    m = disk_masks(regions, height, width, radius=radius)
    return m.any(0) if len(m) else np.zeros((height, width), dtype=bool)


def saliency_from_regions(
    regions: Iterable[RegionLike],
    height: int,
    width: int,
    *,
    sigma: float | None = None,
    radius: float | None = None,
    normalize: str | None = "max",
) -> np.ndarray:
    """Gaussian-aggregated saliency map (H, W) float32 from annotation disks.

    S(p) = sum_k exp(-|p - c_k|^2 / (2 sigma_k^2)) with sigma_k = the disk's radius (H/20 unless given), so
    each disk adds a kernel of peak 1 and integral 2*pi*sigma^2 (away from the border). ``normalize``:
    ``"max"`` scales to peak 1 (default), ``"sum"`` to a probability map (sums to 1), None keeps the raw sum.
    No region gives an all-zero map.
    """
    if normalize not in ("max", "sum", None):
        raise ValueError(f"saliency_from_regions: normalize must be 'max', 'sum' or None, got {normalize!r}")
    _check_shape(height, width)
    c, r = _centers_radii(regions, height, radius)
    if sigma is not None:
        if _num(sigma, "sigma") <= 0:
            raise ValueError(f"saliency_from_regions: sigma must be > 0, got {sigma}")
        r = np.full_like(r, float(sigma))
    out = np.zeros((height, width), dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)
    xs = np.arange(width, dtype=np.float64)
    for (cx, cy), s in zip(c, r):  # separable: exp(-dx^2/2s^2) * exp(-dy^2/2s^2)
        out += np.outer(np.exp(-((ys - cy) ** 2) / (2 * s * s)), np.exp(-((xs - cx) ** 2) / (2 * s * s)))
    if normalize == "max" and out.max() > 0:
        out /= out.max()
    elif normalize == "sum" and out.sum() > 0:
        out /= out.sum()
    return out.astype(np.float32)

