"""Binary masks for local tools, built from disk regions, boxes or a saliency map, as the papers do.

- Regions (Agentic Retoucher's GenBlemish, EditRefiner's EditFHF): annotators mark a flaw with a
  disk whose radius is 1/20 of the image height; :func:`masks_from_regions` rasterises such disks.
- Boxes (EditRefiner's semantic-level flaw boxes, JarvisArt's ``<box>[x1,y1,x2,y2]</box>``):
  :func:`masks_from_boxes` fills them.
- Saliency (both papers' perception agents): the predicted map is thresholded at ``tau`` and
  morphologically dilated to form the mask candidates; :func:`masks_from_saliency` does exactly
  that, and :func:`boxes_from_mask` returns the bounding box of each connected component (the
  boxes EditRefiner hands to its reasoning agent). The papers do not publish tau or the dilation
  size: defaults here are ``threshold=0.5`` and a disk of radius ``height/40`` (half the annotation
  disk), both overridable. These two, ``dilate_mask``, ``default_dilation`` and ``MaskError`` are the
  perception agents' own (``rlkit.policies.perception.regions``, which also opens/closes and boxes a
  map: ``regions_from_map``), re-exported here for the tools.

Every builder returns a ``bool`` numpy array of shape (H, W) (the union), or (K, H, W) with
``separate=True`` (one mask per region, box or connected component). Coordinates are pixels of
the image the mask is for: x = column, y = row, origin top-left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rlkit.policies import MaskError, boxes_from_mask, default_dilation, dilate_mask, masks_from_saliency

__all__ = [
    "ANNOTATION_RADIUS_FRACTION",
    "MaskError",
    "boxes_from_mask",
    "default_dilation",
    "dilate_mask",
    "masks_from_boxes",
    "masks_from_regions",
    "masks_from_saliency",
]

#: Disk radius as a fraction of the image height used by GenBlemish-27K and EditFHF-15K annotators.
ANNOTATION_RADIUS_FRACTION = 1.0 / 20.0


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise MaskError(f"size must be (height, width), got {size!r}") from exc
    if h <= 0 or w <= 0:
        raise MaskError(f"size must be positive (height, width), got {size!r}")
    return h, w


def _finite(value: object, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise MaskError(f"{what} must be a number, got {value!r}") from exc
    if not math.isfinite(out):
        raise MaskError(f"{what} must be finite, got {value!r}")
    return out


def _disk(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Closed disk: pixel (row i, col j) is in when (j - cx)^2 + (i - cy)^2 <= r^2."""
    ys = np.arange(h, dtype=np.float64)[:, None]
    xs = np.arange(w, dtype=np.float64)[None, :]
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r


def _region_center_radius(region: object, index: int) -> tuple[float, float, float | None]:
    """(x, y, radius or None) from a point, a mapping or an object with center/radius attributes."""
    where = f"region {index}"
    radius = None
    if isinstance(region, Mapping):
        if "center" in region:
            center = region["center"]
        elif "x" in region and "y" in region:
            center = (region["x"], region["y"])
        else:
            raise MaskError(
                f"{where}: a mapping needs 'center': [x, y] or 'x' and 'y', got keys {sorted(region)}"
            )
        radius = region.get("radius")
    elif hasattr(region, "center"):
        center = region.center
        radius = getattr(region, "radius", None)
    elif hasattr(region, "x") and hasattr(region, "y"):
        center = (region.x, region.y)
        radius = getattr(region, "radius", None)
    else:
        center = region
    try:
        cx, cy = center
    except (TypeError, ValueError) as exc:
        raise MaskError(f"{where}: center must be (x, y), got {center!r}") from exc
    cx = _finite(cx, f"{where} x")
    cy = _finite(cy, f"{where} y")
    if radius is not None:
        radius = _finite(radius, f"{where} radius")
        if radius <= 0:
            raise MaskError(f"{where}: radius must be > 0, got {radius}")
    return cx, cy, radius


def _stack(masks: list[np.ndarray], h: int, w: int, separate: bool) -> np.ndarray:
    if separate:
        return np.stack(masks) if masks else np.zeros((0, h, w), dtype=bool)
    out = np.zeros((h, w), dtype=bool)
    for m in masks:
        out |= m
    return out


def masks_from_regions(
    regions: Sequence[object],
    size: Sequence[int],
    *,
    radius: float | None = None,
    separate: bool = False,
) -> np.ndarray:
    """Rasterise flaw disks into a mask for an image of ``size`` = (H, W).

    A region is ``(x, y)``, ``{"center": [x, y], "radius": r}``, ``{"x": .., "y": ..}``, an object with
    ``center``/``radius`` (or ``x``/``y``) attributes (``rlkit.data.Region``), or a flaw region with
    ``disks`` (``rlkit.data.FlawRegion`` or its dict; its mask is the union of its disks). Its radius,
    else ``radius``, else H/20 (the papers'
    annotation rule) is used. Centres may lie outside the image (the visible part is drawn).
    """
    h, w = _check_size(size)
    if isinstance(regions, (str, bytes)) or not isinstance(regions, Sequence):
        raise MaskError(f"regions must be a sequence of regions, got {type(regions).__name__}")
    default_r = ANNOTATION_RADIUS_FRACTION * h if radius is None else _finite(radius, "radius")
    if default_r <= 0:
        raise MaskError(f"radius must be > 0, got {default_r}")
    masks = []
    for i, region in enumerate(regions):
        disks = region.get("disks") if isinstance(region, Mapping) else getattr(region, "disks", None)
        if (
            disks is not None
        ):  # an EditFHF flaw region: a box with >= 1 disk; its mask is the union of its disks
            rr = region.get("radius") if isinstance(region, Mapping) else getattr(region, "radius", None)
            parts = [_region_center_radius({"center": p, "radius": rr}, i) for p in disks]
            m = np.zeros((h, w), dtype=bool)
            for cx, cy, r in parts:
                m |= _disk(h, w, cx, cy, default_r if r is None else r)
            masks.append(m)
            continue
        cx, cy, r = _region_center_radius(region, i)
        masks.append(_disk(h, w, cx, cy, default_r if r is None else r))
    return _stack(masks, h, w, separate)


def masks_from_boxes(
    boxes: Sequence[Sequence[float]],
    size: Sequence[int],
    *,
    normalized: bool = False,
    dilation: int = 0,
    separate: bool = False,
) -> np.ndarray:
    """Fill boxes ``[x1, y1, x2, y2]`` (pixels, x2/y2 exclusive; or fractions of W/H with ``normalized``).

    Pixel (row i, col j) is inside when x1 <= j + 0.5 < x2 and y1 <= i + 0.5 < y2 (its centre is in the box),
    so integer boxes cover exactly rows y1..y2-1 and columns x1..x2-1. Boxes are clipped to the image.
    """
    h, w = _check_size(size)
    if isinstance(boxes, (str, bytes)) or not isinstance(boxes, Sequence | np.ndarray):
        raise MaskError(f"boxes must be a sequence of [x1, y1, x2, y2], got {type(boxes).__name__}")
    ys = np.arange(h, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float64)[None, :] + 0.5
    masks = []
    for i, box in enumerate(boxes):
        try:
            x1, y1, x2, y2 = (_finite(v, f"box {i} coordinate") for v in box)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, MaskError):
                raise
            raise MaskError(f"box {i} must be [x1, y1, x2, y2], got {box!r}") from exc
        if normalized:
            if not all(0.0 <= v <= 1.0 for v in (x1, y1, x2, y2)):
                raise MaskError(f"box {i}: normalized coordinates must be in [0, 1], got {list(box)}")
            x1, x2, y1, y2 = x1 * w, x2 * w, y1 * h, y2 * h
        if x2 <= x1 or y2 <= y1:
            raise MaskError(f"box {i}: need x1 < x2 and y1 < y2, got {list(box)}")
        m = (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
        masks.append(dilate_mask(m, dilation) if dilation else m)
    return _stack(masks, h, w, separate)
