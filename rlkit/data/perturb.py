"""Weak-edit perturbations (RetouchIQ §4.2): from a strong edit, omit or mis-adjust several key parameters.

RetouchIQ builds reward-model pairs (strong = the user's edit, weak = a plausible but inferior variant) by
perturbing the editing configuration so that it "omits or misadjusts several key parameters", then keeps
only weak edits that really are worse. :func:`perturb_program` does the seeded perturbation;
:func:`weak_edits` renders candidates and keeps those whose result differs from the strong result by at
least ``min_gap`` under a chosen image metric (the strong result is the reference, so a larger difference
means a weaker edit).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from rlkit.data.records import RetouchRecord, RewardPairRecord, open_image
from rlkit.metrics import delta_e76, delta_e2000, l1, l2, ssim
from rlkit.ops import PARAM_SPECS, EditProgram, apply_program, to_pil, to_tensor

__all__ = ["perturb_program", "describe_changes", "weak_edits", "WeakEdit", "WEAK_METRICS", "make_reward_pairs"]


def _key_adjustments(program: EditProgram) -> list[tuple[str, float]]:
    """(key, importance) for every adjustment: sliders by |value - default| / range, curves and locals by 0.5."""
    keys = []
    for k, v in program.params.items():
        s = PARAM_SPECS[k]
        keys.append((f"param:{k}", abs(v - s.default) / (s.hi - s.lo)))
    keys += [(f"curve:{ch}", 0.5) for ch in program.curves]
    keys += [(f"local:{i}", 0.5) for i in range(len(program.local))]
    return keys


def perturb_program(
    program: EditProgram,
    seed: int,
    *,
    n_keys: tuple[int, int] = (1, 3),
    omit_prob: float = 0.5,
    under: tuple[float, float] = (0.0, 0.5),
    over: tuple[float, float] = (1.5, 2.5),
) -> EditProgram:
    """A seeded weak variant of ``program``: 1-3 key adjustments omitted or mis-adjusted.

    Keys are drawn with probability proportional to their importance (slider offset as a fraction of its
    range). An omitted slider returns to its default, an omitted curve/local adjustment is dropped; a
    mis-adjusted slider keeps its direction but is scaled by a factor from ``under`` or ``over`` (clamped to
    the slider's range). Always returns a program different from the input; raises on the identity.
    """
    if not isinstance(program, EditProgram):
        raise TypeError(f"perturb_program: expected an EditProgram, got {type(program).__name__}")
    keys = _key_adjustments(program)
    if not keys:
        raise ValueError("perturb_program: the strong program is the identity; there is nothing to perturb")
    lo, hi = n_keys
    if not 1 <= lo <= hi:
        raise ValueError(f"perturb_program: n_keys must satisfy 1 <= min <= max, got {n_keys}")
    if not 0.0 <= omit_prob <= 1.0:
        raise ValueError(f"perturb_program: omit_prob must be in [0, 1], got {omit_prob}")
    rng = random.Random(seed)
    for _attempt in range(20):
        k = min(rng.randint(lo, hi), len(keys))
        pool = list(keys)
        chosen = []
        for _ in range(k):
            total = sum(w for _, w in pool) or 1.0
            r, acc = rng.random() * total, 0.0
            for j, (name, w) in enumerate(pool):
                acc += w
                if r <= acc or j == len(pool) - 1:
                    chosen.append(name)
                    pool.pop(j)
                    break
        params = dict(program.params)
        curves = dict(program.curves)
        drop_local = set()
        for name in chosen:
            kind, _, key = name.partition(":")
            if kind == "curve":
                curves.pop(key)
            elif kind == "local":
                drop_local.add(int(key))
            else:
                spec = PARAM_SPECS[key]
                if rng.random() < omit_prob:
                    params.pop(key)
                else:
                    a, b = under if rng.random() < 0.5 else over
                    f = rng.uniform(a, b)
                    params[key] = min(spec.hi, max(spec.lo, spec.default + (params[key] - spec.default) * f))
        local = [la for i, la in enumerate(program.local) if i not in drop_local]
        weak = EditProgram(params, curves, local)
        if weak.to_dict() != program.to_dict():
            return weak
    # a mis-adjustment can clamp back to the same value; fall back to omitting the most important key
    name = max(keys, key=lambda kv: kv[1])[0]
    kind, _, key = name.partition(":")
    if kind == "param":
        return EditProgram({k: v for k, v in program.params.items() if k != key}, program.curves, program.local)
    if kind == "curve":
        return EditProgram(program.params, {c: p for c, p in program.curves.items() if c != key}, program.local)
    return EditProgram(program.params, program.curves, [la for i, la in enumerate(program.local) if i != int(key)])


def describe_changes(strong, weak) -> list[str]:
    """Human-readable differences, e.g. ``["omitted exposure (+0.8)", "contrast +30 -> +9"]``."""
    out = []
    for k in sorted(set(strong.params) | set(weak.params)):
        a, b = strong.get(k), weak.get(k)
        if k not in weak.params:
            out.append(f"omitted {k} ({a:+g})")
        elif k not in strong.params:
            out.append(f"added {k} ({b:+g})")
        elif abs(a - b) > 1e-9:
            out.append(f"{k} {a:+.3g} -> {b:+.3g}")
    for ch in sorted(set(strong.curves) - set(weak.curves)):
        out.append(f"omitted tone curve {ch}")
    if len(weak.local) < len(strong.local):
        out.append(f"omitted {len(strong.local) - len(weak.local)} local adjustment(s)")
    return out


def _metric(name_or_fn: str | Callable) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if callable(name_or_fn):
        return name_or_fn
    if name_or_fn not in WEAK_METRICS:
        raise ValueError(f"weak_edits: unknown metric {name_or_fn!r}; choose from {sorted(WEAK_METRICS)} or a callable")
    return WEAK_METRICS[name_or_fn]


def _ssim_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1.0 - ssim(a, b)


# badness of a weak result against the strong result: larger = weaker
WEAK_METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1,
    "l2": l2,
    "delta_e76": delta_e76,
    "delta_e2000": delta_e2000,
    "ssim": _ssim_gap,
}


@dataclass
class WeakEdit:
    """A kept weak edit: its program, rendered image (3, H, W), metric gap to the strong result, seed, changes."""

    program: EditProgram
    image: torch.Tensor
    gap: float
    seed: int
    changes: list[str]


def weak_edits(
    image: torch.Tensor,
    strong: EditProgram,
    n: int,
    seed: int,
    *,
    metric: str | Callable = "delta_e2000",
    min_gap: float = 2.0,
    max_candidates: int | None = None,
    batch: int = 8,
    **perturb_kw: tuple[float, float] | tuple[int, int] | float,
) -> list[WeakEdit]:
    """Up to ``n`` weak edits of ``strong`` on ``image`` ((3, H, W) or (1, 3, H, W) in [0, 1]) that pass the filter.

    Candidates come from ``perturb_program(strong, seed + i)``; one is kept when ``metric(weak, strong) >=
    min_gap`` (metrics: l1, l2, delta_e76, delta_e2000 (mean CIEDE2000, default, 2.0 ~ clearly visible),
    ssim (1 - SSIM), or a callable returning a per-image badness). Tries at most ``max_candidates``
    (default 8 n) candidates and may return fewer than ``n``.
    """
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"weak_edits: image must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    if n < 1:
        raise ValueError(f"weak_edits: n must be >= 1, got {n}")
    fn = _metric(metric)
    strong_img = apply_program(image, strong)
    limit = max_candidates if max_candidates is not None else 8 * n
    kept: list[WeakEdit] = []
    i = 0
    while len(kept) < n and i < limit:
        seeds = list(range(seed + i, seed + min(i + batch, limit)))
        i += len(seeds)
        progs = [perturb_program(strong, s, **perturb_kw) for s in seeds]
        imgs = apply_program(image.expand(len(progs), -1, -1, -1), progs)
        gaps = fn(imgs, strong_img.expand(len(progs), -1, -1, -1))
        for s, p, im, g in zip(seeds, progs, imgs, gaps.tolist()):
            if g >= min_gap and len(kept) < n:
                kept.append(WeakEdit(p, im, float(g), s, describe_changes(strong, p)))
    return kept


def make_reward_pairs(records: Sequence[RetouchRecord], seed: int, *, per_record: int = 1,
                      metric: str | Callable = "delta_e2000", min_gap: float = 2.0) -> list[RewardPairRecord]:
    """Reward-model pairs from RetouchRecords: strong = the record's program, weak = filtered perturbations."""
    out = []
    for j, rec in enumerate(records):
        if not isinstance(rec, RetouchRecord) or rec.program is None:
            raise ValueError(f"make_reward_pairs: records[{j}] must be a RetouchRecord with a program")
        x = to_tensor(open_image(rec.before))
        strong_img = to_pil(apply_program(x, rec.program))[0]
        for k, w in enumerate(weak_edits(x, rec.program, per_record, seed + 1000 * j, metric=metric, min_gap=min_gap)):
            out.append(RewardPairRecord(rec.before, strong_img, to_pil(w.image.unsqueeze(0))[0], rec.instruction,
                                        strong_program=rec.program, weak_program=w.program,
                                        id=f"{rec.id or j}-weak{k}"))
    return out
