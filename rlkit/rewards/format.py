"""Format reward: 1 when the completion has the expected tags and its payload parses, else 0.

* JarvisArt / RetouchIQ policies: the answer must match ``<think>...</think><answer>...</answer>``
  (a regex full match, as JarvisArt's format reward) and the answer must parse as an edit program
  (``rlkit.ops.parse_program``). RetouchIQ's ``r_format`` (Eq. 2) is this check for its
  ``exposure=+0.9; contrast=-30`` operations.
* EditRefiner / Agentic Retoucher reasoning agents: the diagnosis must parse
  (``rlkit.policies.parse_diagnosis``); with ``require_tags`` it must also sit in think/answer tags.
"""

from __future__ import annotations

import re

from rlkit.rewards.batch import RewardBatch
from rlkit.rewards.protocol import Reward, RewardResult

__all__ = ["FormatReward", "THINK_ANSWER_RE", "has_think_answer_shape"]

#: the JarvisArt shape: reasoning in <think>, the payload in <answer>, nothing else around them
THINK_ANSWER_RE = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)
_THINK_THEN_ANSWER = re.compile(r"</think>\s*<answer>")


def has_think_answer_shape(text: str) -> bool:
    """``THINK_ANSWER_RE.match(text)`` in linear time (the backtracking regex is quadratic on hostile text)."""
    body = text.strip()
    if not (body.startswith("<think>") and body.endswith("</answer>")):
        return False
    hinge = _THINK_THEN_ANSWER.search(body, len("<think>"))
    return hinge is not None and hinge.end() <= len(body) - len("</answer>")

_KINDS = ("program", "diagnosis")


class FormatReward(Reward):
    """1.0 if the completion is well formed (see module doc), else 0.0 with the parse problem as reason.

    ``kind``: ``"program"`` (edit program in format ``fmt``: auto/jarvis/retouchiq/json) or ``"diagnosis"``.
    ``require_tags``: demand the think/answer shape (default: True for ``fmt="jarvis"``, else False).
    """

    def __init__(self, kind: str = "program", *, fmt: str = "auto", require_tags: bool | None = None,
                 name: str = "format") -> None:
        if kind not in _KINDS:
            raise ValueError(f"FormatReward: kind={kind!r}; expected one of {_KINDS}")
        if fmt not in ("auto", "jarvis", "retouchiq", "json"):
            raise ValueError(f"FormatReward: fmt={fmt!r}; expected auto, jarvis, retouchiq or json")
        self.kind, self.fmt, self.name = kind, fmt, name
        self.require_tags = (fmt == "jarvis") if require_tags is None else bool(require_tags)

    def compute(self, batch: RewardBatch) -> RewardResult:
        parsed = batch.parsed_programs(self.fmt) if self.kind == "program" else batch.diagnoses
        scores: list[float | None] = []
        reasons: list[str | None] = []
        for text, p in zip(batch.completions, parsed):
            if self.require_tags and not has_think_answer_shape(text):
                scores.append(0.0)
                reasons.append("not of the form <think>...</think><answer>...</answer>")
            elif self.kind == "program" and p.ok and self.fmt != "auto" and p.format != self.fmt:
                scores.append(0.0)  # parsed once, in the batch's format: the answer has another shape
                reasons.append(f"the program is written in the {p.format} form; expected {self.fmt}")
            elif not p.ok:
                probs = getattr(p, "problems", None) or []
                first = probs[0] if probs else None
                where = f" at {first.position}" if first is not None and first.position is not None else ""
                scores.append(0.0)
                reasons.append(f"{self.kind} did not parse{where}: {first.reason if first else 'unknown'}")
            else:
                scores.append(1.0)
                reasons.append(None)
        return RewardResult(scores, reasons=reasons)
