"""The steps both loops share: image checks, region extraction, asking the reasoning agent, running a tool
call, and timing each step as model time or rlkit's own work.

Every step that can fail raises :class:`TurnFailure` with the reason the trace records; the loops catch it,
mark the turn ``failed`` and keep the image the turn started from.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from rich.progress import track

from rlkit.policies import (
    ActionError,
    Diagnosis,
    DiagnosisParse,
    MapRegions,
    ToolCall,
    parse_diagnosis,
    regions_from_map,
)
from rlkit.rewards.images import as_tensor

__all__ = ["TurnFailure", "ChatBackend", "Clock", "Observation", "MODEL_STEPS", "as_image", "find_regions",
           "ask_reasoner",
           "apply_tool_call", "plan_action", "iterate_rows", "ToolFn"]

MODEL_STEPS = ("perception", "reasoning", "action", "tool", "evaluation")
"""Timed steps that are model calls; every other timed step is rlkit's own work (regions, conversion, trace)."""

ToolFn = Callable[..., torch.Tensor]
"""A repair tool: ``inpaint(image, mask, prompt, seed=)`` (``rlkit.envs.InpaintTool``) or
``edit(image, instruction, mask=, source=, seed=)`` (``rlkit.envs.InstructionEditTool``) -> (3, H, W)."""


class TurnFailure(RuntimeError):
    """A turn could not complete; the message is the reason recorded in the trace."""


class ChatBackend(Protocol):
    """A chat VLM: ``generate(requests) -> replies`` (``rlkit.rewards.TransformersBackend`` / ``OpenAIBackend``)."""

    def generate(self, requests: Sequence[list[dict[str, Any]]]) -> Sequence[Any]: ...


class Clock:
    """Accumulates seconds per named step (``with clock("tool"): ...``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - t


@dataclass
class Observation:
    """What perception and reasoning found on one image: the maps, the regions to repair per map (only maps
    with some), the parsed diagnosis per map and the raw answers."""

    maps: dict[str, np.ndarray] = field(default_factory=dict)
    regions: dict[str, MapRegions] = field(default_factory=dict)
    diagnoses: dict[str, list[Diagnosis]] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    region_index: dict[str, list[int]] = field(default_factory=dict)

    def _kept(self, name: str) -> list[int]:
        return self.region_index.get(name, list(range(len(self.regions[name]))))

    @property
    def flaws(self) -> list[Diagnosis]:
        """Every diagnosed flaw, all maps together (the paper's aggregated D_t)."""
        return [d for v in self.diagnoses.values() for d in v]

    @property
    def mask(self) -> np.ndarray:
        """Union of the repair regions' masks of the maps with diagnosed flaws (the aggregated M_t)."""
        parts = [self.regions[n].masks[i] for n in self.diagnoses if self.diagnoses[n] for i in self._kept(n)]
        if not parts:
            shape = next(iter(self.maps.values())).shape if self.maps else (0, 0)
            return np.zeros(shape, dtype=bool)
        return np.any(parts, axis=0)

    @property
    def boxes(self) -> list[tuple[int, int, int, int]]:
        """The repair regions' boxes of the maps with diagnosed flaws."""
        return [self.regions[n].boxes[i] for n in self.diagnoses if self.diagnoses[n] for i in self._kept(n)]

    def describe(self) -> str:
        """One paragraph for a policy's prompt: regions per map and the diagnosis (JSON)."""
        lines = []
        for n in self.regions:
            boxes = " ".join(f"[{', '.join(str(c) for c in self.regions[n].boxes[i])}]" for i in self._kept(n))
            lines.append(f"{n} regions: {boxes}")
        lines.append("flaws: " + json.dumps([d.to_dict() for d in self.flaws]))
        return "\n".join(lines) if self.regions else "no region to repair"


def as_image(value: Any, what: str) -> torch.Tensor:
    """One image as a (3, H, W) float32 tensor in [0, 1] (PIL, (H, W, 3) array, (3, H, W) tensor); a tensor
    that already is one is used as is (no copy, no re-encoding). Each side must be at least 8 pixels (the
    saliency and region steps downsample)."""
    t = as_tensor(value, where=what)
    if min(t.shape[-2:]) < 8:
        raise ValueError(f"{what}: image of {tuple(t.shape[-2:])} pixels is too small (each side must be >= 8)")
    return t


def find_regions(maps: Mapping[str, np.ndarray], **kwargs: Any) -> dict[str, MapRegions]:
    """``rlkit.policies.regions_from_map`` on each (H, W) map (``kwargs``: tau, opening, closing, ...)."""
    return {name: regions_from_map(m, **kwargs) for name, m in maps.items()}


def _reply_text(reply: Any) -> str:
    if isinstance(reply, str):
        return reply
    text = getattr(reply, "text", None)
    if text is None:
        raise TurnFailure(f"the reasoning agent failed: {getattr(reply, 'error', None) or 'no text in its reply'}")
    return str(text)


def _fill_images(messages: list[dict[str, Any]], images: Sequence[torch.Tensor]) -> list[dict[str, Any]]:
    """The prompt's ``{"type": "image"}`` blocks, in order, given ``images`` (kept as tensors)."""
    it = iter(images)
    out = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            content = [{**b, "image": next(it)} if b.get("type") == "image" else b for b in content]
        out.append({**msg, "content": content})
    return out


def ask_reasoner(backend: ChatBackend, prompts: Mapping[str, list[dict[str, Any]]],
                 images: Mapping[str, Sequence[torch.Tensor]]) -> tuple[dict[str, DiagnosisParse], dict[str, str]]:
    """One batched call for every map kind: ``(parses, raw answers)``. An answer that does not parse fails
    the turn with the parser's first problem and position; a backend error fails it with the error."""
    kinds = list(prompts)
    try:
        replies = list(backend.generate([_fill_images(prompts[k], images[k]) for k in kinds]))
    except Exception as exc:  # noqa: BLE001 - a crashed backend is a failed turn, not a crashed loop
        raise TurnFailure(f"the reasoning agent raised {type(exc).__name__}: {exc}") from exc
    if len(replies) != len(kinds):
        raise TurnFailure(f"the reasoning agent returned {len(replies)} answers for {len(kinds)} requests")
    texts = {k: _reply_text(r) for k, r in zip(kinds, replies)}
    parses = {}
    for k, text in texts.items():
        p = parse_diagnosis(text)
        if not p.ok:
            first = p.problems[0]
            where = "" if first.position is None else f" at character {first.position}"
            raise TurnFailure(f"the reasoning answer for the {k} regions does not parse{where}: {first.reason}")
        parses[k] = p
    return parses, texts


def apply_tool_call(call: ToolCall, tools: Mapping[str, ToolFn], image: torch.Tensor, *,
                    source: torch.Tensor | None, seed: int) -> torch.Tensor:
    """Run ``call`` with its tool on ``image``: the result (3, H, W) in [0, 1], same size, or TurnFailure
    naming the tool (unknown tool, exception, wrong type / size / range, NaN)."""
    fn = tools.get(call.tool)
    if fn is None:
        raise TurnFailure(f"the action names the unknown tool {call.tool!r}; tools: {sorted(tools)}")
    try:
        if call.kind == "inpaint":
            out = fn(image, call.mask, call.text, seed=seed)
        else:
            out = fn(image, call.text, mask=call.mask, source=source, seed=seed)
    except Exception as exc:  # noqa: BLE001 - a failed pipeline is a failed turn
        raise TurnFailure(f"the tool {call.tool!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, torch.Tensor):
        raise TurnFailure(f"the tool {call.tool!r} returned {type(out).__name__}, not a (3, H, W) tensor")
    out = out.detach()
    if out.ndim == 4 and out.shape[0] == 1:
        out = out[0]
    if tuple(out.shape) != tuple(image.shape):
        raise TurnFailure(f"the tool {call.tool!r} returned an image of shape {tuple(out.shape)}, expected "
                          f"{tuple(image.shape)}")
    out = out.to(image)
    if not bool(torch.isfinite(out).all()):
        raise TurnFailure(f"the tool {call.tool!r} returned NaN or infinite values")
    return out.clamp(0.0, 1.0)


def plan_action(action: Any, diagnoses: list[Any], mask: np.ndarray, **kwargs: Any) -> ToolCall:
    """``action.plan(...)``, with ActionError turned into TurnFailure."""
    try:
        return action.plan(diagnoses, mask, **kwargs)
    except ActionError as exc:
        raise TurnFailure(f"the action agent made no tool call: {exc}") from exc


def iterate_rows(rows: Sequence[Any], *, progress: bool = True, what: str = "loop") -> Iterator[tuple[str, dict]]:
    """``(key, row dict)`` for dataset rows / records (``to_example()``), with a rich progress bar; the key is
    the row's ``id`` (made file-name safe) or its index."""
    def items() -> Iterator[tuple[str, dict]]:
        for i, row in enumerate(rows):
            if hasattr(row, "to_example"):
                row = row.to_example()
            if not isinstance(row, Mapping):
                raise TypeError(f"row {i}: expected a dataset row (mapping) or a record, got {type(row).__name__}")
            key = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(row.get("id") or "")).strip("._") or f"{i:05d}"
            yield key, dict(row)

    if not progress:
        yield from items()
        return

    yield from track(items(), total=len(rows), description=what)
