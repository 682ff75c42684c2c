"""Retouching suites: RetouchEval-style (RetouchIQ Table 1) and MIT-Adobe5K-style (Table 2).

Every system's text is parsed by :func:`rlkit.ops.parse_program` (JSON, Jarvis and RetouchIQ forms, auto-
detected) and executed by the engine on the input photo. A text with no executable program leaves the
photo unchanged (as an editing platform would) and counts against the valid-program rate.

RetouchEval metrics, per sample, against the expert edit, on the papers' 0-255 scale:
``l1`` = mean |output - expert| x 255 and ``l2`` = sqrt(mean (output - expert)^2) x 255 (root mean square,
so L2 >= L1 as in the papers' tables; the mean square would be in the thousands); ``l1_input`` is the
same for the unedited photo (``l1_input - l1`` is the improvement: 0 for the identity). With a judge:
``sc``, ``pq`` on 0-10 and ``o`` = sqrt(sc * pq) (VIEScore). MIT-Adobe5K metrics: ``psnr`` (dB, peak 1),
``ssim`` (Gaussian 11x11, as scikit-image), ``lpips`` (when the LPIPS weights are present).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from PIL import Image

from rlkit.data import RETOUCHEVAL_SPLITS, RetouchRecord, dataset_to_records, load_retouch, open_image
from rlkit.eval.judge import Judge, VIEScoreJudge
from rlkit.eval.policy import System, Task
from rlkit.eval.report import FIVEK_COLUMNS, RETOUCHEVAL_COLUMNS, retouch_report
from rlkit.eval.runner import run_suite
from rlkit.metrics import l1, l2, psnr, ssim, viescore_overall
from rlkit.ops import EditProgram, apply_program, parse_program, render_program, to_pil, to_tensor

__all__ = ["RetouchSample", "RetouchSuite", "load_retouch_samples", "render_text", "run_retouch",
           "FIVEK_INSTRUCTION"]

FIVEK_INSTRUCTION = "Retouch this photo so that it looks its best, as a professional photographer would."


@dataclass
class RetouchSample:
    """One benchmark item: input photo, expert image (and program when known), instruction, split."""

    id: str
    split: str
    before: Image.Image
    expert_image: Image.Image
    instruction: str
    program: EditProgram | None = None

    def task(self) -> Task:
        return Task(self.id, self.before, self.instruction, self.program)


def load_retouch_samples(path: str | Path, *, splits: Sequence[str] | None = None,
                         limit: int | None = None) -> list[RetouchSample]:
    """RetouchEval-style samples from a ``save_to_disk`` dataset (``rlkit data build retoucheval``; one split
    per key) or a JSONL folder in rlkit's retouch schema (``rlkit.data.load_retouch``; ``split`` field).
    ``limit`` keeps the first N of each split. The expert image is ``after``, or the expert program rendered
    on ``before`` when ``after`` is missing."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"benchmark {p} does not exist")
    records: list[RetouchRecord] = []
    if (p / "dataset_dict.json").is_file() or (p / "dataset_info.json").is_file():
        ds = datasets.load_from_disk(str(p))
        parts = dict(ds.items()) if hasattr(ds, "keys") else {"": ds}
        for name, part in parts.items():
            for r in dataset_to_records(part, RetouchRecord):
                r.split = r.split or name
                records.append(r)
    else:
        res = load_retouch(p)
        if res.problems:
            shown = "; ".join(str(x) for x in res.problems[:3])
            raise ValueError(f"{p}: {len(res.problems)} bad record(s): {shown}")
        records = res.records
    out: list[RetouchSample] = []
    count: dict[str, int] = {}
    for r in records:
        split = r.split or "all"
        if splits is not None and split not in splits:
            continue
        if limit is not None and count.get(split, 0) >= limit:
            continue
        count[split] = count.get(split, 0) + 1
        before = open_image(r.before)
        if r.after is not None:
            after = open_image(r.after)
        elif r.program is not None:
            after = to_pil(apply_program(to_tensor(before), r.program))[0]
        else:
            raise ValueError(f"sample {r.id}: neither an expert image ('after') nor an expert program")
        if after.size != before.size:
            raise ValueError(f"sample {r.id}: expert image is {after.size}, input photo {before.size}; they must match")
        out.append(RetouchSample(r.id, split, before, after, r.instruction, r.program))
    if not out:
        raise ValueError(f"{p}: no samples" + (f" in splits {list(splits)}" if splits else ""))
    order = {s: k for k, s in enumerate(RETOUCHEVAL_SPLITS)}
    out.sort(key=lambda s: (order.get(s.split, len(order)), s.split))  # stable within a split
    return out


def render_text(text: str, image: Image.Image) -> tuple[Image.Image, EditProgram | None, str | None]:
    """(output image, program, problem): the executed program, or the unchanged photo and why not."""
    res = parse_program(text if isinstance(text, str) else "")
    if res.program is None:
        why = "; ".join(str(p) for p in res.problems[:2]) or "no program found"
        return image, None, why
    try:
        out = to_pil(apply_program(to_tensor(image), res.program))[0]
    except Exception as exc:  # noqa: BLE001 - an engine error on one sample is that sample's failure
        return image, None, f"execution failed: {type(exc).__name__}: {exc}"
    return out, res.program, (None if res.ok else "; ".join(str(p) for p in res.problems[:2]))


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else (None if math.isnan(x) else float(x))


class RetouchSuite:
    """RetouchEval-style (``kind="retoucheval"``: L1, L2, judge SC/PQ/O) or MIT-Adobe5K-style (``"fivek"``:
    PSNR, SSIM, LPIPS) evaluation of retouching systems on :class:`RetouchSample` items."""

    def __init__(self, samples: Sequence[RetouchSample], *, kind: str = "retoucheval", judge: Judge | None = None,
                 lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 name: str | None = None) -> None:
        if kind not in ("retoucheval", "fivek"):
            raise ValueError(f"RetouchSuite: kind must be 'retoucheval' or 'fivek', got {kind!r}")
        self.samples, self.kind, self.name = list(samples), kind, name or kind
        self.judge = None if judge is None else (judge if isinstance(judge, VIEScoreJudge) else VIEScoreJudge(judge))
        self.lpips = lpips

    def sample_ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def evaluate(self, system: System, indices: Sequence[int]) -> list[dict[str, Any]]:
        batch = [self.samples[i] for i in indices]
        texts = system.generate([s.task() for s in batch])
        if len(texts) != len(batch):
            raise RuntimeError(f"system {system.name}: {len(texts)} texts for {len(batch)} samples")
        recs: list[dict[str, Any]] = []
        outs = []
        for s, text in zip(batch, texts):
            out, prog, problem = render_text(text, s.before)
            outs.append(out)
            recs.append({"split": s.split, "instruction": s.instruction, "text": text, "valid": prog is not None,
                         "problem": problem, "program": render_program(prog, "retouchiq") if prog else None})
        for rec, s, out in zip(recs, batch, outs):
            x, y, x0 = to_tensor(out), to_tensor(s.expert_image), to_tensor(s.before)
            if self.kind == "retoucheval":
                rec["l1"] = float(l1(x, y)[0]) * 255.0
                rec["l2"] = math.sqrt(float(l2(x, y)[0])) * 255.0
                rec["l1_input"] = float(l1(x0, y)[0]) * 255.0
            else:
                rec["psnr"] = _num(float(psnr(x, y)[0]))
                rec["psnr_input"] = _num(float(psnr(x0, y)[0]))
                rec["ssim"] = float(ssim(x, y)[0]) if min(x.shape[-2:]) >= 11 else None
        if self.kind == "fivek" and self.lpips is not None:
            for rec, s, out in zip(recs, batch, outs):
                rec["lpips"] = float(self.lpips(to_tensor(out), to_tensor(s.expert_image))[0])
        if self.judge is not None:
            js = self.judge.score([s.instruction for s in batch], [s.before for s in batch], outs)
            for rec, j in zip(recs, js):
                rec["sc"], rec["pq"] = j.sc, j.pq
                rec["o"] = float(viescore_overall(j.sc, j.pq)) if j.sc is not None and j.pq is not None else None
                rec["judge_errors"] = j.errors
        return recs


def _caption(rec: dict[str, Any], keys: Sequence[str]) -> str:
    prog = rec.get("program") or f"(invalid: {rec.get('problem') or 'no program'})"
    scores = "  ".join(f"{k}={rec[k]:.2f}" for k in keys if isinstance(rec.get(k), (int, float)))
    return f"{prog}\n{scores}"


def _describe(judge: Judge | None) -> str | None:
    if judge is None:
        return None
    backend = getattr(judge, "backend", judge)
    model = getattr(backend, "model", None)
    if isinstance(model, str):
        return f"{type(backend).__name__}({model})"
    path = getattr(getattr(model, "config", None), "_name_or_path", None)
    return f"{type(backend).__name__}({path or type(model).__name__})"


def run_retouch(samples: Sequence[RetouchSample], systems: Sequence[System], output_dir: str | Path, *,
                kind: str = "retoucheval", judge: Judge | None = None,
                lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, batch_size: int = 8,
                resume: bool = True, progress: bool = True, grid_per_split: int = 3,
                notes: Sequence[str] = ()) -> list[dict[str, Any]] | None:
    """Evaluate systems on a retouching suite and write results.json, report.md, grid.png and bars.png in
    ``output_dir`` (main process; the records are returned there, None on the other processes)."""
    suite = RetouchSuite(samples, kind=kind, judge=judge, lpips=lpips)
    records = run_suite(suite, systems, output_dir, batch_size=batch_size, resume=resume, progress=progress)
    if records is None:
        return None
    columns = RETOUCHEVAL_COLUMNS if kind == "retoucheval" else FIVEK_COLUMNS
    if judge is None and kind == "retoucheval":
        columns = columns[:2]
    if lpips is None and kind == "fivek":
        columns = tuple(c for c in columns if c.key != "lpips")
    by_key = {(r["system"], r["id"]): r for r in records}
    keys = [c.key for c in columns]

    def grid_rows() -> list[tuple[str, list[tuple[str, Image.Image, str]]]]:
        rows = []
        for split in dict.fromkeys(s.split for s in samples):
            for smp in [s for s in samples if s.split == split][:grid_per_split]:
                cols = [("before", smp.before, smp.instruction),
                        ("expert", smp.expert_image, render_program(smp.program, "retouchiq") if smp.program else "")]
                for sys_ in systems:
                    rec = by_key.get((sys_.name, smp.id))
                    if rec is not None:
                        cols.append((sys_.name, render_text(rec["text"], smp.before)[0], _caption(rec, keys)))
                rows.append((f"{split}: {smp.id}", cols))
        return rows

    meta = {"kind": kind, "systems": [s.name for s in systems], "samples": len(samples),
            "judge": _describe(judge),
            "lpips": getattr(lpips, "description", None) if lpips is not None else None, "notes": list(notes)}
    retouch_report(output_dir, suite.name, records, columns, meta=meta, grid_rows=grid_rows, notes=notes)
    return records
