"""The action agent: a diagnosis (flaw types + descriptions) and a mask / boxes -> one repair tool call.

Both papers' action agents pick a tool and write its text: Agentic Retoucher chooses "between VLM-based or
mask-guided inpainting from a modular tool library" depending on "computational constraints or user
preferences" and writes the inpainting instruction (Sec. 4.3); EditRefiner turns the diagnosis into "a
controllable re-editing instruction" for an editing model that sees the source, the current image and the
mask (Sec. 4.4). :class:`ActionAgent` does both:

1. **VLM planner** (optional): any chat VLM behind ``backend.generate(requests) -> replies`` (an in-process
   ``rlkit.rewards.TransformersBackend`` or an OpenAI-compatible server through ``rlkit.rewards.OpenAIBackend``;
   a reply is a string or has ``.text`` / ``.error``). It is shown the current image, the instruction, the
   regions, the diagnosis and the tools it may use, and answers ``{"tool": <name>, "text": <prompt or
   instruction>}`` (JSON, optionally in ``<answer>`` tags or a code fence). The whole call has one overall
   ``deadline`` (seconds); the answer is untrusted text, read with :mod:`json` only (linear time, never
   evaluated) and checked: a known, allowed, affordable tool and a non-empty text of at most ``max_text``
   characters.
2. **Rule-based fallback** (always available; used without a backend and whenever the VLM's answer is late,
   fails or is rejected, with the reason kept in :attr:`ToolCall.reason`): editing failures
   (``missing_edit``, ``incorrect_edit``, ``unintended_edit``, anything naming an edit) go to an instruction
   editor when one is allowed, everything else to mask-based inpainting; the text comes from templates per
   flaw type (:func:`rule_text`).

Constraints (:class:`ActionConstraints`): the allowed tools, the preferred kind, and a compute budget in the
tools' ``cost`` units (the caller passes what is left; a tool costing more is not chosen). Tools are tried in
the order given (the user's preference). Nothing can be done -> :class:`ActionError` naming why.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rlkit.policies.diagnosis import Diagnosis, normalize_flaw_type

__all__ = [
    "TOOL_KINDS",
    "EDIT_FAILURES",
    "ToolSpec",
    "ActionConstraints",
    "ToolCall",
    "ActionError",
    "ChatBackend",
    "ActionAgent",
    "rule_text",
    "action_messages",
    "parse_action_answer",
]

TOOL_KINDS = ("inpaint", "edit")
"""``inpaint``: mask-based inpainting (SD-inpaint, Flux-Fill, ...); ``edit``: instruction editing."""
EDIT_FAILURES = ("missing edit", "incorrect edit", "unintended edit")
"""EditRefiner's editing-failure types (normalised), repaired by re-editing rather than inpainting."""
MAX_ANSWER_CHARS = 20_000
"""Longer VLM answers are cut before parsing (a tool call is a few hundred characters)."""


@dataclass(frozen=True)
class ToolSpec:
    """A repair tool the agent may call: its ``name``, ``kind`` (``inpaint`` / ``edit``), ``cost`` per call in
    budget units (e.g. relative GPU seconds) and a one-line ``description`` shown to the VLM planner."""

    name: str
    kind: str
    cost: float = 1.0
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"ToolSpec: name must be a non-empty string, got {self.name!r}")
        if self.kind not in TOOL_KINDS:
            raise ValueError(f"ToolSpec {self.name!r}: kind must be one of {TOOL_KINDS}, got {self.kind!r}")
        if not float(self.cost) >= 0.0:
            raise ValueError(f"ToolSpec {self.name!r}: cost must be >= 0, got {self.cost!r}")


@dataclass(frozen=True)
class ActionConstraints:
    """User / environment constraints: ``allowed_tools`` (None = all), ``prefer`` a kind (``inpaint`` /
    ``edit``; None = by flaw type), ``max_cost`` per call in the tools' cost units (None = no limit)."""

    allowed_tools: tuple[str, ...] | None = None
    prefer: str | None = None
    max_cost: float | None = None

    def __post_init__(self) -> None:
        if self.prefer is not None and self.prefer not in TOOL_KINDS:
            raise ValueError(f"ActionConstraints: prefer must be None or one of {TOOL_KINDS}, got {self.prefer!r}")
        if self.max_cost is not None and not float(self.max_cost) >= 0:
            raise ValueError(f"ActionConstraints: max_cost must be >= 0, got {self.max_cost!r}")


@dataclass
class ToolCall:
    """One planned repair: ``tool`` (a :class:`ToolSpec` name) of ``kind``, its ``text`` (inpainting prompt or
    editing instruction), the (H, W) bool ``mask``, the region ``boxes``, the ``flaw_types`` it addresses, who
    planned it (``planner``: ``"vlm"`` / ``"rules"``), ``cost``, and ``reason`` (why the rules were used)."""

    tool: str
    kind: str
    text: str
    mask: np.ndarray
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    flaw_types: list[str] = field(default_factory=list)
    planner: str = "rules"
    cost: float = 0.0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the mask as its area fraction)."""
        return {"tool": self.tool, "kind": self.kind, "text": self.text, "boxes": [list(b) for b in self.boxes],
                "mask_area": round(float(self.mask.mean()), 6) if self.mask.size else 0.0,
                "flaw_types": list(self.flaw_types), "planner": self.planner, "cost": self.cost,
                "reason": self.reason}


class ActionError(ValueError):
    """No tool call can be made (empty mask, no allowed or affordable tool, bad diagnosis); the message says why."""


class ChatBackend(Protocol):
    """What the VLM planner needs: ``generate(requests)`` -> one reply per request (str, or ``.text``/``.error``)."""

    def generate(self, requests: Sequence[list[dict[str, Any]]]) -> Sequence[Any]: ...


def _as_diagnoses(diagnoses: Sequence[Diagnosis | Mapping[str, Any]]) -> list[Diagnosis]:
    out = []
    for i, d in enumerate(diagnoses):
        if isinstance(d, Diagnosis):
            out.append(d)
        elif isinstance(d, Mapping) and isinstance(d.get("flaw_type"), str):
            out.append(Diagnosis(d["flaw_type"], str(d.get("description") or "")))
        else:
            raise ActionError(f"diagnosis {i}: expected a Diagnosis or a dict with a 'flaw_type' string, got {d!r}")
    return out


def _is_edit_failure(flaw_type: str) -> bool:
    t = normalize_flaw_type(flaw_type)
    return t in EDIT_FAILURES or t.endswith(" edit") or "editing" in t


def rule_text(kind: str, diagnoses: Sequence[Diagnosis], *, instruction: str | None = None,
              max_text: int = 300) -> str:
    """The templated prompt (``inpaint``) or instruction (``edit``) for ``diagnoses``.

    inpaint: ``"<instruction or scene>, natural and clean: no <flaw types>"``; edit, per flaw type:
    missing -> the instruction applied in the marked area, incorrect -> redo it there, unintended -> restore
    the area from the source, an artifact -> remove it there. Sentences are joined once each, cut at
    ``max_text`` characters.
    """
    types = list(dict.fromkeys(normalize_flaw_type(d.flaw_type) for d in diagnoses)) or ["flaw"]
    ins = (instruction or "").strip().rstrip(".")
    if kind == "inpaint":
        scene = ins or "the surrounding content"
        text = f"{scene}, natural and clean: no {', '.join(types)}"
    elif kind == "edit":
        parts = []
        for t in types:
            if t == "missing edit":
                parts.append(f"{ins or 'Apply the requested edit'} in the marked area.")
            elif t == "incorrect edit":
                parts.append(f"Redo the marked area correctly: {ins or 'follow the instruction'}.")
            elif t == "unintended edit":
                parts.append("Restore the marked area to match the source image.")
            else:
                parts.append(f"Remove the {t} in the marked area; keep everything else unchanged.")
        text = " ".join(dict.fromkeys(parts))
    else:
        raise ActionError(f"tool kind must be one of {TOOL_KINDS}, got {kind!r}")
    return text[:max_text]


_SYSTEM = ("You are the action agent of an image-refinement loop. Given the current image, the flaws a reasoning "
           "agent found and where, choose ONE repair tool from the list and write its text: an inpainting prompt "
           "describing what the masked area should show (inpaint tools) or a short re-editing instruction (edit "
           'tools). Answer only with JSON: {"tool": "<tool name>", "text": "<prompt or instruction>"}.')


def action_messages(tools: Sequence[ToolSpec], diagnoses: Sequence[Diagnosis], boxes: Sequence[Sequence[int]], *,
                    instruction: str | None = None, image: Any = None) -> list[dict[str, Any]]:
    """The planner's chat request: system (the task and answer format), user (image, instruction, regions,
    diagnosis, tools)."""
    lines = []
    if instruction:
        lines.append(f"Instruction / prompt: {instruction}")
    if boxes:
        lines.append("Regions: " + " ".join(f"<box>[{', '.join(str(int(c)) for c in b)}]</box>" for b in boxes))
    lines.append("Flaws: " + json.dumps([{"flaw_type": d.flaw_type, "description": d.description} for d in diagnoses]))
    lines.append("Tools:")
    lines += [f"- {t.name} ({t.kind}, cost {t.cost:g}){': ' + t.description if t.description else ''}" for t in tools]
    content: list[dict[str, Any]] = [{"type": "image", "image": image}] if image is not None else []
    content.append({"type": "text", "text": "\n".join(lines)})
    return [{"role": "system", "content": [{"type": "text", "text": _SYSTEM}]}, {"role": "user", "content": content}]


def parse_action_answer(text: str) -> tuple[str, str]:
    """``(tool, text)`` from a planner answer: the first JSON object (in ``<answer>`` tags or a code fence if
    present) with string ``tool`` and ``text`` (``prompt`` / ``instruction`` accepted for ``text``).
    Raises :class:`ActionError` naming the problem; linear in the answer's length."""
    if not isinstance(text, str):
        raise ActionError(f"the planner's answer is {type(text).__name__}, not text")
    text = text[:MAX_ANSWER_CHARS]
    start = text.find("<answer>")
    if start >= 0:
        end = text.find("</answer>", start)
        text = text[start + len("<answer>"):end if end >= 0 else len(text)]
    brace = text.find("{")
    if brace < 0:
        raise ActionError("the planner's answer holds no JSON object")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text, brace)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ActionError(f"the planner's JSON does not parse at position {getattr(exc, 'pos', '?')}: "
                          f"{getattr(exc, 'msg', exc)}") from None
    if not isinstance(obj, dict):
        raise ActionError(f"the planner's answer is a JSON {type(obj).__name__}, not an object")
    tool = obj.get("tool")
    body = next((obj[k] for k in ("text", "prompt", "instruction") if isinstance(obj.get(k), str)), None)
    if not isinstance(tool, str) or body is None:
        raise ActionError(f"the planner's JSON needs string 'tool' and 'text' fields, got keys {sorted(obj)}")
    return tool.strip(), body.strip()


def _reply_text(reply: Any) -> str:
    if isinstance(reply, str):
        return reply
    err = getattr(reply, "error", None)
    txt = getattr(reply, "text", None)
    if txt is None:
        raise ActionError(f"the planner backend failed: {err or 'no text in its reply'}")
    return str(txt)


class ActionAgent:
    """Diagnosis + mask/boxes -> :class:`ToolCall` (see the module docstring).

    ``tools``: the tool library, in order of preference; ``backend``: optional chat VLM (``generate``) for the
    planner; ``deadline``: overall seconds for one planner call; ``constraints``: default
    :class:`ActionConstraints`; ``max_text``: longest prompt / instruction (characters).
    """

    def __init__(self, tools: Sequence[ToolSpec], *, backend: ChatBackend | None = None, deadline: float = 30.0,
                 constraints: ActionConstraints | None = None, max_text: int = 300) -> None:
        tools = list(tools)
        if not tools:
            raise ValueError("ActionAgent needs at least one ToolSpec")
        bad = [t for t in tools if not isinstance(t, ToolSpec)]
        if bad:
            raise TypeError(f"ActionAgent: tools must be ToolSpec objects, got {type(bad[0]).__name__}")
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ValueError(f"ActionAgent: tool names must be distinct, got {names}")
        if backend is not None and not callable(getattr(backend, "generate", None)):
            raise TypeError(f"ActionAgent: backend needs a generate(requests) method, got {type(backend).__name__}")
        if not float(deadline) > 0:
            raise ValueError(f"ActionAgent: deadline must be > 0 seconds, got {deadline!r}")
        if int(max_text) < 1:
            raise ValueError(f"ActionAgent: max_text must be >= 1, got {max_text!r}")
        self.tools = tools
        self.backend = backend
        self.deadline = float(deadline)
        self.constraints = constraints or ActionConstraints()
        self.max_text = int(max_text)

    def usable_tools(self, constraints: ActionConstraints | None = None,
                     budget_left: float | None = None) -> list[ToolSpec]:
        """Tools allowed by ``constraints`` and affordable within ``budget_left`` (and the per-call limit)."""
        c = constraints or self.constraints
        if c.allowed_tools is not None:
            unknown = sorted(set(c.allowed_tools) - {t.name for t in self.tools})
            if unknown:
                raise ActionError(f"allowed_tools names unknown tools {unknown}; the library has "
                                  f"{[t.name for t in self.tools]}")
        limits = [v for v in (c.max_cost, budget_left) if v is not None]
        cap = min(limits) if limits else None
        return [t for t in self.tools
                if (c.allowed_tools is None or t.name in c.allowed_tools) and (cap is None or t.cost <= cap)]

    def plan(self, diagnoses: Sequence[Diagnosis | Mapping[str, Any]], mask: Any, *,
             boxes: Sequence[Sequence[float]] | None = None, instruction: str | None = None, image: Any = None,
             constraints: ActionConstraints | None = None, budget_left: float | None = None) -> ToolCall:
        """The tool call repairing ``mask`` ((H, W), nonzero = repair) for ``diagnoses``.

        ``instruction``: the editing instruction (EditRefiner) or T2I prompt (Agentic Retoucher); ``image``:
        the current image (shown to the VLM planner); ``budget_left``: remaining budget in cost units.
        """
        diags = _as_diagnoses(diagnoses)
        m = np.asarray(mask)
        if m.ndim != 2:
            raise ActionError(f"mask must be a 2-D (H, W) array, got shape {m.shape}")
        m = m.astype(bool)
        if not m.any():
            raise ActionError("the mask is empty: there is no region to repair")
        box_list = [tuple(int(round(float(v))) for v in b) for b in (boxes or [])]
        if any(len(b) != 4 for b in box_list):
            raise ActionError(f"boxes must be [x1, y1, x2, y2], got {[list(b) for b in box_list]}")
        tools = self.usable_tools(constraints, budget_left)
        if not tools:
            c = constraints or self.constraints
            raise ActionError(f"no tool is allowed and affordable (allowed: {c.allowed_tools}, per-call limit: "
                              f"{c.max_cost}, budget left: {budget_left}; costs: "
                              f"{ {t.name: t.cost for t in self.tools} })")
        types = [d.flaw_type for d in diags]
        reason = None
        if self.backend is not None:
            try:
                tool, text = self._ask(tools, diags, box_list, instruction, image)
                spec = next(t for t in tools if t.name == tool)
                return ToolCall(spec.name, spec.kind, text, m, list(box_list), types, "vlm", spec.cost)  # type: ignore[arg-type]
            except ActionError as exc:
                reason = f"VLM planner not used ({exc}); rule-based fallback"
        spec = self._rule_tool(tools, diags, constraints or self.constraints)
        return ToolCall(spec.name, spec.kind, rule_text(spec.kind, diags, instruction=instruction, max_text=self.max_text),
                        m, list(box_list), types, "rules", spec.cost, reason)  # type: ignore[arg-type]

    @staticmethod
    def _rule_tool(tools: list[ToolSpec], diags: list[Diagnosis], c: ActionConstraints) -> ToolSpec:
        want = c.prefer or ("edit" if any(_is_edit_failure(d.flaw_type) for d in diags) else "inpaint")
        return next((t for t in tools if t.kind == want), tools[0])

    def _ask(self, tools: list[ToolSpec], diags: list[Diagnosis], boxes: list[tuple[int, ...]],
             instruction: str | None, image: Any) -> tuple[str, str]:
        """One planner call under the overall deadline; the checked (tool, text)."""
        request = action_messages(tools, diags, boxes, instruction=instruction, image=image)
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["replies"] = list(self.backend.generate([request]))  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - any backend failure means: use the rules
                box["error"] = f"{type(exc).__name__}: {exc}"

        worker = threading.Thread(target=call, daemon=True, name="rlkit-action-planner")
        worker.start()
        worker.join(self.deadline)
        if worker.is_alive():  # the thread is left to finish on its own; its answer is ignored
            raise ActionError(f"the planner did not answer within the {self.deadline:g} s deadline")
        if "error" in box:
            raise ActionError(f"the planner backend failed: {box['error']}")
        replies = box.get("replies") or []
        if len(replies) != 1:
            raise ActionError(f"the planner backend returned {len(replies)} replies for 1 request")
        tool, text = parse_action_answer(_reply_text(replies[0]))
        if tool not in {t.name for t in tools}:
            raise ActionError(f"the planner chose {tool!r}, which is not an allowed, affordable tool "
                              f"({[t.name for t in tools]})")
        if not text:
            raise ActionError("the planner wrote an empty text")
        if len(text) > self.max_text:
            raise ActionError(f"the planner's text has {len(text)} characters (limit {self.max_text})")
        return tool, text
