"""One runner for every suite: batches sharded over accelerate processes, per-sample records, resume.

A suite lists its samples and evaluates a batch of them for one system, returning one JSON-able record
per sample. The runner cuts the samples into fixed batches (the same batches whatever the number of
processes, so batched generation sees the same inputs and the results are identical to a single
process), deals the batches round-robin to the processes, appends each finished batch's records to
``records/<system>/rank<k>.jsonl`` in the output folder (a rerun keeps every finished sample and only
evaluates the rest), gathers the records on the main process and returns them sorted by sample.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

logger = logging.getLogger("rlkit.eval")

__all__ = ["Named", "Suite", "run_suite", "load_records", "slug"]


class Named(Protocol):
    """What the runner needs of a system: a ``name`` (its row in the report and its records folder)."""

    name: str


S = TypeVar("S", bound=Named, contravariant=True)
N = TypeVar("N", bound=Named)


@runtime_checkable
class Suite(Protocol[S]):
    """A benchmark: ``name``, ``sample_ids()`` (stable, unique) and ``evaluate(system, indices)`` returning
    one record (a JSON-able dict) per sample index. Systems are whatever the suite evaluates."""

    name: str

    def sample_ids(self) -> list[str]: ...

    def evaluate(self, system: S, indices: Sequence[int]) -> list[dict[str, Any]]: ...


def slug(name: str) -> str:
    """A file-name-safe form of a system name."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return s or "system"


def load_records(folder: Path) -> dict[str, dict[str, Any]]:
    """Finished records in ``folder`` (``rank*.jsonl``), by sample id; a truncated last line is ignored."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(folder.glob("rank*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut off by a killed run: that sample is evaluated again
                if isinstance(rec, dict) and "id" in rec:
                    out[rec["id"]] = rec
    return out


def _state() -> PartialState:
    # without CUDA, `accelerate launch --multi_gpu` ranks only join a (gloo) process group as CPU ranks
    return PartialState(cpu=not torch.cuda.is_available())


def run_suite(suite: Suite[N], systems: Sequence[N], output_dir: str | Path, *, batch_size: int = 8,
              resume: bool = True, progress: bool = True) -> list[dict[str, Any]] | None:
    """Evaluate every system on every sample of ``suite``; records of all systems on the main process (None
    on the others). ``resume=False`` discards finished records of these systems first."""
    if batch_size < 1:
        raise ValueError(f"run_suite: batch_size must be >= 1, got {batch_size}")
    names = [s.name for s in systems]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"run_suite: two systems share the name(s) {dup}; give each a distinct name (NAME=PATH)")
    ids = suite.sample_ids()
    if len(set(ids)) != len(ids):
        raise ValueError(f"suite {suite.name}: sample ids are not unique")
    state = _state()
    rank, world = state.process_index, state.num_processes
    root = Path(output_dir) / "records" / slug(suite.name)
    if state.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if not resume:
            for s in systems:
                for f in (root / slug(s.name)).glob("rank*.jsonl"):
                    f.unlink()
    state.wait_for_everyone()
    batches = [list(range(i, min(i + batch_size, len(ids)))) for i in range(0, len(ids), batch_size)]
    mine_new: list[dict[str, Any]] = []
    todo: list[tuple[N, list[int], set[str]]] = []
    finished: list[dict[str, Any]] = []
    for s in systems:
        folder = root / slug(s.name)
        folder.mkdir(parents=True, exist_ok=True)
        done = load_records(folder)
        finished += done.values()
        for b, idx in enumerate(batches):
            missing = {ids[i] for i in idx if ids[i] not in done}
            if b % world == rank and missing:
                todo.append((s, idx, missing))
    bar = _progress(progress and state.is_main_process, sum(len(m) for *_, m in todo), suite.name)
    try:
        for s, idx, missing in todo:
            recs = suite.evaluate(s, idx)
            if len(recs) != len(idx):
                raise RuntimeError(f"suite {suite.name}: evaluate returned {len(recs)} records for {len(idx)} samples")
            keep = []
            for i, rec in zip(idx, recs):
                rec = {"system": s.name, "id": ids[i], "index": i, **rec}
                if rec["id"] in missing:
                    keep.append(rec)
            with open(root / slug(s.name) / f"rank{rank}.jsonl", "a", encoding="utf-8") as fh:
                for rec in keep:
                    fh.write(json.dumps(rec, allow_nan=True) + "\n")
            mine_new += keep
            if bar is not None:
                bar[0].update(bar[1], advance=len(keep), description=f"{suite.name} / {s.name}")
    finally:
        if bar is not None:
            bar[0].stop()
    if world > 1:
        mine_new = gather_object(mine_new)  # every rank's new records, on every rank
    if not state.is_main_process:
        return None
    order = {n: k for k, n in enumerate(names)}
    wanted = set(ids)
    merged = {(r["system"], r["id"]): r for r in finished + mine_new if r["id"] in wanted and r["system"] in order}
    return sorted(merged.values(), key=lambda r: (order[r["system"]], r["index"]))


def _progress(show: bool, total: int, desc: str) -> tuple[Progress, TaskID] | None:
    if not show or total == 0:
        return None
    p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    task = p.add_task(desc, total=total)
    p.start()
    return p, task
