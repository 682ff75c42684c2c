"""What a refinement loop records: one :class:`Turn` per iteration, a :class:`LoopTrace` per run.

Images stay (3, H, W) float tensors in [0, 1] inside the loop (no PNG round trip between agents); they are
converted to PIL only where a reader needs it (:attr:`LoopTrace.images`) and encoded to PNG only when a trace
is written (:meth:`LoopTrace.save`: ``trace.json``, ``strip.png`` with saliency overlays and scores,
``best.png``, ``turn_<k>.png``, ``maps.npz``).

The trace is what ``rlkit.eval``'s loop suite reads: ``images`` (the input, then the image after each turn),
``scores`` (one per image: the three evaluator scores, or a single number), ``stop_turn`` (the image the
loop returns). A turn that failed keeps the image it started from, so ``images[0]`` -- the input -- is always
there and every turn has an image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from rlkit.metrics import editrefiner_overall
from rlkit.ops import to_pil as ops_to_pil

__all__ = ["TURN_STATUSES", "Turn", "LoopTrace", "to_pil", "overall_of"]

TURN_STATUSES = ("ok", "rejected", "failed")
"""``ok``: a tool call was applied (and kept); ``rejected``: applied, but not kept (no improvement);
``failed``: the turn could not complete (its ``reason`` says why), the image is unchanged. When perception
finds nothing to repair no turn is recorded: the loop stops and keeps those maps as ``final_maps``."""


def to_pil(t: torch.Tensor) -> Image.Image:
    """(3, H, W) float [0, 1] -> RGB PIL image (rounded to 8 bits)."""
    return ops_to_pil(t.detach().cpu())[0]


def overall_of(scores: list[float] | None) -> float | None:
    """One number for a turn's scores: Eq. 5 for three scores, the value for one, the mean otherwise."""
    if scores is None:
        return None
    if len(scores) == 3:
        return float(editrefiner_overall(*scores))
    return float(np.mean(scores))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


@dataclass
class Turn:
    """One iteration: the maps and regions perception found on the image the turn started from, the
    diagnosis (per map kind, parsed, with the raw answers), the tool call, the resulting ``image`` and its
    ``scores``, the ``status`` (:data:`TURN_STATUSES`) with its ``reason``, and ``timings`` (seconds per step)."""

    index: int
    status: str = "ok"
    reason: str | None = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    diagnosis: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    tool_call: dict[str, Any] | None = None
    image: torch.Tensor | None = None
    scores: list[float] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def overall(self) -> float | None:
        return overall_of(self.scores)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (maps and image left out: see :meth:`LoopTrace.save`)."""
        return _jsonable({"turn": self.index, "status": self.status, "reason": self.reason, "regions": self.regions,
                          "diagnosis": self.diagnosis, "answers": self.answers, "tool_call": self.tool_call,
                          "scores": self.scores, "overall": self.overall, "timings": self.timings})


@dataclass
class LoopTrace:
    """A loop run: the input (and source / instruction / prompt), its scores, the turns, and which image is
    returned (``best_turn``: 0 = the input). ``images``, ``scores`` and ``stop_turn`` follow the eval suite's
    protocol (see the module docstring)."""

    loop: str
    input: torch.Tensor
    source: torch.Tensor | None = None
    instruction: str | None = None
    prompt: str | None = None
    input_scores: list[float] | None = None
    turns: list[Turn] = field(default_factory=list)
    best_turn: int = 0
    stop_reason: str = ""
    score_names: tuple[str, ...] = ()
    final_maps: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The input, then each turn's image (a failed turn repeats the image it started from)."""
        out = [self.input]
        for t in self.turns:
            out.append(t.image if t.image is not None else out[-1])
        return out

    @property
    def images(self) -> list[Image.Image]:
        """:attr:`tensors` as PIL images (the eval suite's ``images``)."""
        return [to_pil(t) for t in self.tensors]

    @property
    def scores(self) -> list[list[float] | None]:
        """One entry per image: its scores (a failed turn repeats the scores it started from)."""
        out = [self.input_scores]
        for t in self.turns:
            out.append(t.scores if t.image is not None else out[-1])
        return out

    @property
    def overalls(self) -> list[float | None]:
        """One overall score per image (:func:`overall_of`)."""
        return [overall_of(s) for s in self.scores]

    @property
    def stop_turn(self) -> int:
        """Index in :attr:`images` of the image the loop returns."""
        return self.best_turn

    @property
    def best_image(self) -> torch.Tensor:
        """The returned image, (3, H, W) float in [0, 1]."""
        return self.tensors[self.best_turn]

    @property
    def failed_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary of the run (images and maps excluded)."""
        h, w = self.input.shape[-2:]
        return _jsonable({
            "loop": self.loop, "instruction": self.instruction, "prompt": self.prompt, "size": [int(h), int(w)],
            "score_names": list(self.score_names), "input_scores": self.input_scores,
            "input_overall": overall_of(self.input_scores), "turns": [t.to_dict() for t in self.turns],
            "best_turn": self.best_turn, "stop_turn": self.stop_turn, "stop_reason": self.stop_reason,
            "overalls": self.overalls})

    def save(self, folder: str | Path, *, strip_height: int = 192) -> dict[str, Path]:
        """Write ``trace.json``, ``strip.png`` (turns side by side), ``best.png``, ``turn_<k>.png`` (the image
        after each turn, ``turn_0.png`` the input) and ``maps.npz`` (each turn's maps) to ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "trace.json", "strip": out / "strip.png", "best": out / "best.png",
                 "maps": out / "maps.npz"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        self.strip(height=strip_height).save(paths["strip"], format="PNG")
        to_pil(self.best_image).save(paths["best"], format="PNG")
        for k, t in enumerate(self.tensors):
            paths[f"turn_{k}"] = out / f"turn_{k}.png"
            to_pil(t).save(paths[f"turn_{k}"], format="PNG")
        arrays = {f"turn{t.index}_{k}": v.astype(np.float16) for t in self.turns for k, v in t.maps.items()}
        arrays.update({f"final_{k}": v.astype(np.float16) for k, v in self.final_maps.items()})
        np.savez_compressed(paths["maps"], **arrays)
        return paths

    def _maps_on(self, k: int) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Maps computed on image ``k`` (by the next turn's perception, or the final check)."""
        if k < len(self.turns):
            return self.turns[k].maps, self.turns[k].regions
        return self.final_maps, {}

    def strip(self, *, height: int = 192) -> Image.Image:
        """Every image of the run side by side, each with its saliency overlay (maps found on it, red =
        first map, blue = second), its boxes, status and scores; the returned image is framed in green."""
        panels = []
        scores = self.scores
        for k, t in enumerate(self.tensors):
            img = t.detach().cpu().float().clamp(0, 1)
            maps, regions = self._maps_on(k)
            for c, m in enumerate(maps.values()):
                a = torch.as_tensor(np.asarray(m, dtype=np.float32))
                if a.shape != img.shape[-2:]:
                    a = torch.nn.functional.interpolate(a[None, None], size=tuple(img.shape[-2:]), mode="bilinear",
                                                        align_corners=False)[0, 0]
                color = torch.tensor([1.0, 0.1, 0.1] if c % 2 == 0 else [0.1, 0.3, 1.0])[:, None, None]
                alpha = 0.5 * a.clamp(0, 1)[None]
                img = img * (1 - alpha) + color * alpha
            h, w = img.shape[-2:]
            pil = to_pil(img).resize((max(1, round(w * height / h)), height), Image.BILINEAR)
            draw = ImageDraw.Draw(pil)
            sx, sy = pil.width / w, height / h
            for c, reg in enumerate(regions.values()):
                for b in reg.get("boxes", []):
                    draw.rectangle([b[0] * sx, b[1] * sy, b[2] * sx - 1, b[3] * sy - 1],
                                   outline=(255, 60, 60) if c % 2 == 0 else (60, 120, 255))
            label = "input" if k == 0 else f"turn {k}: {self.turns[k - 1].status}"
            o = overall_of(scores[k])
            lines = [label, "score –" if o is None else f"score {o:.2f}"]
            if scores[k] is not None and len(scores[k]) > 1:
                lines.append(" / ".join(f"{v:.1f}" for v in scores[k]))
            band = Image.new("RGB", (pil.width, 14 * len(lines) + 6), (255, 255, 255))
            bd = ImageDraw.Draw(band)
            for j, line in enumerate(lines):
                bd.text((3, 3 + 14 * j), line, fill=(0, 0, 0))
            panel = Image.new("RGB", (pil.width + 6, pil.height + band.height + 6), (255, 255, 255))
            if k == self.best_turn:
                ImageDraw.Draw(panel).rectangle([0, 0, panel.width - 1, pil.height + 5], outline=(0, 170, 0), width=3)
            panel.paste(pil, (3, 3))
            panel.paste(band, (3, pil.height + 6))
            panels.append(panel)
        width = sum(p.width for p in panels) + 4 * (len(panels) - 1)
        strip = Image.new("RGB", (width, max(p.height for p in panels)), (255, 255, 255))
        x = 0
        for p in panels:
            strip.paste(p, (x, 0))
            x += p.width + 4
        return strip
