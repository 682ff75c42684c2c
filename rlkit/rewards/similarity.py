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

:class:`ImageImprovementReward` scores the *improvement* over the unedited source instead,
``(d(source, target) - d(edit, target)) / d(source, target)`` for a distance ``d`` (l1, l2, ΔE): 0 for
the identity edit, 1 for the expert edit, negative for an edit that moves away from the target. A
similarity of ``1 - L1`` cannot tell a null edit from a good one (both score ~0.95 on typical photos).
"""

from __future__ import annotations

import math

import torch

from rlkit import metrics
from rlkit.rewards.batch import OUTPUT_IMAGE_COLUMNS, SOURCE_IMAGE_COLUMNS, TARGET_IMAGE_COLUMNS, RewardBatch
from rlkit.rewards.images import as_tensors
from rlkit.rewards.protocol import Reward, RewardResult

__all__ = ["ImageSimilarityReward", "ImageImprovementReward", "IMAGE_METRICS", "DISTANCE_METRICS",
           "similarity_from_metric"]

IMAGE_METRICS = ("l1", "l2", "psnr", "ssim", "delta_e76", "delta_e2000")
#: the metrics that are distances (0 = identical): the ones an improvement over the source is measured in
DISTANCE_METRICS = ("l1", "l2", "delta_e76", "delta_e2000")


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
        return getattr(metrics, self.metric)(a, b)

    def compute(self, batch: RewardBatch) -> RewardResult:
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


class ImageImprovementReward(Reward):
    """Relative improvement of the edit over the unedited source, measured as a distance to the target:
    ``(d(source, target) - d(edit, target)) / d(source, target)``, clipped to ``[-clip, 1]``.

    The identity edit scores 0 and the expert edit 1, so a policy cannot earn reward by doing nothing.
    A program that did not parse leaves the image unedited and scores 0 (its reason says so); a sample
    whose source already equals its target scores None (nothing to improve). ``d`` is one of
    ``DISTANCE_METRICS``.
    """

    def __init__(self, metric: str = "l1", *, fmt: str | None = None, clip: float = 1.0,
                 name: str | None = None) -> None:
        if metric not in DISTANCE_METRICS:
            raise ValueError(f"ImageImprovementReward: metric={metric!r}; expected a distance, one of "
                             f"{DISTANCE_METRICS}")
        if not clip > 0:
            raise ValueError(f"ImageImprovementReward: clip must be > 0, got {clip}")
        self.metric, self.fmt, self.clip = metric, fmt, float(clip)
        self.name = name or f"improvement_{metric}"
        self.required_columns = ("|".join(TARGET_IMAGE_COLUMNS), "|".join(SOURCE_IMAGE_COLUMNS))

    def compute(self, batch: RewardBatch) -> RewardResult:
        n = len(batch)
        sources, targets = batch.source_images, batch.target_images
        outputs = batch.output_images(self.fmt)
        scores: list[float | None] = [None] * n
        reasons: list[str | None] = [None] * n
        srcs = as_tensors([s if t is not None else None for s, t in zip(sources, targets)], what="source image")
        tgts = as_tensors([t if s is not None else None for s, t in zip(sources, targets)], what="target image")
        rendered = batch.find_column(OUTPUT_IMAGE_COLUMNS) is None
        outs = as_tensors([o if s is not None and t is not None else None
                           for o, s, t in zip(outputs, sources, targets)], what="edited image", check=not rendered)
        groups: dict[tuple[int, int], list[int]] = {}
        for i in range(n):
            if srcs[i] is None or tgts[i] is None:
                reasons[i] = "no target image" if targets[i] is None else "no source image"
                continue
            if srcs[i].shape != tgts[i].shape:
                raise ValueError(f"{self.name}: sample {i}: source is {tuple(srcs[i].shape[1:])} (HxW) but the "
                                 f"target is {tuple(tgts[i].shape[1:])}; resize targets to the source size")
            if outs[i] is not None and outs[i].shape != srcs[i].shape:
                raise ValueError(f"{self.name}: sample {i}: edited image is {tuple(outs[i].shape[1:])} (HxW) but "
                                 f"the source is {tuple(srcs[i].shape[1:])}")
            groups.setdefault((srcs[i].shape[1], srcs[i].shape[2]), []).append(i)
        fn = getattr(metrics, self.metric)
        for idx in groups.values():
            src = torch.stack([srcs[i] for i in idx])
            tgt = torch.stack([tgts[i] for i in idx])
            out = torch.stack([outs[i] if outs[i] is not None else srcs[i] for i in idx]).clamp(0, 1)
            with torch.no_grad():
                d_src, d_out = fn(src, tgt).tolist(), fn(out, tgt).tolist()
            for i, ds, do in zip(idx, d_src, d_out):
                if ds <= 1e-12:
                    reasons[i] = "the source already equals the target: nothing to improve"
                    continue
                scores[i] = min(1.0, max(-self.clip, (ds - do) / ds))
                if outs[i] is None:
                    reasons[i] = "no edited image (program did not parse): the unedited source scores 0"
        return RewardResult(scores, reasons=reasons)
