"""Region agreement for perception outputs: IoU of regions, or saliency metrics, mapped to [0, 1].

The prediction is either a map in a dataset column (``prediction_column``, e.g. a perception agent's
saliency map, HxW) or boxes written in the completion: ``<box>[x1, y1, x2, y2]</box>`` tags (JarvisArt /
Qwen-VL style) or ``bbox`` fields of a parsed diagnosis. The reference column holds an HxW mask or
saliency map, or a list of boxes (then the mask size comes from the source image).

Rewards: ``iou`` = |P & R| / |P | R| of the binarised maps (``threshold``), both empty -> 1;
saliency metrics from ``rlkit.metrics`` (MIT benchmark definitions; fixations = reference > threshold):
``auc_judd`` as is, ``sim`` as is, ``cc`` -> max(0, cc), ``nss`` -> max(0, nss) / (1 + max(0, nss)),
``kld`` -> exp(-kld). Box coordinates are pixels, or fractions of the image when all are <= 1.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from rlkit import metrics
from rlkit.rewards.batch import SOURCE_IMAGE_COLUMNS, RewardBatch
from rlkit.rewards.protocol import Reward, RewardResult

__all__ = ["RegionAgreementReward", "REGION_METRICS", "boxes_from_text", "boxes_to_mask"]

REGION_METRICS = ("iou", "auc_judd", "nss", "cc", "sim", "kld")
_BOX_RE = re.compile(r"<box>\s*(\[[^\]]*\])\s*</box>", re.IGNORECASE)


def boxes_from_text(text: str) -> list[list[float]]:
    """All ``<box>[x1, y1, x2, y2]</box>`` boxes in ``text`` (JSON-read; malformed boxes are skipped)."""
    out = []
    for m in _BOX_RE.finditer(text or ""):
        try:
            v = json.loads(m.group(1))
        except ValueError:
            continue
        if isinstance(v, list) and len(v) == 4 and all(isinstance(x, (int, float)) for x in v):
            out.append([float(x) for x in v])
    return out


def boxes_to_mask(boxes: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Union of boxes as a boolean HxW mask (pixel or fractional coordinates, clipped to the image)."""
    mask = np.zeros((height, width), dtype=bool)
    boxes = [list(map(float, b)) for b in boxes]
    frac = bool(boxes) and all(0.0 <= v <= 1.0 for b in boxes for v in b)
    for b in boxes:
        if len(b) != 4 or not all(math.isfinite(v) for v in b):
            raise ValueError(f"box must be 4 finite numbers [x1, y1, x2, y2], got {b}")
        x1, y1, x2, y2 = b
        if frac:
            x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
        x1, x2 = sorted((x1, x2))
        y1, y2 = sorted((y1, y2))
        c0, c1 = int(max(0, math.floor(x1))), int(min(width, math.ceil(x2)))
        r0, r1 = int(max(0, math.floor(y1))), int(min(height, math.ceil(y2)))
        if c1 > c0 and r1 > r0:
            mask[r0:r1, c0:c1] = True
    return mask


def _as_map(value: np.ndarray | torch.Tensor | Image.Image | Sequence[Sequence[float]], where: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if hasattr(value, "convert") and hasattr(value, "size"):  # PIL
        value = np.asarray(value.convert("L"), dtype=np.float64) / 255.0
    arr = np.asarray(value, dtype=np.float64)
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ValueError(f"{where}: expected an HxW map, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: map contains NaN or inf")
    return arr


def _is_boxes(value: object) -> bool:
    if isinstance(value, (list, tuple)) and (not value or all(
            isinstance(b, (list, tuple)) and len(b) == 4 and all(isinstance(x, (int, float)) for x in b)
            for b in value)):
        return not value or not isinstance(value[0][0], (list, tuple))
    return False


class RegionAgreementReward(Reward):
    """Agreement of predicted regions with reference regions (see module doc for inputs and mapping)."""

    def __init__(self, metric: str = "iou", *, reference_column: str = "reference_mask",
                 prediction_column: str | None = None, threshold: float = 0.5, name: str | None = None) -> None:
        if metric not in REGION_METRICS:
            raise ValueError(f"RegionAgreementReward: metric={metric!r}; expected one of {REGION_METRICS}")
        self.metric, self.reference_column, self.prediction_column = metric, reference_column, prediction_column
        self.threshold = float(threshold)
        self.name = name or f"region_{metric}"
        self.required_columns = (reference_column,) + ((prediction_column,) if prediction_column else ())

    def _pred_boxes(self, batch: RewardBatch, i: int) -> list[list[float]]:
        boxes = boxes_from_text(batch.completions[i])
        if not boxes:
            d = batch.diagnoses[i]
            boxes = [list(x.bbox) for x in d.items if x.bbox is not None] if d.ok else []
        return boxes

    def _size(self, batch: RewardBatch, i: int) -> tuple[int, int] | None:
        name = batch.find_column(SOURCE_IMAGE_COLUMNS)
        if name is None:
            return None
        img = batch.source_images[i]
        if img is None:
            return None
        if hasattr(img, "size") and not hasattr(img, "shape"):  # PIL (w, h)
            return img.size[1], img.size[0]
        shape = tuple(img.shape)
        return (shape[-2], shape[-1]) if len(shape) == 3 and shape[0] in (1, 3) else (shape[0], shape[1])

    def _score(self, pred: np.ndarray, ref: np.ndarray) -> float | None:
        if self.metric == "iou":
            p, r = pred > self.threshold, ref > self.threshold
            union = np.logical_or(p, r).sum()
            return 1.0 if union == 0 else float(np.logical_and(p, r).sum() / union)
        fix = (ref > self.threshold).astype(np.float64)
        if self.metric in ("auc_judd", "nss"):
            if fix.sum() == 0:
                return None
            v = float(np.asarray(getattr(metrics, self.metric)(pred[None], fix[None])).reshape(-1)[0])
        else:
            v = float(np.asarray(getattr(metrics, self.metric)(pred[None], ref[None])).reshape(-1)[0])
        if not math.isfinite(v):
            return None
        if self.metric == "cc":
            return max(0.0, v)
        if self.metric == "nss":
            v = max(0.0, v)
            return v / (1.0 + v)
        if self.metric == "kld":
            return math.exp(-max(0.0, v))
        return min(1.0, max(0.0, v))

    def compute(self, batch: RewardBatch) -> RewardResult:
        n = len(batch)
        refs = batch.column(self.reference_column)
        preds = batch.column(self.prediction_column) if self.prediction_column else [None] * n
        scores: list[float | None] = [None] * n
        reasons: list[str | None] = [None] * n
        for i in range(n):
            ref = refs[i]
            if ref is None:
                reasons[i] = f"no reference in column {self.reference_column!r}"
                continue
            where = f"{self.name}: column {self.reference_column!r}, sample {i}"
            if _is_boxes(ref):
                size = self._size(batch, i)
                if size is None:
                    raise ValueError(f"{where}: reference is a box list, so the batch needs a source image to "
                                     "know the mask size")
                ref_map = boxes_to_mask(ref, *size).astype(np.float64)
            else:
                ref_map = _as_map(ref, where)
            if self.prediction_column:
                if preds[i] is None:
                    reasons[i] = f"no prediction in column {self.prediction_column!r}"
                    continue
                pv = preds[i]
                pred_map = (boxes_to_mask(pv, *ref_map.shape).astype(np.float64) if _is_boxes(pv)
                            else _as_map(pv, f"{self.name}: column {self.prediction_column!r}, sample {i}"))
            else:
                pred_map = boxes_to_mask(self._pred_boxes(batch, i), *ref_map.shape).astype(np.float64)
            if pred_map.shape != ref_map.shape:
                raise ValueError(f"{where}: prediction is {pred_map.shape} but reference is {ref_map.shape}")
            s = self._score(pred_map, ref_map)
            scores[i] = s
            if s is None:
                reasons[i] = f"{self.metric} undefined for this sample (empty reference or constant prediction)"
        return RewardResult(scores, reasons=reasons)
