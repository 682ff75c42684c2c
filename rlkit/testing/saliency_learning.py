"""Learning measurements of the tiny perception nets (tests and benchmarks): train per seed, score on held-out
photos with ``rlkit.metrics`` against uniform, centre-bias and untrained baselines, margins vs seed spread."""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from rlkit.data import (
    BlemishRecord,
    EditFHFRecord,
    build_blemish,
    build_editfhf,
    dataset_to_records,
    default_photos,
)
from rlkit.metrics import saliency_metrics
from rlkit.policies import load_saliency_net
from rlkit.train.saliency import HELDOUT_PHOTOS, SaliencyConfig, train_saliency

from .cache import tiny_model_path


def centre_bias(h: int, w: int) -> Any:
    """The centre-bias baseline map: an isotropic-in-relative-units Gaussian, sigma = a quarter of each side."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.exp(-(((yy - (h - 1) / 2) / (h / 4)) ** 2 + ((xx - (w - 1) / 2) / (w / 4)) ** 2) / 2)


def auc_nss(pred: Any, gt: Any) -> dict[str, float]:
    """Mean AUC-Judd and NSS (``rlkit.metrics``) over a batch of maps."""
    m = saliency_metrics(pred, gt)
    return {k: float(np.mean(m[k])) for k in ("auc_judd", "nss")}


def map_baselines(gt: Any) -> dict[str, dict[str, float]]:
    """AUC-Judd / NSS of the uniform map (with MIT's ~1e-7 jitter, so it scores 0.5 rather than a tie at 0) and
    of the centre-bias map against ground truth ``gt`` (N, H, W)."""
    rng = np.random.default_rng(0)
    uniform = np.ones_like(gt) + rng.uniform(0, 1e-7, gt.shape)
    centre = np.broadcast_to(centre_bias(*gt.shape[1:]), gt.shape)
    return {"uniform": auc_nss(uniform, gt), "centre": auc_nss(centre, gt)}


def margins(trained: list[dict[str, float]], baselines: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per metric: the worse trained seed minus the best baseline (``margin``) and the trained seeds' ``spread``;
    the learning criterion is ``margin > spread``."""
    out = {}
    for metric in ("auc_judd", "nss"):
        t = [s[metric] for s in trained]
        out[metric] = {"margin": min(t) - max(b[metric] for b in baselines.values()), "spread": max(t) - min(t)}
    return out


def _train_tiny(kind: str, seed: int, rows: Any, **kw: Any) -> Any:
    net = load_saliency_net(tiny_model_path(kind, seed=seed)).train()
    with tempfile.TemporaryDirectory(prefix="rlkit-learn-") as out:
        args = SaliencyConfig(output_dir=out, per_device_train_batch_size=16, lr_scheduler_type="cosine",
                              warmup_steps=5, weight_decay=0.0, save_strategy="no", report_to=[], use_cpu=True,
                              seed=seed, disable_tqdm=True, **kw)
        train_saliency(net, rows, args)
    return net.eval()


def text_learning_run(seeds: tuple[int, ...] = (0, 1), *, steps: int = 80,
                      categories: tuple[str, ...] | None = ("color_inconsistency",)) -> dict[str, Any]:
    """Train the tiny text net per seed on GenBlemish-style rows (128 px photos, random 64 px crops, 5 photos) and
    score it, its untrained self, uniform and centre bias on random 64 px crops of the 2 held-out photos whose
    ground truth is non-empty (peak >= 0.5). Returns ``{"trained": [...], "baselines": {...}, "n": crops}``."""
    cats = list(categories) if categories else None
    photos = [p for p in default_photos() if p not in HELDOUT_PHOTOS]
    train = dataset_to_records(build_blemish(64, 0, size=128, photos=photos, categories=cats), BlemishRecord)
    test = dataset_to_records(build_blemish(24, 1, size=128, photos=list(HELDOUT_PHOTOS), categories=cats),
                              BlemishRecord)
    rng = np.random.default_rng(123)
    crops, gts, prompts = [], [], []
    for r in test:
        img, g = np.asarray(r.image), r.saliency()
        for _ in range(3):
            y, x = int(rng.integers(0, g.shape[0] - 63)), int(rng.integers(0, g.shape[1] - 63))
            if g[y:y + 64, x:x + 64].max() >= 0.5:
                crops.append(img[y:y + 64, x:x + 64])
                gts.append(g[y:y + 64, x:x + 64])
                prompts.append(r.prompt)
    gt = np.stack(gts)
    base = map_baselines(gt)
    trained = []
    for seed in seeds:
        untrained = load_saliency_net(tiny_model_path("saliency_text", seed=seed))
        base[f"untrained{seed}"] = auc_nss(untrained.predict_maps(crops, prompts=prompts)["saliency"], gt)
        net = _train_tiny("saliency_text", seed, train, max_steps=steps, learning_rate=5e-4, crop_scale=[0.5, 0.5])
        trained.append(auc_nss(net.predict_maps(crops, prompts=prompts)["saliency"], gt))
    return {"trained": trained, "baselines": base, "n": len(gt)}


def vlm_learning_run(seeds: tuple[int, ...] = (0, 1), *, steps: int = 80) -> dict[str, Any]:
    """Train the tiny VLM net per seed on 96 EditFHF-style items (128 px, 5 photos) and score both maps, the
    untrained net, uniform and centre bias on 24 items of the held-out photos (maps with a non-empty ground
    truth only). Returns ``{map: {"trained": [...], "baselines": {...}, "n": items}}``."""
    photos = [p for p in default_photos() if p not in HELDOUT_PHOTOS]
    train = dataset_to_records(build_editfhf(96, 0, size=128, photos=photos), EditFHFRecord)
    test = dataset_to_records(build_editfhf(24, 1, size=128, photos=list(HELDOUT_PHOTOS)), EditFHFRecord)
    maps = [r.saliency_maps() for r in test]
    kw = {"sources": [r.source for r in test], "instructions": [r.instruction for r in test]}
    edited = [r.edited for r in test]
    names = ("artifact", "failure")
    keep = {n: np.array([m[c].max() >= 0.5 for m in maps]) for c, n in enumerate(names)}
    gts = {n: np.stack([m[c] for m in maps])[keep[n]] for c, n in enumerate(names)}
    out = {n: {"trained": [], "baselines": map_baselines(gts[n]), "n": int(keep[n].sum())} for n in names}
    for seed in seeds:
        untrained = load_saliency_net(tiny_model_path("saliency_vlm", seed=seed)).predict_maps(edited, **kw)
        net = _train_tiny("saliency_vlm", seed, train, max_steps=steps, learning_rate=1e-3)
        pred = net.predict_maps(edited, **kw)
        for n in names:
            out[n]["baselines"][f"untrained{seed}"] = auc_nss(untrained[n][keep[n]], gts[n])
            out[n]["trained"].append(auc_nss(pred[n][keep[n]], gts[n]))
    return out


__all__ = ["centre_bias", "auc_nss", "map_baselines", "margins", "text_learning_run", "vlm_learning_run"]
