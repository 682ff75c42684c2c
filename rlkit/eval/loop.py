"""Refinement-loop suite (EditRefiner Table 5): the score after turns 0..4 and with the loop's auto-stop.

A loop has ``name`` and ``run(image, *, source=None, instruction=None, prompt=None, max_turns=4) -> trace``.
The suite reads these trace fields (attributes or dict keys):

- ``images``: the image after each turn, ``images[0]`` the input (turn 0);
- ``scores``: the loop's own score of each of those images (a number, or a sequence whose overall is taken:
  three EditRefiner scores -> s_v^0.3 s_e^0.4 s_p^0.3, otherwise their mean);
- ``stop_turn`` (optional): the turn whose image the loop returns under its auto-stop rule (default: the last).

A loop that stopped before ``max_turns`` keeps its last image for the later turn rows. With ``scorer`` (an
:class:`~rlkit.eval.evaluator.Evaluator`) the suite re-scores every turn's image itself instead of trusting the
trace (the paper uses its evaluation agent as the metric).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from rlkit.eval.evaluator import Evaluator
from rlkit.eval.report import mean_of, write_results
from rlkit.eval.runner import run_suite
from rlkit.metrics import editrefiner_overall

__all__ = ["LoopSample", "LoopSuite", "RefinementLoop", "run_loop", "trace_field", "overall_score"]


class RefinementLoop(Protocol):
    """What the suite runs: ``name`` and ``run(image, ...) -> trace`` (the trace fields are listed above)."""

    name: str

    def run(self, image: Image.Image, *, source: Image.Image | None = None, instruction: str | None = None,
            prompt: str | None = None, max_turns: int = 4) -> object: ...


@dataclass
class LoopSample:
    """An edited image to refine, with what the loop may read: source, instruction, prompt."""

    id: str
    image: Image.Image
    source: Image.Image | None = None
    instruction: str | None = None
    prompt: str | None = None


def trace_field(trace: object, name: str, default: object = None) -> Any:
    """``trace.name`` or ``trace[name]``."""
    if isinstance(trace, dict):
        return trace.get(name, default)
    return getattr(trace, name, default)


def overall_score(s: float | Sequence[float] | np.ndarray) -> float:
    """A per-turn score as one number (see module doc)."""
    a = np.asarray(s, dtype=np.float64).ravel()
    if a.size == 1:
        return float(a[0])
    if a.size == 3:
        return float(editrefiner_overall(a[0], a[1], a[2]))
    return float(a.mean())


class LoopSuite:
    """Per-sample score at turns 0..max_turns and at the auto-stop turn."""

    name = "loop"

    def __init__(self, samples: Sequence[LoopSample], *, max_turns: int = 4, scorer: Evaluator | None = None) -> None:
        self.samples, self.max_turns, self.scorer = list(samples), max_turns, scorer

    def sample_ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def evaluate(self, loop: RefinementLoop, indices: Sequence[int]) -> list[dict[str, Any]]:
        recs = []
        for i in indices:
            s = self.samples[i]
            trace = loop.run(s.image, source=s.source, instruction=s.instruction, prompt=s.prompt,
                             max_turns=self.max_turns)
            images = list(trace_field(trace, "images") or [])
            if not images:
                raise ValueError(f"loop {loop.name!r}: the trace of {s.id} has no images")
            if self.scorer is not None:
                src = s.source or s.image
                pred = self.scorer.score([src] * len(images), images, [s.instruction or ""] * len(images))
                scores = [overall_score(p) for p in pred]
            else:
                raw = trace_field(trace, "scores")
                if raw is None or len(raw) != len(images):
                    raise ValueError(f"loop {loop.name!r}: the trace of {s.id} needs one score per image "
                                     f"({len(images)} images, {None if raw is None else len(raw)} scores)")
                scores = [overall_score(x) for x in raw]
            stop = trace_field(trace, "stop_turn", len(images) - 1)
            if not 0 <= int(stop) < len(images):
                raise ValueError(f"loop {loop.name!r}: stop_turn {stop} outside the trace's turns 0..{len(images) - 1}")
            rec = {f"turn{t}": scores[min(t, len(scores) - 1)] for t in range(self.max_turns + 1)}
            rec.update({"auto_stop": scores[int(stop)], "stop_turn": int(stop), "turns_run": len(images) - 1})
            recs.append(rec)
        return recs


def run_loop(samples: Sequence[LoopSample], loops: Sequence[RefinementLoop], output_dir: str | Path, *,
             max_turns: int = 4, scorer: Evaluator | None = None, batch_size: int = 4, resume: bool = True, progress: bool = True
             ) -> list[dict[str, Any]] | None:
    """Run the loop suite; results.json and report.md (Table 5 shape: rows = turns, columns = loops)."""
    records = run_suite(LoopSuite(samples, max_turns=max_turns, scorer=scorer), loops, output_dir,
                        batch_size=batch_size, resume=resume, progress=progress)
    if records is None:
        return None
    keys = [f"turn{t}" for t in range(max_turns + 1)] + ["auto_stop", "stop_turn"]
    summary = {lp.name: {k: mean_of([r for r in records if r["system"] == lp.name], k) for k in keys} for lp in loops}
    names = [lp.name for lp in loops]
    md = ["# refinement loop", "", f"{len(samples)} images; mean score per turn (a loop that stopped early keeps its "
          "last image); 'Auto Stop' = the loop's own stopping rule.", "",
          "| turns | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k, label in [(f"turn{t}", f"Turn {t}") for t in range(max_turns + 1)] + [("auto_stop", "Auto Stop"),
                                                                                 ("stop_turn", "mean stop turn")]:
        col = [summary[n][k] for n in names]
        md.append(f"| {label} | " + " | ".join("–" if v is None else f"{v:.4g}" for v in col) + " |")
    out = Path(output_dir)
    write_results(out, "loop", records, summary, {"loops": names, "max_turns": max_turns})
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return records
