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

Model output is untrusted text: it is scanned once with bounded patterns (linear time), never evaluated.
:func:`format_grm_answer` writes the same form (the GRM's SFT targets).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GRMTemplate", "GRMParse", "parse_grm_output", "format_grm_answer", "DEFAULT_TEMPLATE", "SCORE_MAX",
           "map_content_blocks"]

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


# Bounded quantifiers only (no nested or unbounded repeats): every pattern does O(1) work per start position,
# so a scan is linear in the text whatever a model writes.
_NUM = r"[-+]?(?:\d{1,6}(?:\.\d{0,6})?|\.\d{1,6})"
_NUM_RE = re.compile(rf"({_NUM})(?:[ \t]{{0,4}}/[ \t]{{0,4}}10)?")
_LABELLED_RE = re.compile(
    rf"(?:image|img|#)?[ \t]{{0,8}}(\d{{1,3}})[ \t]{{0,8}}[:=][ \t]{{0,8}}({_NUM})(?:[ \t]{{0,4}}/[ \t]{{0,4}}10)?",
    re.IGNORECASE)
_ITEM_RE = re.compile(r"^[ \t]{0,16}(?:\d{1,3}[.)]|[-*])?[ \t]{0,16}")
_MAX_BLOCK = 4000  # longer score blocks are not answers


def _blocks(text: str, lower: str, tag: str) -> list[str]:
    """The contents of every closed ``<tag>...</tag>`` (case-insensitive), found in one left-to-right pass."""
    open_t, close_t = f"<{tag}>", f"</{tag}>"
    out, pos = [], 0
    while True:
        i = lower.find(open_t, pos)
        if i < 0:
            return out
        j = lower.find(close_t, i + len(open_t))
        if j < 0:
            return out
        out.append(text[i + len(open_t):j])
        pos = j + len(close_t)


def _number(s: str) -> float | None:
    s = s.strip()
    if len(s) > 40:
        return None
    m = _NUM_RE.fullmatch(s)
    return float(m.group(1)) if m else None


def _snippet(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return repr(s if len(s) <= n else s[:n] + "...")


def _labelled_scores(body: str, n: int) -> tuple[list[float] | None, str | None]:
    """Scores of images 1..n from a ``<scores>`` body, or the reason it does not name each image once."""
    if len(body) > _MAX_BLOCK:
        return None, f"<scores> block is {len(body)} characters long (at most {_MAX_BLOCK})"
    found: dict[int, float] = {}
    for m in _LABELLED_RE.finditer(body):
        k = int(m.group(1))
        if k in found:
            return None, f"image {k} is scored twice (two scores for one image)"
        if not 1 <= k <= n:
            return None, f"pair order confused: image {k} is scored but only images 1 to {n} were shown"
        found[k] = float(m.group(2))
    rest = _LABELLED_RE.sub(" ", body)
    if any(ch.isdigit() for ch in rest):
        return None, (f"pair order confused: number(s) without an image label in <scores> ({_snippet(rest)}); "
                      "expected 'Image 1: N; Image 2: N'")
    expected = list(range(1, n + 1))
    if sorted(found) != expected:
        return None, f"no score for some image: scores for images {sorted(found)}, expected {expected}"
    return [found[k] for k in expected], None


def parse_grm_output(text: str, n: int = 1, *, require_metrics: bool = True) -> GRMParse:
    """Read metrics and ``n`` scores from GRM text; never raises on a ``str``, runs in linear time.

    A failure names its reason: no score, two scores for one image (two ``<score>`` tags, or an image
    labelled twice), a score that is not a number or lies outside [0, 10], or a confused pair order (scores
    without image labels, labels beyond the images shown, ``<score>`` tags where several images need a
    labelled ``<scores>`` block). With ``n > 1`` each image 1..n must be scored exactly once.
    """
    if not isinstance(text, str):
        return GRMParse(False, reason=f"expected text, got {type(text).__name__}")
    if n < 1:
        raise ValueError(f"parse_grm_output: n must be >= 1, got {n}")
    lower = text.lower()
    metrics: list[str] = []
    mb = _blocks(text, lower, "metrics")
    if mb:
        for line in mb[0].splitlines():
            line = line[_ITEM_RE.match(line).end():].strip()  # type: ignore[union-attr]
            if line:
                metrics.append(line)
    if require_metrics and not metrics:
        return GRMParse(False, reason="no <metrics>...</metrics> block with at least one metric")
    singles = _blocks(text, lower, "score")
    multis = _blocks(text, lower, "scores")
    if n == 1:
        if not singles:
            why = " (a <scores> block is for several images)" if multis else ""
            return GRMParse(False, metrics, reason=f"no <score>N</score> found{why}")
        if len(singles) > 1:
            return GRMParse(False, metrics, reason=f"two scores for one image: {len(singles)} <score> tags")
        value = _number(singles[0])
        if value is None:
            return GRMParse(False, metrics, reason=f"score {_snippet(singles[0])} is not a number")
        scores = [value]
    else:
        if not multis:
            if singles:
                return GRMParse(False, metrics, reason=(
                    f"pair order confused: {len(singles)} unlabelled <score> tag(s) for {n} images; expected "
                    "<scores>Image 1: N; Image 2: N</scores>"))
            return GRMParse(False, metrics, reason=f"no <scores>Image 1: N; ...</scores> block for {n} images")
        if len(multis) > 1:
            return GRMParse(False, metrics, reason=f"{len(multis)} <scores> blocks; expected one")
        got, why = _labelled_scores(multis[0], n)
        if got is None:
            return GRMParse(False, metrics, reason=why)
        scores = got
    for k, v in enumerate(scores, 1):
        if not math.isfinite(v) or not 0.0 <= v <= SCORE_MAX:
            return GRMParse(False, metrics, reason=f"score {v:g} for image {k} is outside [0, {SCORE_MAX:g}]")
    return GRMParse(True, metrics, scores)


def format_grm_answer(metrics: Sequence[str], scores: Sequence[float]) -> str:
    """The GRM answer :func:`parse_grm_output` reads: numbered metrics, then ``<score>`` (one image) or a
    labelled ``<scores>`` block (several). Used to write SFT targets; raises on what the parser would reject."""
    items = [" ".join(str(m).split()) for m in metrics]
    if not items or any(not m or "<" in m or ">" in m for m in items):
        raise ValueError(f"format_grm_answer: need non-empty metrics without '<' or '>', got {list(metrics)!r}")
    if not scores:
        raise ValueError("format_grm_answer: need at least one score")
    for k, v in enumerate(scores, 1):
        if not math.isfinite(float(v)) or not 0.0 <= float(v) <= SCORE_MAX:
            raise ValueError(f"format_grm_answer: score {v} for image {k} is outside [0, {SCORE_MAX:g}]")
    body = "\n".join(f"{i}. {m}" for i, m in enumerate(items, 1))
    if len(scores) == 1:
        tail = f"<score>{float(scores[0]):g}</score>"
    else:
        tail = "<scores>" + "; ".join(f"Image {k}: {float(v):g}" for k, v in enumerate(scores, 1)) + "</scores>"
    return f"<metrics>\n{body}\n</metrics>\n{tail}"


def map_content_blocks(messages: Sequence[Mapping[str, Any]], fn: Callable[[dict[str, Any]], dict[str, Any]]
                       ) -> list[dict[str, Any]]:
    """Chat messages with every block of a list content replaced by ``fn(block)`` (string contents kept, a
    missing role read as "user"): how images are encoded for an HTTP request and decoded by the server."""
    out = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, list):
            c = [fn(b) for b in c]
        out.append({"role": m.get("role", "user"), "content": c})
    return out
