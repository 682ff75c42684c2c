"""Image similarity of the edited image to a target (expert) edit, mapped to [0, 1].

The edited image is the ``output_image`` column when the dataset has one, otherwise the completion's
parsed edit program executed on the source image with ``rlkit.ops.apply_program`` (batched per image
size; RetouchIQ's ``Execute(I_0, e)``). Metrics come from ``rlkit.metrics`` and map to rewards as:

=============  =======================================  ==========================================
metric         raw value                                reward
=============  =======================================  ==========================================
``l1``         mean absolute error, [0, 1]              ``1 - l1``
``l2``         mean squared error, [0, 1]               ``1 - l2``
``psnr``       dB                                       ``min(psnr, psnr_max) / psnr_max`` (50 dB)
``ssim``       [-1, 1]                                  ``max(0, ssim)``
``delta_e76``  mean CIE76 colour difference             ``exp(-0.015 * ΔE)`` (JarvisArt's term)
``delta_e2000`` mean CIEDE2000 colour difference         ``exp(-0.015 * ΔE)``
=============  =======================================  ==========================================
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rlkit.rewards.base import (
    OUTPUT_IMAGE_COLUMNS,
    SOURCE_IMAGE_COLUMNS,
    TARGET_IMAGE_COLUMNS,
    Reward,
    RewardBatch,
    RewardResult,
)
from rlkit.rewards.images import as_tensors

if TYPE_CHECKING:
    import torch

__all__ = ["ImageSimilarityReward", "IMAGE_METRICS", "similarity_from_metric"]

IMAGE_METRICS = ("l1", "l2", "psnr", "ssim", "delta_e76", "delta_e2000")


def similarity_from_metric(metric: str, value: float, *, psnr_max: float = 50.0, delta_e_scale: float = 0.015) -> float:
    """Map one raw metric value to a [0, 1] reward (table in the module doc)."""
    if metric in ("l1", "l2"):
        return min(1.0, max(0.0, 1.0 - value))
    if metric == "psnr":
        return 1.0 if math.isinf(value) and value > 0 else min(1.0, max(0.0, value / psnr_max))
    if metric == "ssim":
        return min(1.0, max(0.0, value))
    if metric in ("delta_e76", "delta_e2000"):
        return math.exp(-delta_e_scale * max(0.0, value))
    raise ValueError(f"unknown image metric {metric!r}; expected one of {IMAGE_METRICS}")


class ImageSimilarityReward(Reward):
    """Similarity of the edited image to the ``target_image`` (see module doc); programs that do not parse
    score 0, samples without a target None. Images of different sizes raise a ValueError naming the sample."""

    def __init__(self, metric: str = "l1", *, fmt: str | None = None, psnr_max: float = 50.0,
                 delta_e_scale: float = 0.015, name: str | None = None) -> None:
        if metric not in IMAGE_METRICS:
            raise ValueError(f"ImageSimilarityReward: metric={metric!r}; expected one of {IMAGE_METRICS}")
        if psnr_max <= 0 or delta_e_scale <= 0:
            raise ValueError("ImageSimilarityReward: psnr_max and delta_e_scale must be > 0")
        self.metric, self.fmt, self.psnr_max, self.delta_e_scale = metric, fmt, psnr_max, delta_e_scale
        self.name = name or f"image_{metric}"
        self.required_columns = ("|".join(TARGET_IMAGE_COLUMNS), "|".join(SOURCE_IMAGE_COLUMNS + ("output_image",)))

    def _metric(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from rlkit import metrics

        return getattr(metrics, self.metric)(a, b)

    def compute(self, batch: RewardBatch) -> RewardResult:
        import torch

        n = len(batch)
        targets = batch.target_images
        outputs = batch.output_images(self.fmt)
        scores: list[float | None] = [None] * n
        reasons: list[str | None] = [None] * n
        groups: dict[tuple[int, int], list[tuple[int, torch.Tensor, torch.Tensor]]] = {}
        rendered = batch.find_column(OUTPUT_IMAGE_COLUMNS) is None  # engine output: already checked tensors
        outs = as_tensors([o if t is not None else None for o, t in zip(outputs, targets)], what="edited image",
                          check=not rendered)
        tgts = as_tensors([t if o is not None else None for o, t in zip(outputs, targets)], what="target image")
        for i in range(n):
            if targets[i] is None:
                reasons[i] = "no target image"
                continue
            if outputs[i] is None:
                scores[i], reasons[i] = 0.0, "no edited image (program did not parse or no source image)"
                continue
            o, t = outs[i], tgts[i]
            if o.shape != t.shape:
                raise ValueError(f"{self.name}: sample {i}: edited image is {tuple(o.shape[1:])} (HxW) but the "
                                 f"target is {tuple(t.shape[1:])}; resize targets to the source size")
            groups.setdefault((o.shape[1], o.shape[2]), []).append((i, o, t))
        for items in groups.values():
            a = torch.stack([o for _, o, _ in items]).clamp(0, 1)
            b = torch.stack([t for _, _, t in items])
            with torch.no_grad():
                vals = self._metric(a, b)
            for (i, _, _), v in zip(items, vals.tolist()):
                scores[i] = similarity_from_metric(self.metric, float(v), psnr_max=self.psnr_max,
                                                   delta_e_scale=self.delta_e_scale)
        return RewardResult(scores, reasons=reasons)
