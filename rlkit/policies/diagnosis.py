"""Parse a reasoning agent's flaw diagnosis from untrusted model text.

Two published shapes are accepted:

* EditRefiner: a JSON list ``[{"flaw_type": ..., "description": ...}, ...]``, optionally wrapped in
  ``<think>...</think><answer>...</answer>`` or a Markdown code fence.
* Agentic Retoucher: one diagnosis per localised region, either as objects carrying a ``region`` id
  (and optionally a ``bbox`` ``[x1, y1, x2, y2]``) or as a mapping ``{"<region id>": {...}, ...}``.

The text is parsed with :mod:`json` only (never evaluated). :func:`parse_diagnosis` never raises on a
``str``: failures come back as ``DiagnosisParse(ok=False, problems=[...])`` with a character position.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from rlkit.ops import json_too_deep

__all__ = ["Diagnosis", "DiagnosisParse", "DiagnosisProblem", "parse_diagnosis", "normalize_flaw_type"]

# Keys accepted for the flaw type and description (first match wins), lower-cased.
_TYPE_KEYS = ("flaw_type", "type", "flaw", "category", "distortion_type", "distortion", "label")
_DESC_KEYS = ("description", "desc", "explanation", "reason", "reasoning", "text")
_REGION_KEYS = ("region", "region_id", "id", "index")
_BBOX_KEYS = ("bbox", "box", "bounding_box")

_OPENERS = re.compile(r"[\[{]")
_SPACE = re.compile(r"\s*")
# Untrusted text is searched with str.find from fixed positions: the lazy regexes this replaces
# (<think>(.*?)</think> ...) were retried from every start, quadratic on repeated unclosed tags.


def _tag_span(text: str, tag: str) -> tuple[int, int] | None:
    """(start, end) of the content of the first ``<tag>...</tag>`` in ``text``, else None."""
    i = text.find(f"<{tag}>")
    j = text.find(f"</{tag}>", i + len(tag) + 2) if i >= 0 else -1
    return (i + len(tag) + 2, j) if j >= 0 else None


def _fence_span(text: str) -> tuple[int, int] | None:
    """(start, end) of the content of the first Markdown code fence (after an optional ``json`` tag)."""
    i = text.find("```")
    if i < 0:
        return None
    start = i + 3 + (4 if text.startswith("json", i + 3) else 0)
    start = _SPACE.match(text, start).end()
    end = text.find("```", start)
    return (start, end) if end >= 0 else None


def normalize_flaw_type(name: str) -> str:
    """Canonical form of a flaw-type label: lower case, ``_``/``-``/runs of spaces -> one space."""
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower()).strip()


@dataclass(frozen=True)
class Diagnosis:
    """One diagnosed flaw: its type, a free-text description, and optionally its region id / box."""

    flaw_type: str
    description: str
    region: str | None = None
    bbox: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"flaw_type": self.flaw_type, "description": self.description}
        if self.region is not None:
            d["region"] = self.region
        if self.bbox is not None:
            d["bbox"] = list(self.bbox)
        return d


@dataclass(frozen=True)
class DiagnosisProblem:
    """Why (part of) a diagnosis could not be read; ``position`` is a character offset in the text."""

    position: int | None
    reason: str


@dataclass
class DiagnosisParse:
    """Result of :func:`parse_diagnosis`; ``ok`` is True when every item parsed (``[]`` means "no flaws")."""

    ok: bool
    items: list[Diagnosis] = field(default_factory=list)
    problems: list[DiagnosisProblem] = field(default_factory=list)
    reasoning: str | None = None
    format: str = "unknown"  # "editrefiner" | "agentic_retoucher" | "unknown"
    has_answer_tags: bool = False

    @property
    def flaw_types(self) -> list[str]:
        return [d.flaw_type for d in self.items]

    @property
    def descriptions(self) -> list[str]:
        return [d.description for d in self.items]


def _pick(obj: dict[str, object], keys: tuple[str, ...]) -> tuple[str | None, object]:
    lower = {str(k).lower(): k for k in obj}
    for k in keys:
        if k in lower:
            return lower[k], obj[lower[k]]
    return None, None


def _bbox(value: object) -> tuple[float, float, float, float] | None | str:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 4:
        try:
            vals = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            return f"bbox must hold 4 numbers, got {value!r}"
        if any(v != v for v in vals):
            return f"bbox holds NaN: {value!r}"
        return vals  # type: ignore[return-value]
    return f"bbox must be [x1, y1, x2, y2], got {value!r}"


def _item(obj: object, where: str, region: str | None = None) -> tuple[Diagnosis | None, str | None]:
    if not isinstance(obj, dict):
        return None, f"{where}: expected an object with flaw_type and description, got {type(obj).__name__}"
    tkey, ftype = _pick(obj, _TYPE_KEYS)
    dkey, desc = _pick(obj, _DESC_KEYS)
    if tkey is None:
        return None, f"{where}: missing 'flaw_type' (keys present: {sorted(map(str, obj))})"
    if not isinstance(ftype, str) or not ftype.strip():
        return None, f"{where}: 'flaw_type' must be a non-empty string, got {ftype!r}"
    if dkey is None:
        desc = ""
    elif not isinstance(desc, str):
        return None, f"{where}: 'description' must be a string, got {type(desc).__name__}"
    rkey, rid = _pick(obj, _REGION_KEYS)
    if rid is not None and region is None:
        region = str(rid)
    _, braw = _pick(obj, _BBOX_KEYS)
    box = _bbox(braw)
    if isinstance(box, str):
        return None, f"{where}: {box}"
    return Diagnosis(flaw_type=ftype.strip(), description=desc.strip(), region=region, bbox=box), None


def _first_json(text: str, base: int, max_tries: int = 64) -> tuple[Any, int, str | None]:
    """Decode the first JSON array/object in ``text`` (skipping stray brackets in prose before it);
    returns (value, absolute position, error of the first attempt when none decodes)."""
    starts = [m.start() for m in itertools.islice(_OPENERS.finditer(text), max_tries)]
    if not starts:
        return None, base, "no JSON list or object found"
    decoder = json.JSONDecoder()
    first_err: tuple[int, str] | None = None
    fallback: tuple[Any, int] | None = None
    for start in starts:
        if json_too_deep(text, start):
            if first_err is None:
                first_err = (base + start, "invalid JSON: nested too deeply")
            continue
        try:
            value, _end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            if first_err is None:
                first_err = (base + exc.pos, f"invalid JSON: {exc.msg}")
            continue
        if isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return value, base + start, None
        if fallback is None:  # e.g. "[2]" in prose: keep looking for a list of flaw objects
            fallback = (value, base + start)
    if fallback is not None:
        return fallback[0], fallback[1], None
    assert first_err is not None
    return None, first_err[0], first_err[1]


def parse_diagnosis(text: str) -> DiagnosisParse:
    """Parse an EditRefiner / Agentic Retoucher diagnosis; never raises on a ``str`` input."""
    if not isinstance(text, str):
        return DiagnosisParse(False, problems=[DiagnosisProblem(None, f"expected str, got {type(text).__name__}")])
    reasoning = None
    think = _tag_span(text, "think")
    if think:
        reasoning = text[think[0]:think[1]].strip()
    body, base, has_answer = text, 0, False
    answer = _tag_span(text, "answer")
    if answer:
        body, base, has_answer = text[answer[0]:answer[1]], answer[0], True
    elif "<answer>" in text:
        pos = text.index("<answer>")
        return DiagnosisParse(False, problems=[DiagnosisProblem(pos, "<answer> is not closed by </answer>")],
                              reasoning=reasoning)
    elif think:
        body, base = text[think[1] + len("</think>"):], think[1] + len("</think>")
    fence = _fence_span(body)
    if fence:
        base, body = base + fence[0], body[fence[0]:fence[1]]
    value, pos, err = _first_json(body, base)
    if err is not None:
        return DiagnosisParse(False, problems=[DiagnosisProblem(pos, err)], reasoning=reasoning,
                              has_answer_tags=has_answer)
    items: list[Diagnosis] = []
    problems: list[DiagnosisProblem] = []
    fmt = "editrefiner"
    if isinstance(value, dict):
        _, inner = _pick(value, ("regions", "diagnoses", "flaws", "items"))
        if isinstance(inner, list):
            value = inner
        elif _pick(value, _TYPE_KEYS)[0] is not None:
            value = [value]
        else:  # {"<region id>": {...}} mapping
            fmt = "agentic_retoucher"
            for k, v in value.items():
                item, perr = _item(v, f"region {k!r}", region=str(k))
                if perr:
                    problems.append(DiagnosisProblem(pos, perr))
                elif item is not None:
                    items.append(item)
            value = None
    if isinstance(value, list):
        for i, obj in enumerate(value):
            item, perr = _item(obj, f"item {i}")
            if perr:
                problems.append(DiagnosisProblem(pos, perr))
            elif item is not None:
                items.append(item)
        if items and all(d.region is not None or d.bbox is not None for d in items):
            fmt = "agentic_retoucher"
    elif value is not None:
        problems.append(DiagnosisProblem(pos, f"expected a JSON list of flaws, got {type(value).__name__}"))
    # An empty list is a valid answer ("no flaws"); scoring rewards decide what it is worth.
    return DiagnosisParse(ok=not problems, items=items, problems=problems, reasoning=reasoning,
                          format=fmt, has_answer_tags=has_answer)
