"""Saliency suite (Agentic Retoucher Table 3, EditRefiner Table 2): flaw-aware saliency maps against the regions.

Ground truth is the Gaussian-aggregated map of the annotated regions (:func:`rlkit.data.saliency_from_regions`):
``saliency`` for GenBlemish-style records, ``artifact`` and ``failure`` for EditFHF-style ones. AUC-Judd, NSS,
CC, SIM and KLD (``rlkit.metrics.saliency_metrics``; fixations = ground truth >= half its peak) are averaged over
the images whose ground truth is non-empty (RichHF protocol). Reference rows: a uniform map, a centre bias, an
untrained copy of a given net, the classical spectral-residual saliency (Hou & Zhang, CVPR 2007), and each
predictor given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import datasets
import matplotlib
import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter, uniform_filter
from transformers import AutoConfig, AutoModel

import rlkit.policies.perception  # noqa: F401 - registers the saliency nets with AutoConfig / AutoModel
from rlkit.data import (
    BlemishRecord,
    EditFHFRecord,
    dataset_to_records,
    load_blemish,
    load_editfhf,
    open_image,
)
from rlkit.eval.report import Column, markdown_table, save_grid, write_results
from rlkit.eval.runner import run_suite
from rlkit.metrics import SALIENCY_METRICS, saliency_metrics

__all__ = ["SaliencyPredictor", "SaliencySample", "SaliencySuite", "UniformSaliency", "CentreBias",
           "SpectralResidual", "load_saliency_samples", "load_saliency_predictor", "run_saliency",
           "spectral_residual"]


@runtime_checkable
class SaliencyPredictor(Protocol):
    """A saliency agent: ``map_names`` (("saliency",) or ("artifact", "failure")) and ``predict_maps``,
    returning name -> (N, H, W) float32 in [0, 1] at the input resolution."""

    map_names: tuple[str, ...]

    def predict_maps(self, images: Sequence[Image.Image], *, prompts: Sequence[str] | None = None,
                     sources: Sequence[Image.Image] | None = None,
                     instructions: Sequence[str] | None = None) -> dict[str, np.ndarray]: ...


@dataclass
class SaliencySample:
    """An image (the edited one for EditFHF), its ground-truth maps by name, and the context agents read."""

    id: str
    image: Image.Image
    gt: dict[str, np.ndarray]
    prompt: str | None = None
    source: Image.Image | None = None
    instruction: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _samples_from(records: Sequence[BlemishRecord | EditFHFRecord]) -> list[SaliencySample]:
    out = []
    for k, r in enumerate(records):
        rid = getattr(r, "id", "") or f"sample-{k}"
        if isinstance(r, BlemishRecord):
            out.append(SaliencySample(rid, open_image(r.image), {"saliency": r.saliency()}, prompt=r.prompt))
        elif isinstance(r, EditFHFRecord):
            art, fail = r.saliency_maps()
            out.append(SaliencySample(rid, open_image(r.edited), {"artifact": art, "failure": fail},
                                      source=open_image(r.source), instruction=r.instruction))
        else:
            raise TypeError(f"saliency suite: record {k} is a {type(r).__name__}, not a BlemishRecord/EditFHFRecord")
    return out


def load_saliency_samples(path: str | Path, *, kind: str | None = None, limit: int | None = None
                          ) -> list[SaliencySample]:
    """Samples from a ``save_to_disk`` dataset (``rlkit data build blemish``, or EditFHF-schema) or a JSONL
    folder (``kind`` = "blemish" or "editfhf" for JSONL; datasets are recognised by their columns)."""
    p = Path(path)
    if (p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file():
        ds = datasets.load_from_disk(str(p))
        if hasattr(ds, "keys"):
            ds = ds["test"] if "test" in ds else next(iter(ds.values()))
        cls = EditFHFRecord if "edited" in ds.column_names else BlemishRecord
        records = dataset_to_records(ds.select(range(min(limit or len(ds), len(ds)))), cls)
    else:
        if kind not in ("blemish", "editfhf"):
            raise ValueError(f"load_saliency_samples: {p} is a JSONL folder; pass kind='blemish' or 'editfhf'")
        res = (load_blemish if kind == "blemish" else load_editfhf)(p)
        if res.problems:
            raise ValueError(f"{p}: {len(res.problems)} bad record(s): {res.problems[0]}")
        records = res.records[:limit]
    return _samples_from(records)


def _names(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(names)


class UniformSaliency:
    """A constant map (carries no information: NSS = CC = 0; the floor every predictor must beat)."""

    def __init__(self, map_names: Sequence[str] = ("saliency",), name: str = "uniform") -> None:
        self.map_names, self.name = _names(map_names), name

    def predict_maps(self, images: Sequence[Image.Image], **_: object) -> dict[str, np.ndarray]:
        w, h = images[0].size
        return {m: np.full((len(images), h, w), 0.5, np.float32) for m in self.map_names}


class CentreBias:
    """An isotropic Gaussian at the image centre, sigma = ``frac`` x the shorter side (photographers' bias)."""

    def __init__(self, map_names: Sequence[str] = ("saliency",), frac: float = 0.25, name: str = "centre bias") -> None:
        self.map_names, self.frac, self.name = _names(map_names), frac, name

    def predict_maps(self, images: Sequence[Image.Image], **_: object) -> dict[str, np.ndarray]:
        w, h = images[0].size
        s = self.frac * min(h, w)
        g = np.exp(-(((np.arange(h) - (h - 1) / 2)[:, None] ** 2 + (np.arange(w) - (w - 1) / 2)[None] ** 2)
                     / (2 * s * s))).astype(np.float32)
        return {m: np.repeat(g[None], len(images), 0) for m in self.map_names}


def spectral_residual(image: Image.Image, *, width: int = 64, sigma: float = 3.0) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007) at the image's resolution, in [0, 1].

    The grey image at ``width`` px: A(f) = log |F|, P(f) = angle F, residual R = A - h_3 * A (3x3 mean
    filter), S = G_sigma * |F^-1[exp(R + iP)]|^2, resized back and min-max scaled.
    """
    w, h = image.size
    small = image.convert("L").resize((width, max(1, round(h * width / w))), Image.BILINEAR)
    f = np.fft.fft2(np.asarray(small, dtype=np.float64) / 255.0)
    amp = np.log(np.abs(f) + 1e-12)
    residual = amp - uniform_filter(amp, size=3, mode="wrap")
    s = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(f)))) ** 2
    s = gaussian_filter(s, sigma)
    out = np.asarray(Image.fromarray(s.astype(np.float32)).resize((w, h), Image.BILINEAR), dtype=np.float32)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)


class SpectralResidual:
    """Classical bottom-up saliency (:func:`spectral_residual`), the same map for every map name."""

    def __init__(self, map_names: Sequence[str] = ("saliency",), name: str = "spectral residual") -> None:
        self.map_names, self.name = _names(map_names), name

    def predict_maps(self, images: Sequence[Image.Image], **_: object) -> dict[str, np.ndarray]:
        maps = np.stack([spectral_residual(im) for im in images])
        return {m: maps for m in self.map_names}


def load_saliency_predictor(path: str | Path, *, untrained: bool = False, seed: int = 0) -> SaliencyPredictor:
    """A saliency net saved with ``save_pretrained`` (``transformers.AutoModel.from_pretrained(path)``); with
    ``untrained=True`` the same architecture with freshly initialised weights (the untrained-net row)."""
    if untrained:
        torch.manual_seed(seed)
        model = AutoModel.from_config(AutoConfig.from_pretrained(str(path)))
    else:
        model = AutoModel.from_pretrained(str(path))
    if not isinstance(model, SaliencyPredictor):
        raise TypeError(f"{path}: {type(model).__name__} has no map_names/predict_maps (not a saliency predictor)")
    model.eval()
    if not hasattr(model, "name") or not isinstance(getattr(model, "name", None), str):
        model.name = ("untrained " if untrained else "") + Path(str(path)).name
    return model


class SaliencySuite:
    """Per-sample saliency metrics of a predictor for each of the samples' map names."""

    name = "saliency"

    def __init__(self, samples: Sequence[SaliencySample]) -> None:
        self.samples = list(samples)
        self.map_names = tuple(dict.fromkeys(m for s in self.samples for m in s.gt))

    def sample_ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def predict(self, predictor: SaliencyPredictor, batch: Sequence[SaliencySample]) -> list[dict[str, np.ndarray]]:
        """Each sample's predicted maps (predicted in groups of one image size)."""
        out: list[dict[str, np.ndarray] | None] = [None] * len(batch)
        sizes = list(dict.fromkeys(s.image.size for s in batch))
        for size in sizes:
            idx = [k for k, s in enumerate(batch) if s.image.size == size]
            sub = [batch[k] for k in idx]
            kw: dict[str, Any] = {}
            if any(s.prompt for s in sub):
                kw["prompts"] = [s.prompt or "" for s in sub]
            if any(s.source is not None for s in sub):
                kw["sources"] = [s.source for s in sub]
                kw["instructions"] = [s.instruction or "" for s in sub]
            maps = predictor.predict_maps([s.image for s in sub], **kw)
            for j, k in enumerate(idx):
                out[k] = {}
                for m in batch[k].gt:
                    if m not in maps:
                        raise KeyError(f"predictor {getattr(predictor, 'name', predictor)!r} gave maps "
                                       f"{sorted(maps)}, the benchmark needs {m!r}")
                    a = np.asarray(maps[m][j], dtype=np.float32)
                    if a.shape != batch[k].gt[m].shape:
                        raise ValueError(f"predictor {getattr(predictor, 'name', predictor)!r}: map {m!r} of sample "
                                         f"{batch[k].id} is {a.shape}, the image is {batch[k].gt[m].shape}")
                    out[k][m] = a
        return out  # type: ignore[return-value]

    def evaluate(self, predictor: SaliencyPredictor, indices: Sequence[int]) -> list[dict[str, Any]]:
        batch = [self.samples[i] for i in indices]
        preds = self.predict(predictor, batch)
        recs: list[dict[str, Any]] = [{} for _ in batch]
        for k, s in enumerate(batch):
            for m, gt in s.gt.items():
                per = saliency_metrics(preds[k][m][None], gt[None])
                rec = {name: (None if np.isnan(per[name][0]) else float(per[name][0])) for name in SALIENCY_METRICS}
                rec["nonempty"] = bool(per["nonempty"][0])
                recs[k][m] = rec
        return recs


def _overlay(gray: Image.Image, heat: np.ndarray) -> Image.Image:
    rgb = (matplotlib.colormaps["jet"](np.clip(heat, 0, 1))[..., :3] * 255).astype(np.uint8)
    return Image.blend(gray.convert("RGB"), Image.fromarray(rgb), 0.5)


def run_saliency(samples: Sequence[SaliencySample], predictors: Sequence[SaliencyPredictor], output_dir: str | Path, *,
                 batch_size: int = 8, resume: bool = True, progress: bool = True, overlays: int = 4
                 ) -> list[dict[str, Any]] | None:
    """Run the saliency suite; write results.json, report.md (Table 3 / Table 2 shape) and overlays.png."""
    suite = SaliencySuite(samples)
    records = run_suite(suite, predictors, output_dir, batch_size=batch_size, resume=resume, progress=progress)
    if records is None:
        return None
    cols = [Column("auc_judd", "AUC-Judd ↑", True, "{:.4f}"), Column("nss", "NSS ↑", True, "{:.4f}"),
            Column("cc", "CC ↑", True, "{:.4f}"), Column("sim", "SIM ↑", True, "{:.4f}"),
            Column("kld", "KLD ↓", False, "{:.4f}")]
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for p in predictors:
        rs = [r for r in records if r["system"] == p.name]
        summary[p.name] = {}
        for m in suite.map_names:
            ok = [r[m] for r in rs if m in r and r[m]["nonempty"]]  # RichHF protocol: non-empty GT only
            summary[p.name][m] = {c.key: (float(np.mean([x[c.key] for x in ok if x[c.key] is not None]))
                                          if any(x[c.key] is not None for x in ok) else None) for c in cols}
            summary[p.name][m]["n"] = len(ok)
    out = Path(output_dir)
    groups = list(suite.map_names) if len(suite.map_names) > 1 else None
    rows = [(p.name, summary[p.name] if groups else summary[p.name][suite.map_names[0]]) for p in predictors]
    md = ["# saliency", "", f"{len(samples)} images; metrics averaged over images with non-empty ground truth "
          "(RichHF protocol); fixations = ground truth >= half its peak.", "",
          markdown_table(rows, cols, groups=groups, first="method"), "", "![overlays](overlays.png)", ""]
    grid = []
    for s in samples[:overlays]:
        preds = {p.name: suite.predict(p, [s])[0] for p in predictors}
        for m, gt in s.gt.items():
            row = [("image", s.image, ""), (f"ground truth ({m})", _overlay(s.image, gt / max(gt.max(), 1e-12)), "")]
            row += [(p.name, _overlay(s.image, preds[p.name][m]), "") for p in predictors]
            grid.append((f"{s.id} / {m}", row))
    save_grid(out / "overlays.png", grid, tile=128)
    write_results(out, "saliency", records, summary, {"predictors": [p.name for p in predictors],
                                                       "maps": list(suite.map_names)})
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return records
