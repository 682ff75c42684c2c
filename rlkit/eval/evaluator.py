"""Evaluator suite (EditRefiner Table 4): predicted scores against human MOS by SRCC, KRCC and PLCC.

An evaluator scores (source, edited, instruction) triples: ``score(...) -> (N, 3)`` on [0, 100] for perceptual
quality s_v, instruction following s_e and visual consistency s_p; its overall is s_v^0.3 s_e^0.4 s_p^0.3
(``rlkit.metrics.editrefiner_overall``), compared with the same combination of the three MOS. Reference rows:
full-reference scores of the edited image against the source (SSIM, PSNR, LPIPS when available), given to all
three dimensions, as the paper's hand-crafted baselines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from rlkit.data import MOS_DIMENSIONS, EditFHFRecord, open_image
from rlkit.eval.report import Column, markdown_table, write_results
from rlkit.eval.runner import run_suite
from rlkit.metrics import editrefiner_overall, krcc, plcc, psnr, srcc, ssim
from rlkit.ops import to_tensor

__all__ = ["Evaluator", "MOSSample", "FullReferenceEvaluator", "EvaluatorSuite", "run_evaluator",
           "samples_from_editfhf", "DIMENSIONS"]

DIMENSIONS = ("pq", "if", "vc")  # perceptual quality, instruction following, visual consistency (MOS_DIMENSIONS order)


@runtime_checkable
class Evaluator(Protocol):
    """An evaluation agent: ``name`` and ``score(sources, edited, instructions) -> (N, 3)`` on [0, 100]."""

    name: str

    def score(self, sources: Sequence[Image.Image], edited: Sequence[Image.Image],
              instructions: Sequence[str]) -> np.ndarray: ...


@dataclass
class MOSSample:
    """Source, edited image, instruction and the three MOS (0-100)."""

    id: str
    source: Image.Image
    edited: Image.Image
    instruction: str
    mos: tuple[float, float, float]


def samples_from_editfhf(records: Sequence[EditFHFRecord]) -> list[MOSSample]:
    """EditFHF records with all three MOS (others are skipped: they cannot be scored against)."""
    out = []
    for k, r in enumerate(records):
        if all(r.scores.get(d) is not None for d in MOS_DIMENSIONS):
            out.append(MOSSample(r.id or f"sample-{k}", open_image(r.source), open_image(r.edited), r.instruction,
                                 tuple(float(r.scores[d]) for d in MOS_DIMENSIONS)))
    if not out:
        raise ValueError("evaluator suite: no record has all three MOS")
    return out


class FullReferenceEvaluator:
    """One full-reference similarity of edited vs source, mapped to [0, 100], for all three dimensions."""

    def __init__(self, metric: str = "ssim", *, lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                 ) -> None:
        if metric not in ("ssim", "psnr", "lpips"):
            raise ValueError(f"FullReferenceEvaluator: metric must be ssim, psnr or lpips, got {metric!r}")
        if metric == "lpips" and lpips is None:
            raise ValueError("FullReferenceEvaluator('lpips') needs an LPIPS model (rlkit.metrics.lpips.load_lpips)")
        self.metric, self.lpips, self.name = metric, lpips, metric.upper()

    def score(self, sources: Sequence[Image.Image], edited: Sequence[Image.Image],
              instructions: Sequence[str]) -> np.ndarray:
        out = []
        for s, e in zip(sources, edited):
            x, y = to_tensor(e.resize(s.size) if e.size != s.size else e), to_tensor(s)
            if self.metric == "ssim":
                v = 100.0 * max(0.0, float(ssim(x, y)[0]))
            elif self.metric == "psnr":
                v = min(100.0, 2.0 * float(psnr(x, y)[0]))  # 50 dB -> 100
            else:
                v = 100.0 * max(0.0, 1.0 - float(self.lpips(x, y)[0]))
            out.append([v, v, v])
        return np.asarray(out, dtype=np.float64)


class EvaluatorSuite:
    """Per-sample predicted scores and MOS; the correlations are computed over the whole set (report)."""

    name = "evaluator"

    def __init__(self, samples: Sequence[MOSSample]) -> None:
        self.samples = list(samples)

    def sample_ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def evaluate(self, evaluator: Evaluator, indices: Sequence[int]) -> list[dict[str, Any]]:
        batch = [self.samples[i] for i in indices]
        pred = np.asarray(evaluator.score([s.source for s in batch], [s.edited for s in batch],
                                          [s.instruction for s in batch]), dtype=np.float64)
        if pred.shape != (len(batch), 3):
            raise ValueError(f"evaluator {evaluator.name!r}: scores of shape {pred.shape}, expected ({len(batch)}, 3)")
        if not np.isfinite(pred).all() or pred.min() < 0 or pred.max() > 100:
            raise ValueError(f"evaluator {evaluator.name!r}: scores must be finite and in [0, 100]")
        return [{"pred": p.tolist(), "mos": list(s.mos)} for p, s in zip(pred, batch)]


def correlations(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """{dimension (pq, if, vc, overall): {srcc, krcc, plcc}} over the records (None where undefined)."""
    pred = np.array([r["pred"] for r in records], dtype=np.float64)
    mos = np.array([r["mos"] for r in records], dtype=np.float64)
    cols = {d: (pred[:, k], mos[:, k]) for k, d in enumerate(DIMENSIONS)}
    cols["overall"] = (editrefiner_overall(pred[:, 0], pred[:, 1], pred[:, 2]),
                       editrefiner_overall(mos[:, 0], mos[:, 1], mos[:, 2]))
    out = {}
    for d, (p, m) in cols.items():
        if np.ptp(p) == 0 or np.ptp(m) == 0 or len(p) < 3:
            out[d] = {"srcc": None, "krcc": None, "plcc": None}  # a constant score has no correlation
        else:
            out[d] = {"srcc": srcc(p, m), "krcc": krcc(p, m), "plcc": plcc(p, m)}
    return out


def run_evaluator(samples: Sequence[MOSSample], evaluators: Sequence[Evaluator], output_dir: str | Path, *,
                  batch_size: int = 8, resume: bool = True, progress: bool = True) -> dict[str, Any] | None:
    """Run the evaluator suite; results.json and report.md (Table 4 shape). Returns the correlations."""
    records = run_suite(EvaluatorSuite(samples), evaluators, output_dir, batch_size=batch_size, resume=resume,
                        progress=progress)
    if records is None:
        return None
    summary = {e.name: correlations([r for r in records if r["system"] == e.name]) for e in evaluators}
    cols = [Column("srcc", "SRCC", True, "{:.4f}"), Column("krcc", "KRCC", True, "{:.4f}"),
            Column("plcc", "PLCC", True, "{:.4f}")]
    md = ["# evaluator", "", f"{len(samples)} edits; correlations with MOS (PQ, IF, VC and the overall "
          "s_v^0.3 s_e^0.4 s_p^0.3).", "",
          markdown_table([(n, summary[n]) for n in summary], cols, groups=[*DIMENSIONS, "overall"], first="method"), ""]
    out = Path(output_dir)
    write_results(out, "evaluator", records, summary, {"evaluators": [e.name for e in evaluators]})
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return summary
