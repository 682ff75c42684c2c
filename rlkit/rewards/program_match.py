"""Edit-parameter rewards (JarvisArt's verifiable rewards): key-set IoU, per-key accuracy, tone curves.

JarvisArt's GRPO sums, with equal weights, a format reward, the IoU of the predicted and the reference
key sets, a per-key accuracy ``1 - |pred - ref| / thr`` (0 beyond ``thr``) with per-key thresholds, a
tone-curve comparison by spline RMSE over 500 samples, and a perceptual term (see
:class:`rlkit.rewards.ImageSimilarityReward` with ``metric="delta_e76"``).

The reference program comes from a dataset column (``target_program`` by default) holding an
``EditProgram``, a dict (``EditProgram.from_dict``: canonical or Lightroom names) or text
(``rlkit.ops.parse_program``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType, SimpleNamespace
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from scipy.interpolate import CubicSpline
from scipy.optimize import linear_sum_assignment

from rlkit.ops import PARAM_SPECS, EditProgram, Mask, as_program
from rlkit.rewards.batch import RewardBatch
from rlkit.rewards.protocol import Reward, RewardResult

__all__ = [
    "JARVISART_THRESHOLDS",
    "threshold_for",
    "key_set",
    "key_set_iou",
    "parameter_accuracy",
    "curve_rmse",
    "reference_programs",
    "KeySetIoUReward",
    "ParameterAccuracyReward",
    "ToneCurveReward",
    "local_adjustment_accuracy",
    "LocalAdjustmentReward",
]

DEFAULT_PROGRAM_COLUMN = "target_program"


def _jarvis_thresholds() -> Mapping[str, float]:
    t = {"exposure": 1.0, "contrast": 70.0, "highlights": 55.0, "shadows": 55.0, "whites": 50.0, "blacks": 50.0,
         # JarvisArt: 1500 K on Lightroom's absolute Temperature. Our `temperature` is the incremental scale
         # (rlkit.ops: 150 mired per 100); 5500 K -> 7000 K is 39 mired = 26 units, so 25 here.
         "temperature": 25.0, "tint": 25.0, "texture": 40.0, "clarity": 30.0, "dehaze": 20.0,
         "vibrance": 30.0, "saturation": 30.0}
    for band in ("red", "orange", "yellow", "green", "aqua", "blue", "purple", "magenta"):
        t[f"hsl_hue_{band}"] = 20.0
        t[f"hsl_saturation_{band}"] = 20.0
        t[f"hsl_luminance_{band}"] = 30.0
    return MappingProxyType(t)


#: JarvisArt's per-key thresholds, in rlkit's canonical parameter names and units
JARVISART_THRESHOLDS: Mapping[str, float] = _jarvis_thresholds()


def threshold_for(name: str, thresholds: Mapping[str, float] = JARVISART_THRESHOLDS) -> float:
    """Threshold of a key; keys JarvisArt gives none for use 20% of the parameter's range."""
    if name in thresholds:
        return float(thresholds[name])
    if name not in PARAM_SPECS:
        raise KeyError(f"no threshold for unknown parameter {name!r}")
    spec = PARAM_SPECS[name]
    return 0.2 * (spec.hi - spec.lo)


class SliderValues(Protocol):
    """What the per-key comparisons read: slider values by canonical name (an ``EditProgram`` has them)."""

    params: Mapping[str, float]


def key_set(program: SliderValues) -> set[str]:
    """Keys a program sets: its non-default sliders plus ``tone_curve_<channel>`` per non-identity curve."""
    return set(program.params) | {f"tone_curve_{ch}" for ch in getattr(program, "curves", {})}


def key_set_iou(pred: SliderValues, ref: SliderValues) -> float:
    """``|K_pred & K_ref| / |K_pred | K_ref|``; two identity programs agree (1.0)."""
    a, b = key_set(pred), key_set(ref)
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def parameter_accuracy(pred: SliderValues, ref: SliderValues, *, thresholds: Mapping[str, float] = JARVISART_THRESHOLDS,
                       keys: str = "union") -> tuple[float | None, dict[str, float]]:
    """Mean over keys of ``max(0, 1 - |pred_k - ref_k| / thr_k)`` (a key absent from a program takes its default).

    ``keys``: ``"union"`` (keys set in either program; wrong extra keys cost), ``"reference"`` (keys of the
    reference only, as a recall). Returns (mean or None when there are no keys, per-key accuracies).
    """
    if keys == "union":
        names = sorted(set(pred.params) | set(ref.params))
    elif keys == "reference":
        names = sorted(ref.params)
    else:
        raise ValueError(f"parameter_accuracy: keys={keys!r}; expected 'union' or 'reference'")
    per: dict[str, float] = {}
    for k in names:
        d = PARAM_SPECS[k].default
        diff = abs(pred.params.get(k, d) - ref.params.get(k, d))
        per[k] = max(0.0, 1.0 - diff / threshold_for(k, thresholds))
    return (sum(per.values()) / len(per) if per else None), per


def _curve_fn(points: Sequence[tuple[float, float]]) -> Callable[[np.ndarray], np.ndarray]:
    pts = sorted((float(x), float(y)) for x, y in points)
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    if len(pts) >= 3:
        spline = CubicSpline(xs, ys, bc_type="natural")
        return lambda x: np.clip(np.where(x < xs[0], ys[0], np.where(x > xs[-1], ys[-1], spline(x))), 0, 255)
    return lambda x: np.interp(x, xs, ys)


_IDENTITY = ((0.0, 0.0), (255.0, 255.0))


def curve_rmse(a: Sequence[tuple[float, float]] | None, b: Sequence[tuple[float, float]] | None, *,
               samples: int = 500) -> float:
    """RMSE (0-255 units) between two point curves, each a natural cubic spline through its points
    (linear for two points, flat beyond the end points), sampled at ``samples`` points over [0, 255]."""
    x = np.linspace(0.0, 255.0, samples)
    fa, fb = _curve_fn(a or _IDENTITY), _curve_fn(b or _IDENTITY)
    return float(np.sqrt(np.mean((fa(x) - fb(x)) ** 2)))


def reference_programs(batch: RewardBatch, column: str) -> list[EditProgram | None]:
    """Reference ``EditProgram`` per sample from ``column`` (parsed once per batch; None stays None)."""
    return batch.cached(("reference_programs", column), lambda: [
        None if v is None else as_program(v, where=f"column {column!r}, sample {i}: reference program")
        for i, v in enumerate(batch.column(column))])


class _ProgramReward(Reward):
    def __init__(self, reference_column: str, fmt: str, name: str) -> None:
        self.reference_column, self.fmt, self.name = reference_column, fmt, name
        self.required_columns = (reference_column,)

    def _each(self, batch: RewardBatch,
              fn: Callable[[EditProgram, EditProgram], tuple[float | None, str | None]]) -> RewardResult:
        refs = reference_programs(batch, self.reference_column)
        parsed = batch.parsed_programs(self.fmt)
        scores: list[float | None] = []
        reasons: list[str | None] = []
        for p, r in zip(parsed, refs):
            if r is None:
                scores.append(None)
                reasons.append(f"no reference program in column {self.reference_column!r}")
            elif not p.ok:
                scores.append(0.0)
                reasons.append("program did not parse")
            else:
                s, why = fn(p.program, r)
                scores.append(s)
                reasons.append(why)
        return RewardResult(scores, reasons=reasons)


class KeySetIoUReward(_ProgramReward):
    """JarvisArt's key-set IoU between the predicted and the reference program (:func:`key_set_iou`);
    unparseable programs score 0, samples without a reference None."""

    def __init__(self, reference_column: str = DEFAULT_PROGRAM_COLUMN, *, fmt: str = "auto",
                 name: str = "key_iou") -> None:
        super().__init__(reference_column, fmt, name)

    def compute(self, batch: RewardBatch) -> RewardResult:
        return self._each(batch, lambda p, r: (key_set_iou(p, r), None))


class ParameterAccuracyReward(_ProgramReward):
    """JarvisArt's per-key accuracy ``max(0, 1 - |Δ| / thr)`` averaged over keys (:func:`parameter_accuracy`,
    thresholds :data:`JARVISART_THRESHOLDS`); two identity programs score 1, unparseable programs 0."""

    def __init__(self, reference_column: str = DEFAULT_PROGRAM_COLUMN, *, fmt: str = "auto",
                 thresholds: Mapping[str, float] = JARVISART_THRESHOLDS, keys: str = "union",
                 name: str = "param_accuracy") -> None:
        super().__init__(reference_column, fmt, name)
        for k, v in thresholds.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"ParameterAccuracyReward: threshold for {k!r} must be > 0, got {v!r}")
        if keys not in ("union", "reference"):
            raise ValueError(f"ParameterAccuracyReward: keys={keys!r}; expected 'union' or 'reference'")
        self.thresholds, self.keys = thresholds, keys

    def compute(self, batch: RewardBatch) -> RewardResult:
        def fn(p: EditProgram, r: EditProgram) -> tuple[float, None]:
            acc, _ = parameter_accuracy(p, r, thresholds=self.thresholds, keys=self.keys)
            return (1.0 if acc is None else acc), None

        return self._each(batch, fn)


class ToneCurveReward(_ProgramReward):
    """Tone-curve agreement: per channel present in either program, ``max(0, 1 - RMSE / threshold)`` of the
    splines sampled at 500 points (:func:`curve_rmse`; a missing curve is the identity), averaged over
    channels. ``threshold`` (0-255 units) defaults to 25.5 (10% of the range). None when neither program
    has a curve (nothing to compare)."""

    def __init__(self, reference_column: str = DEFAULT_PROGRAM_COLUMN, *, fmt: str = "auto",
                 threshold: float = 25.5, samples: int = 500, name: str = "tone_curve") -> None:
        super().__init__(reference_column, fmt, name)
        if not threshold > 0 or samples < 2:
            raise ValueError(f"ToneCurveReward: need threshold > 0 and samples >= 2, got {threshold}, {samples}")
        self.threshold, self.samples = float(threshold), int(samples)

    def compute(self, batch: RewardBatch) -> RewardResult:
        def fn(p: EditProgram, r: EditProgram) -> tuple[float | None, str | None]:
            channels = sorted(set(p.curves) | set(r.curves))
            if not channels:
                return None, "neither program has a tone curve"
            accs = [max(0.0, 1.0 - curve_rmse(p.curves.get(ch), r.curves.get(ch), samples=self.samples)
                        / self.threshold) for ch in channels]
            return sum(accs) / len(accs), None

        return self._each(batch, fn)


def _mask_map(mask: Mask, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return mask.render(image)[0, 0].to(torch.float64)


def local_adjustment_accuracy(pred: EditProgram, ref: EditProgram, *, size: int = 64,
                              image: torch.Tensor | None = None,
                              thresholds: Mapping[str, float] = JARVISART_THRESHOLDS) -> float | None:
    """JarvisArt-style local-adjustment agreement: masks paired by the Hungarian algorithm.

    Each mask is rendered at ``size`` x ``size`` (on ``image``, a (3,H,W) linear-light tensor, for masks
    that depend on pixels; mid grey otherwise). A pair scores soft IoU (sum of minima / sum of maxima of
    the two weight maps) times the per-key accuracy of its slider offsets (:func:`parameter_accuracy`
    over the union of keys). The Hungarian pairing maximises the total; the result is the total divided
    by ``max(#pred, #ref)``. None when neither program has local adjustments.
    """
    if not pred.local and not ref.local:
        return None
    if not pred.local or not ref.local:
        return 0.0
    if image is None:
        canvas = torch.full((1, 3, size, size), 0.18)
    else:
        canvas = F.interpolate(torch.as_tensor(image, dtype=torch.float32)[None], size=(size, size),
                               mode="bilinear", align_corners=False)
    pm = [_mask_map(la.mask, canvas) for la in pred.local]
    rm = [_mask_map(la.mask, canvas) for la in ref.local]
    score = np.zeros((len(pm), len(rm)))
    for i, (a, la) in enumerate(zip(pm, pred.local)):
        for j, (b, lb) in enumerate(zip(rm, ref.local)):
            mx = float(torch.maximum(a, b).sum())
            iou = float(torch.minimum(a, b).sum()) / mx if mx > 0 else 1.0
            acc, _ = parameter_accuracy(SimpleNamespace(params=la.params), SimpleNamespace(params=lb.params),
                                        thresholds=thresholds)
            score[i, j] = iou * (1.0 if acc is None else acc)
    rows, cols = linear_sum_assignment(-score)
    return float(score[rows, cols].sum()) / max(len(pm), len(rm))


class LocalAdjustmentReward(_ProgramReward):
    """Agreement of local adjustments (mask overlap x slider accuracy, Hungarian-paired; see
    :func:`local_adjustment_accuracy`); None when neither program has local adjustments."""

    def __init__(self, reference_column: str = DEFAULT_PROGRAM_COLUMN, *, fmt: str = "auto", size: int = 64,
                 thresholds: Mapping[str, float] = JARVISART_THRESHOLDS, name: str = "local_accuracy") -> None:
        super().__init__(reference_column, fmt, name)
        if size < 4:
            raise ValueError(f"LocalAdjustmentReward: size must be >= 4, got {size}")
        self.size, self.thresholds = size, thresholds

    def compute(self, batch: RewardBatch) -> RewardResult:
        def fn(p: EditProgram, r: EditProgram) -> tuple[float | None, str | None]:
            v = local_adjustment_accuracy(p, r, size=self.size, thresholds=self.thresholds)
            return v, (None if v is not None else "neither program has local adjustments")

        return self._each(batch, fn)
