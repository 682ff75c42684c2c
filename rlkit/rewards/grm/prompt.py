"""GRM prompt templates and the parser of its answers (RetouchIQ: metrics first, then a score).

The generalist reward model sees the instruction, the source image and one or more edited images. It
first writes the metrics a good edit for *this* instruction should meet, then a score per edited image
on 0-10::

    <metrics>
    1. The sky is noticeably warmer and more saturated.
    2. Skin tones stay natural.
    </metrics>
    <score>7.5</score>                     (one edited image)
    <scores>Image 1: 7.5; Image 2: 4</scores>  (several, labelled by their position in the prompt)

Model output is untrusted text: it is read with regular expressions, never evaluated.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GRMTemplate", "GRMParse", "parse_grm_output", "DEFAULT_TEMPLATE", "SCORE_MAX"]

SCORE_MAX = 10.0

_SYSTEM = (
    "You are an expert photo retoucher acting as a strict judge of image edits. You compare edited "
    "images with the source image and the user's instruction."
)
_POINTWISE = (
    "Instruction: {instruction}\n"
    "First write, inside <metrics></metrics>, 2 to 5 numbered metrics that a successful edit for this "
    "instruction and this photo should satisfy. Then rate the edited image against those metrics on a "
    "scale from 0 (fails) to 10 (perfect) as <score>N</score>."
)
_MULTI = (
    "Instruction: {instruction}\n"
    "There are {n} edited images, labelled Image 1 to Image {n}. First write, inside <metrics></metrics>, "
    "2 to 5 numbered metrics that a successful edit for this instruction and this photo should satisfy. "
    "Then rate every edited image against those metrics on a scale from 0 (fails) to 10 (perfect), as "
    "<scores>Image 1: N; Image 2: N; ...</scores>."
)


@dataclass(frozen=True)
class GRMTemplate:
    """Chat messages for the GRM: system text plus a user turn with the source and edited images."""

    system: str = _SYSTEM
    pointwise: str = _POINTWISE
    multi: str = _MULTI

    def messages(self, instruction: str, source: Any, edited: list[Any]) -> list[dict[str, Any]]:
        """OpenAI/HF-style chat messages; images are left as objects (backends encode them)."""
        if not edited:
            raise ValueError("GRMTemplate.messages: need at least one edited image")
        n = len(edited)
        text = (self.pointwise if n == 1 else self.multi).format(instruction=instruction or "(none)", n=n)
        content: list[dict[str, Any]] = [{"type": "text", "text": "Source image:"}, {"type": "image", "image": source}]
        for i, img in enumerate(edited, 1):
            label = "Edited image:" if n == 1 else f"Image {i}:"
            content += [{"type": "text", "text": label}, {"type": "image", "image": img}]
        content.append({"type": "text", "text": text})
        return [{"role": "system", "content": [{"type": "text", "text": self.system}]},
                {"role": "user", "content": content}]


DEFAULT_TEMPLATE = GRMTemplate()


@dataclass
class GRMParse:
    """Parsed GRM answer: ``scores`` (one per edited image, 0-10) or None with ``reason``."""

    ok: bool
    metrics: list[str] = field(default_factory=list)
    scores: list[float] | None = None
    reason: str | None = None

    @property
    def score(self) -> float | None:
        return self.scores[0] if self.scores and len(self.scores) == 1 else None


_METRICS_RE = re.compile(r"<metrics>(.*?)</metrics>", re.DOTALL | re.IGNORECASE)
_SCORE_RE = re.compile(r"<score>\s*(.*?)\s*</score>", re.DOTALL | re.IGNORECASE)
_SCORES_RE = re.compile(r"<scores>(.*?)</scores>", re.DOTALL | re.IGNORECASE)
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUM_RE = re.compile(rf"^({_NUM})(?:\s*/\s*10)?$")
_LABELLED_RE = re.compile(rf"(?:image|img|#)?\s*(\d+)\s*[:=]\s*({_NUM})", re.IGNORECASE)


def _number(s: str) -> float | None:
    m = _NUM_RE.match(s.strip())
    return float(m.group(1)) if m else None


def parse_grm_output(text: str, n: int = 1, *, require_metrics: bool = True) -> GRMParse:
    """Read metrics and ``n`` scores from GRM text; never raises on a ``str``.

    Scores must be finite numbers in [0, 10]; with ``n > 1`` each image 1..n must be scored exactly once.
    """
    if not isinstance(text, str):
        return GRMParse(False, reason=f"expected text, got {type(text).__name__}")
    metrics: list[str] = []
    m = _METRICS_RE.search(text)
    if m:
        for line in m.group(1).splitlines():
            line = re.sub(r"^\s*(?:\d+[.)]|[-*])\s*", "", line).strip()
            if line:
                metrics.append(line)
    if require_metrics and not metrics:
        return GRMParse(False, reason="no <metrics>...</metrics> block with at least one metric")
    if n == 1:
        sm = _SCORE_RE.findall(text)
        if not sm:
            return GRMParse(False, metrics, reason="no <score>N</score> found")
        value = _number(sm[-1])
        if value is None:
            return GRMParse(False, metrics, reason=f"score {sm[-1][:40]!r} is not a number")
        scores = [value]
    else:
        sm = _SCORES_RE.findall(text)
        if not sm:
            return GRMParse(False, metrics, reason=f"no <scores>Image 1: N; ...</scores> block for {n} images")
        found: dict[int, float] = {}
        for label, val in _LABELLED_RE.findall(sm[-1]):
            k = int(label)
            if k in found:
                return GRMParse(False, metrics, reason=f"image {k} is scored twice")
            found[k] = float(val)
        expected = set(range(1, n + 1))
        if set(found) != expected:
            return GRMParse(False, metrics, reason=f"scores for images {sorted(found)}, expected {sorted(expected)}")
        scores = [found[k] for k in range(1, n + 1)]
    for k, v in enumerate(scores, 1):
        if not math.isfinite(v) or not 0.0 <= v <= SCORE_MAX:
            return GRMParse(False, metrics, reason=f"score {v} for image {k} is outside [0, {SCORE_MAX:g}]")
    return GRMParse(True, metrics, scores)
