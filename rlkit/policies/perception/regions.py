"""From a predicted saliency map to regions: masks for the action agent, boxes for the reasoning agent.

Both papers' perception agents end the same way. Agentic Retoucher binarises the map and dilates it
into mask candidates (Sec. 4.2); EditRefiner thresholds it at ``tau``, cleans it with a morphological
opening and closing and hands the connected components' boxes (minimum area 50 px in its public code)
to the reasoning agent and the mask to the action agent (Sec. 4.2). :func:`regions_from_map` does all
of it in one documented order:

1. ``binary = S >= tau`` (``S`` in [0, 1]; ``normalize=True`` min-max scales a raw map first);
2. opening by a disk of radius ``opening`` (removes specks thinner than the disk), then closing by a
   disk of radius ``closing`` (fills holes and gaps narrower than the disk); outside the image counts as
   background for both, so a region touching the border keeps its border pixels;
3. 8-connected components; those with fewer than ``min_area`` pixels are dropped;
4. each component's box ``(x1, y1, x2, y2)`` (pixels, x2/y2 exclusive, the format
   ``rlkit.envs.masks_from_boxes`` and ``RefineEnv`` take) is the tight box of the cleaned component;
   its mask is the component dilated by a disk of radius ``dilation`` (default ``round(H / 40)``, half the
   annotation disk radius H/20), the format ``RefineEnv``'s ``mask`` argument takes; where two dilated
   components would overlap, a pixel goes to the nearer one.

Disks are closed: offset (dy, dx) is in the footprint when dy^2 + dx^2 <= r^2 (``skimage.morphology.disk``).
Everything runs on numpy with ``scipy.ndimage`` (C loops): binary opening/closing for the small radii, one
Euclidean distance transform for the dilation of all components; a batch is a loop over maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    import torch

__all__ = [
    "MaskError",
    "MapRegions",
    "default_dilation",
    "disk_footprint",
    "dilate_mask",
    "open_close",
    "regions_from_map",
    "regions_from_maps",
    "boxes_from_mask",
    "masks_from_saliency",
    "saliency_as_map",
]

_EIGHT = np.ones((3, 3), dtype=bool)


class MaskError(ValueError):
    """A mask input (region, box, saliency map, size, morphology setting) is invalid; the message says which."""


@dataclass(frozen=True)
class MapRegions:
    """The regions found in one map: a label image of the dilated regions, tight boxes, areas and peak scores.

    Components are ordered largest first (ties by box). ``labels`` is (H, W) int32: 0 outside every region,
    k for region k-1 (its cleaned component dilated by the radius; where the dilations of two components would
    overlap, a pixel belongs to the nearer one, so the regions partition their union). ``boxes`` are
    ``(x1, y1, x2, y2)`` of the cleaned components with x2/y2 exclusive; ``areas`` count their pixels (before
    dilation); ``scores`` are the map's maximum inside each component. ``masks`` gives (K, H, W) bool masks.
    """

    labels: np.ndarray
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    areas: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def masks(self) -> np.ndarray:
        """One (H, W) bool mask per region, (K, H, W) (computed on access from ``labels``)."""
        if not self.boxes:
            return np.zeros((0, *self.labels.shape), dtype=bool)
        return self.labels[None] == np.arange(1, len(self.boxes) + 1, dtype=np.int32)[:, None, None]

    @property
    def union(self) -> np.ndarray:
        """All regions together, (H, W) bool."""
        return self.labels > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able boxes, areas and scores (masks left out: derive them again from the map)."""
        return {"boxes": [list(b) for b in self.boxes], "areas": list(self.areas),
                "scores": [round(float(s), 6) for s in self.scores]}


def default_dilation(height: int) -> int:
    """Default dilation radius in pixels for a saliency mask: round(height / 40), at least 1."""
    return max(1, round(height / 40))


def disk_footprint(radius: int) -> np.ndarray:
    """Closed disk footprint of ``radius`` pixels: (2r+1, 2r+1) bool, dy^2 + dx^2 <= r^2."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius


def _radius(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise MaskError(f"{what} must be a whole number of pixels, got {value!r}")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise MaskError(f"{what} must be a whole number of pixels, got {value!r}")
    if int(value) < 0:
        raise MaskError(f"{what} must be >= 0, got {value}")
    return int(value)


def dilate_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Morphological dilation of a bool (H, W) mask by a closed disk of ``radius`` pixels (0: unchanged)."""
    radius = _radius(radius, "dilation radius")
    mask = np.asarray(mask, dtype=bool)
    if radius == 0 or not mask.any():
        return mask.copy()
    return ndimage.binary_dilation(mask, structure=disk_footprint(radius))


def open_close(binary: np.ndarray, opening: int = 0, closing: int = 0) -> np.ndarray:
    """Opening by a disk of radius ``opening`` then closing by one of radius ``closing``; outside = background.

    scipy erodes with ``border_value=0`` inside ``binary_closing``, which would strip the border pixels of a
    region touching the edge; the map is padded by the radius first so the closing is the textbook one. Both run
    on the foreground's box grown by the radii (nothing farther out can change).
    """
    opening = _radius(opening, "opening radius")
    closing = _radius(closing, "closing radius")
    b = np.asarray(binary, dtype=bool)
    if not (opening or closing) or not b.any():
        return b.copy()
    rows, cols = np.flatnonzero(b.any(1)), np.flatnonzero(b.any(0))
    m = opening + closing + 1
    y0, y1 = max(0, rows[0] - m), min(b.shape[0], rows[-1] + 1 + m)
    x0, x1 = max(0, cols[0] - m), min(b.shape[1], cols[-1] + 1 + m)
    win = b[y0:y1, x0:x1]
    # a window edge that is not the image edge has >= m background pixels beyond the foreground, as the full
    # map has, so both see the same neighbourhoods; at an image edge both treat the outside as background
    if opening and win.any():
        win = ndimage.binary_opening(win, structure=disk_footprint(opening))
    if closing and win.any():
        padded = ndimage.binary_closing(np.pad(win, closing), structure=disk_footprint(closing))
        win = padded[closing:-closing, closing:-closing]
    out = np.zeros_like(b)
    out[y0:y1, x0:x1] = win
    return out


def saliency_as_map(saliency: np.ndarray | torch.Tensor, *, normalize: bool = False,
                    where: str = "saliency") -> np.ndarray:
    """A map as float64 (H, W): torch tensors and (1, H, W) accepted, uint8 scaled by 1/255; checked finite and,
    unless ``normalize`` (min-max scaling), within [0, 1]."""
    if hasattr(saliency, "detach"):  # torch tensor
        saliency = saliency.detach().cpu().float().numpy()
    s = np.asarray(saliency)
    if s.ndim == 3 and s.shape[0] == 1:
        s = s[0]
    if s.ndim != 2:
        raise MaskError(f"{where} must be a 2-D (H, W) map, got shape {s.shape}")
    if s.size == 0:
        raise MaskError(f"{where} map is empty")
    if s.dtype == np.uint8:
        s = s.astype(np.float64) / 255.0
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
        raise MaskError(f"{where} must be numeric, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if not np.isfinite(s).all():
        bad = np.argwhere(~np.isfinite(s))[0]
        raise MaskError(f"{where} contains NaN or infinite values (first at row {bad[0]}, column {bad[1]})")
    if normalize:
        lo, hi = float(s.min()), float(s.max())
        return (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    if s.min() < 0.0 or s.max() > 1.0:
        raise MaskError(f"{where} values must be in [0, 1] (got min {s.min():.4g}, max {s.max():.4g}); "
                        "pass normalize=True to min-max scale a raw map")
    return s


def _components(binary: np.ndarray, min_area: int) -> tuple[np.ndarray, list[tuple[int, tuple, int]]]:
    """Labels and [(label, slices, area)] of 8-connected components with >= min_area pixels, largest first."""
    labels, n = ndimage.label(binary, structure=_EIGHT)
    if n == 0:
        return labels, []
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    comps = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is not None and int(areas[k]) >= min_area:
            comps.append((k, sl, int(areas[k])))
    comps.sort(key=lambda t: (-t[2], (t[1][1].start, t[1][0].start, t[1][1].stop, t[1][0].stop)))
    return labels, comps


def _grown_labels(labels: np.ndarray, comps: list[tuple[int, tuple, int]], radius: int) -> np.ndarray:
    """Kept components relabelled 1..K (in ``comps`` order) and dilated by a closed disk of ``radius``: one
    Euclidean distance transform gives every pixel's distance to, and index of, its nearest component pixel
    (distance <= r is exactly dilation by the disk dy^2 + dx^2 <= r^2). It runs on the components' joint box
    grown by r: no pixel farther out can be within r of them."""
    lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    for i, (k, _, _) in enumerate(comps):
        lut[k] = i + 1
    kept = lut[labels]
    if radius == 0 or not comps:
        return kept
    h, w = kept.shape
    y0 = max(0, min(sl[0].start for _, sl, _ in comps) - radius)
    y1 = min(h, max(sl[0].stop for _, sl, _ in comps) + radius)
    x0 = max(0, min(sl[1].start for _, sl, _ in comps) - radius)
    x1 = min(w, max(sl[1].stop for _, sl, _ in comps) + radius)
    win = kept[y0:y1, x0:x1]
    dist, (iy, ix) = ndimage.distance_transform_edt(win == 0, return_indices=True)
    near = dist <= radius
    grown = np.zeros_like(win)
    grown[near] = win[iy[near], ix[near]]
    out = np.zeros_like(kept)
    out[y0:y1, x0:x1] = grown
    return out


def _check_tau(tau: object) -> float:
    try:
        t = float(tau)
    except (TypeError, ValueError) as exc:
        raise MaskError(f"threshold tau must be a number, got {tau!r}") from exc
    if not 0.0 <= t <= 1.0:
        raise MaskError(f"threshold tau must be in [0, 1], got {tau!r}")
    return t


def regions_from_map(
    saliency: np.ndarray | torch.Tensor,
    *,
    tau: float = 0.5,
    opening: int = 0,
    closing: int = 0,
    dilation: int | None = None,
    min_area: int = 1,
    normalize: bool = False,
) -> MapRegions:
    """Threshold, clean, split and dilate one (H, W) map into regions (see the module docstring for the order).

    Defaults reproduce Agentic Retoucher's "binarise and dilate" (tau 0.5, no opening/closing, dilation H/40);
    EditRefiner's public inference is ``opening=closing=r`` (a small disk), ``min_area=50``, ``dilation=0``.
    """
    s = saliency_as_map(saliency, normalize=normalize)
    tau = _check_tau(tau)
    min_area = _radius(min_area, "min_area")
    radius = default_dilation(s.shape[0]) if dilation is None else _radius(dilation, "dilation radius")
    binary = open_close(s >= tau, opening, closing)
    labels, comps = _components(binary, max(1, min_area))
    boxes = [(sl[1].start, sl[0].start, sl[1].stop, sl[0].stop) for _, sl, _ in comps]
    scores = [float(s[sl][labels[sl] == k].max()) for k, sl, _ in comps]
    return MapRegions(_grown_labels(labels, comps, radius), boxes, [a for _, _, a in comps], scores)


def regions_from_maps(maps: np.ndarray | torch.Tensor | Sequence[np.ndarray],
                      **kwargs: float | bool | None) -> list[MapRegions]:
    """:func:`regions_from_map` for each map of an (N, H, W) batch (array, tensor or list of (H, W) maps)."""
    if hasattr(maps, "detach"):
        maps = maps.detach().cpu().float().numpy()
    if isinstance(maps, np.ndarray):
        if maps.ndim == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        if maps.ndim != 3:
            raise MaskError(f"maps must be an (N, H, W) batch, got shape {maps.shape}")
    out = []
    for i, m in enumerate(maps):
        try:
            out.append(regions_from_map(m, **kwargs))
        except MaskError as exc:
            raise MaskError(f"map {i}: {exc}") from None
    return out


def boxes_from_mask(mask: np.ndarray, *, min_area: int = 1) -> list[tuple[int, int, int, int]]:
    """Bounding box ``(x1, y1, x2, y2)`` (x2/y2 exclusive) of each 8-connected component, largest first."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise MaskError(f"mask must be 2-D (H, W), got shape {m.shape}")
    _, comps = _components(m, max(1, _radius(min_area, "min_area")))
    return [(sl[1].start, sl[0].start, sl[1].stop, sl[0].stop) for _, sl, _ in comps]


def masks_from_saliency(
    saliency: np.ndarray | torch.Tensor,
    *,
    threshold: float = 0.5,
    dilation: int | None = None,
    normalize: bool = False,
    min_area: int = 1,
    separate: bool = False,
) -> np.ndarray:
    """Threshold a saliency map (S >= threshold) and dilate by a disk, as both papers' perception agents do.

    ``saliency`` is an (H, W) array in [0, 1] (torch tensors and (1, H, W) are accepted); with ``normalize``
    it is min-max scaled first. ``dilation`` is the disk radius in pixels (default H/40). Connected components
    smaller than ``min_area`` pixels (before dilation) are dropped; ``separate``: one mask per component
    (largest first), else their union (H, W).
    """
    if not separate:  # the union: one dilation of the kept components instead of one per component
        s = saliency_as_map(saliency, normalize=normalize)
        tau = _check_tau(threshold)
        radius = default_dilation(s.shape[0]) if dilation is None else _radius(dilation, "dilation radius")
        binary = s >= tau
        if _radius(min_area, "min_area") > 1:
            labels, comps = _components(binary, min_area)
            binary = np.isin(labels, [k for k, _, _ in comps]) if comps else np.zeros_like(binary)
        return dilate_mask(binary, radius)
    return regions_from_map(saliency, tau=threshold, dilation=dilation, min_area=min_area,
                            normalize=normalize).masks
