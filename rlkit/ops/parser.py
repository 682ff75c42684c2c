"""Text forms of edit programs: parse policy output safely (never evaluate it) and render programs back.

Formats:
- ``"jarvis"``: ``<think>reasoning</think><answer>{flat JSON of Lightroom keys}</answer>`` (JarvisArt);
- ``"retouchiq"``: reasoning, then ``exposure=+0.9; contrast=-30`` (optionally inside braces; values may be
  numbers or, for ``tone_curve`` / ``local``, JSON);
- ``"json"``: rlkit's canonical JSON (``EditProgram.to_dict()``), optionally after free-text reasoning.

:func:`parse_program` never raises on any ``str``: failures come back as :class:`ParseProblem` values. Model
output is untrusted, so its time is linear in the text length whatever the repetition or nesting, and no input
deepens its recursion past a fixed bound: tags and fences are found with ``str.find`` from known positions (never
a lazy ``(.*?)`` retried from every start), leading think blocks are read in a loop, and JSON reaches json's
recursive decoder only after a scan shows it nests at most ``_MAX_JSON_NEST`` levels.
:func:`as_program` turns text, a dict or a program into an :class:`EditProgram`, raising :class:`ProgramError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TypeVar

from .errors import ProgramError
from .lightroom import program_to_lightroom
from .params import canonical_name
from .program import ClampNote, EditProgram

__all__ = ["ParseProblem", "ParseResult", "parse_program", "render_program", "as_program", "json_too_deep",
           "FORMATS", "MAX_TEXT_CHARS"]

FORMATS = ("auto", "jarvis", "retouchiq", "json")
MAX_TEXT_CHARS = 200_000
_MAX_JSON_DEPTH = 32
# JSON nested deeper than this is refused before json's recursive decoder sees it (so no text reaches the
# interpreter's recursion limit); far above _MAX_JSON_DEPTH, which valid programs respect anyway
_MAX_JSON_NEST = 200
_WS_RUN = re.compile(r"\s*")
_JSON_WS = re.compile(r"[ \t\n\r]*")  # what json.loads skips before the value


@dataclass(frozen=True)
class ParseProblem:
    """One thing wrong with the text: character offset (or None) and a reason."""

    position: int | None
    reason: str

    def __str__(self) -> str:
        return f"at {self.position}: {self.reason}" if self.position is not None else self.reason


@dataclass(frozen=True)
class ParseResult:
    """Outcome of :func:`parse_program`.

    ``ok`` is True only for fully well-formed text. ``program`` is set whenever an executable program
    could be recovered (even if the envelope was malformed), so format and execution can be scored apart.
    """

    ok: bool
    program: EditProgram | None
    problems: list[ParseProblem] = field(default_factory=list)
    reasoning: str | None = None
    format: str = "auto"
    notes: list[ClampNote] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


class _Reject(ValueError):
    pass


def _reject_constant(name: str) -> NoReturn:
    raise _Reject(f"{name} is not a valid number")


def _depth(obj: object, d: int = 0) -> int:
    if d > _MAX_JSON_DEPTH:
        return d
    if isinstance(obj, dict):
        return max([_depth(v, d + 1) for v in obj.values()] or [d + 1])
    if isinstance(obj, list):
        return max([_depth(v, d + 1) for v in obj] or [d + 1])
    return d


class _TooDeep(Exception):
    """JSON nested deeper than ``_MAX_JSON_NEST``: refused before decoding (reported like a RecursionError)."""


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_STRUCTURE = re.compile(r'[\[\]{}"]')
_STRING_STOP = re.compile(r'["\\]')


def _bracket_scan(s: str, i: int, limit: int) -> tuple[int, int]:
    """Scan the bracket block opened at ``s[i]`` ('[' or '{'), skipping JSON strings: (index just past its
    closing bracket or -1 if it never closes, index of the bracket that opens level ``limit + 1`` or -1).

    The scan stops at whichever comes first, so it reads each character at most once.
    """
    depth, j = 0, i
    while True:
        m = _STRUCTURE.search(s, j)
        if m is None:
            return -1, -1
        k = m.start()
        c = s[k]
        j = k + 1
        if c == '"':  # skip the string: a backslash escapes the next character
            while True:
                m = _STRING_STOP.search(s, j)
                if m is None:
                    return -1, -1
                if s[m.start()] == '"':
                    j = m.start() + 1
                    break
                j = m.start() + 2
        elif c in "[{":
            depth += 1
            if depth > limit:
                return -1, k
        else:
            depth -= 1
            if depth == 0:
                return j, -1


_T = TypeVar("_T")


def _bounded(decode: Callable[[str], _T], s: str, i: int) -> _T:
    """``decode(s)`` (a json decode of the value at ``s[i]``) unless that value nests deeper than
    ``_MAX_JSON_NEST``: then the error json reports before reaching that depth, else :class:`_TooDeep`.

    json's decoder recurses once per bracket level; this keeps it far from the interpreter's recursion limit.
    """
    if i >= len(s) or s[i] not in "[{" or s.count("[", i) + s.count("{", i) <= _MAX_JSON_NEST:
        return decode(s)
    deep = _bracket_scan(s, i, _MAX_JSON_NEST)[1]
    if deep < 0:
        return decode(s)
    try:  # the text before the too-deep bracket: json stops there with the same error, if it has one
        decode(s[:deep])
    except json.JSONDecodeError as e:
        if e.pos < deep or e.msg != "Expecting value":
            raise
    raise _TooDeep


def json_too_deep(s: str, i: int, limit: int = _MAX_JSON_NEST) -> bool:
    """Whether the JSON value opened at ``s[i]`` nests deeper than ``limit`` levels (one linear scan), so a
    parser of untrusted text can refuse it before json's recursive decoder runs."""
    if i >= len(s) or s[i] not in "[{":
        return False
    return _bracket_scan(s, i, limit)[1] >= 0  # stops where the value closes or at depth limit + 1


def _loads(s: str, offset: int, problems: list[ParseProblem]) -> tuple[Any, bool]:
    """Strict JSON (no NaN/Infinity, bounded depth); problems carry absolute positions."""
    if s.count("[") + s.count("{") > 200_000:
        problems.append(ParseProblem(offset, "JSON too large"))
        return None, False
    try:
        obj = _bounded(lambda t: json.loads(t, parse_constant=_reject_constant), s, _JSON_WS.match(s).end())
    except json.JSONDecodeError as e:
        problems.append(ParseProblem(offset + e.pos, f"invalid JSON: {e.msg}"))
        return None, False
    except (RecursionError, _TooDeep):
        problems.append(ParseProblem(offset, "invalid JSON: nested too deeply"))
        return None, False
    except (ValueError, OverflowError) as e:
        problems.append(ParseProblem(offset, f"invalid JSON: {e}"))
        return None, False
    if _depth(obj) > _MAX_JSON_DEPTH:
        problems.append(ParseProblem(offset, f"invalid JSON: nested deeper than {_MAX_JSON_DEPTH}"))
        return None, False
    return obj, True


def _strip_fence(s: str, offset: int) -> tuple[str, int]:
    """The content of ``s`` when all of it is one code fence (```json ... ```), else ``s`` stripped; with its
    offset. The fences are the text's first and last non-space characters, so no search is needed."""
    lead = _WS_RUN.match(s).end()
    tail = len(s.rstrip())
    close = tail - 3  # the closing fence, if any: the last three characters before trailing space
    if s.startswith("```", lead) and close >= lead + 3 and s.startswith("```", close):
        start = lead + 3
        if s.startswith(("json", "JSON"), start):
            start += 4
        start = _WS_RUN.match(s, start, close).end()
        end = max(start, len(s[:close].rstrip()))
        return s[start:end], offset + start
    return s[lead:tail], offset + lead


def _program_from_obj(obj: object, pos: int, clamp: bool, problems: list[ParseProblem],
                      notes: list[ClampNote], text: str = "") -> EditProgram | None:
    """The program of a decoded JSON object; ``text`` is its source, starting at offset ``pos``."""
    if not isinstance(obj, dict):
        problems.append(ParseProblem(pos, f"expected a JSON object of parameters, got {type(obj).__name__}"))
        return None
    first: list[ClampNote] = []
    try:
        program = EditProgram.from_dict(obj, clamp=clamp, notes=first)
        notes.extend(first)
        return program
    except (ProgramError, TypeError, ValueError, OverflowError):
        pass
    # something is wrong: validate key by key, report each bad key at its position in the text and keep the
    # valid ones (as the name=value form does), so one misspelt or out-of-range key does not void the program
    entries = [((k,), {k: v}) for k, v in obj.items() if k != "params" or not isinstance(v, dict)]
    if isinstance(obj.get("params"), dict):  # nested form {"params": {...}}
        entries += [(("params", k), {"params": {k: v}}) for k, v in obj["params"].items()]
    good: dict[str, Any] = {}
    bad: list[tuple[Any, str]] = []  # (key, reason), in the object's order
    for path, one in entries:
        try:
            EditProgram.from_dict(one, clamp=clamp, notes=[])
        except ProgramError as e:
            bad.append((path[-1], str(e)))
            continue
        except (TypeError, ValueError, OverflowError) as e:  # defensive: malformed nested values
            bad.append((path[-1], f"invalid program: {e}"))
            continue
        if len(path) == 1:
            good[path[0]] = one[path[0]]
        else:
            good.setdefault("params", {})[path[1]] = one["params"][path[1]]
    positions = _key_positions(text, [key for key, _ in bad], pos)
    problems.extend(ParseProblem(at, reason) for at, (_, reason) in zip(positions, bad))
    if not good:
        return None
    try:
        return EditProgram.from_dict(good, clamp=clamp, notes=notes)
    except (ProgramError, TypeError, ValueError, OverflowError) as e:  # pragma: no cover - each key passed alone
        problems.append(ParseProblem(pos, f"invalid program: {e}"))
    return None


_BACKSLASHES_QUOTE = re.compile(r'(?<!\\)\\*"')  # a quote and the run of backslashes before it


def _key_positions(text: str, keys: list[object], default: int) -> list[int]:
    """Offset of the first occurrence of each JSON key ``"key"`` in ``text`` (which starts at offset
    ``default``), else ``default``: ``text.find`` for a few keys, one pass over the quotes for many."""
    patterns = [json.dumps(k) if isinstance(k, str) else None for k in keys]
    wanted = {p for p in patterns if p is not None}
    if len(wanted) <= 8:
        first = {p: text.find(p) for p in wanted}
    else:
        first = _first_quoted(text, wanted)
    return [default + first[p] if p is not None and first.get(p, -1) >= 0 else default for p in patterns]


def _first_quoted(text: str, wanted: set[str]) -> dict[str, int]:
    """Offset of the first occurrence in ``text`` of each of ``wanted`` (JSON strings, quotes included).

    A JSON string starting at a quote ends at the next quote preceded by an even run of backslashes, so an
    occurrence at quote ``q`` is exactly ``text[q:end(q) + 1]``: each quote is compared once (a set lookup),
    instead of one ``find`` over the text per key.
    """
    quotes, unescaped = [], []
    for m in _BACKSLASHES_QUOTE.finditer(text):
        quotes.append(m.end() - 1)
        unescaped.append((m.end() - 1 - m.start()) % 2 == 0)
    lengths = {len(p) for p in wanted}
    end_of = [-1] * len(quotes)
    nxt = -1
    for k in range(len(quotes) - 1, -1, -1):
        end_of[k] = nxt
        if unescaped[k]:
            nxt = quotes[k]
    first: dict[str, int] = {}
    for q, e in zip(quotes, end_of):
        if e >= 0 and e - q + 1 in lengths:
            s = text[q:e + 1]
            if s in wanted and s not in first:
                first[s] = q
    return first


def _jarvis_envelope(text: str) -> tuple[int, int, int, int] | None:
    """Where ``text`` is ``<think>R</think><answer>B</answer>`` (space allowed around the tags): the
    offsets (start, end) of R and of B, else None. R ends at the first ``</think>`` followed by ``<answer>``;
    B runs to the ``</answer>`` that ends the text."""
    a = _WS_RUN.match(text).end()
    close = len(text.rstrip()) - 9
    if not text.startswith("<think>", a) or close < 0 or not text.startswith("</answer>", close):
        return None
    t = text.find("</think>", a + 7)
    while t >= 0:
        b = _WS_RUN.match(text, t + 8).end()
        if text.startswith("<answer>", b) and b + 8 <= close:
            return a + 7, t, b + 8, close
        t = text.find("</think>", t + 8)
    return None


def _tag_span(text: str, tag: str) -> tuple[int, int] | None:
    """(start, end) of the content of the first ``<tag>...</tag>`` in ``text``, else None."""
    i = text.find(f"<{tag}>")
    j = text.find(f"</{tag}>", i + len(tag) + 2) if i >= 0 else -1
    return (i + len(tag) + 2, j) if j >= 0 else None


def _parse_jarvis(text: str, clamp: bool) -> ParseResult:
    problems: list[ParseProblem] = []
    notes: list[ClampNote] = []
    m = _jarvis_envelope(text)
    reasoning = None
    if m:
        think = text[m[0]:m[1]]
        reasoning, body, start = think.strip(), text[m[2]:m[3]], m[2]
        for tag in ("<think>", "</think>", "<answer>", "</answer>"):
            if tag in think or tag in body:
                problems.append(ParseProblem(m[0], f"nested or repeated {tag} tag"))
                break
    else:
        problems.append(ParseProblem(0, "text does not match <think>...</think><answer>{JSON}</answer>"))
        a = _tag_span(text, "answer")
        if not a:
            return ParseResult(False, None, problems, None, "jarvis")
        body, start = text[a[0]:a[1]], a[0]
        t = _tag_span(text, "think")
        reasoning = text[t[0]:t[1]].strip() if t else None
    body, start = _strip_fence(body, start)
    obj, good = _loads(body, start, problems)
    program = _program_from_obj(obj, start, clamp, problems, notes, body) if good else None
    return ParseResult(not problems and program is not None, program, problems, reasoning, "jarvis", notes)


_BRACKET = re.compile(r"[{}\[\]]")


def _top_level_braces(body: str) -> list[int]:
    """Offsets of the ``{`` in ``body`` that lie outside every bracket opened before them ({[ minus }], never
    below 0). A brace inside an object that never closes (an answer cut off at the token limit) is not top
    level, so its inner objects are not taken for the answer."""
    out, depth = [], 0
    for m in _BRACKET.finditer(body):
        ch = m.group()
        if ch == "{" and depth == 0:
            out.append(m.start())
        if ch in "{[":
            depth += 1
        elif depth > 0:
            depth -= 1
    return out


def _json_start(body: str, tries: int = 64) -> int:
    """Where the JSON object in ``body`` starts: a top-level ``{`` whose object runs to the end of the text
    (sought from the end, ``tries`` braces at most), else the first top-level ``{`` (of ``tries``) that opens
    an object; -1 when there is none.

    Reasoning before the object may contain braces of its own ("keep the {natural} look").
    """
    def obj_end(i: int) -> int:  # end of the object opened at i, or -1
        try:
            obj, end = _bounded(lambda t: _DECODER.raw_decode(t, i), body, i)
        except Exception:  # noqa: BLE001 - not an object here (JSON errors, too deep, NaN)
            return -1
        return end if isinstance(obj, dict) else -1

    starts = _top_level_braces(body)
    tail = len(body.rstrip())
    for i in starts[::-1][:tries]:
        end = obj_end(i)
        if end >= tail:  # nothing but space after the object
            return i
    return next((i for i in starts[:tries] if obj_end(i) >= 0), -1)


_SPACES = re.compile(r"[ \t]*")


def _closing_fence(text: str) -> tuple[int, int, int] | None:
    """A code fence that ends the text: (start of the first fence, start and end of its content), else None.

    The content runs from the first ``` (after an optional ``json`` tag, spaces and one newline) to the ```
    that is the text's last non-space characters."""
    close = len(text.rstrip()) - 3
    first = text.find("```")
    if close < 0 or not text.startswith("```", close) or first + 3 > close:
        return None
    start = first + 3
    if text.startswith(("json", "JSON"), start):
        start += 4
    start = _SPACES.match(text, start).end()
    if text.startswith("\n", start):
        start += 1
    return first, start, close


def _parse_json(text: str, clamp: bool) -> ParseResult:
    problems: list[ParseProblem] = []
    notes: list[ClampNote] = []
    body, start = _strip_fence(text, 0)
    reasoning = None
    fence = None if body.startswith("{") else _closing_fence(text)
    if fence:
        reasoning = text[:fence[0]].strip() or None
        body, start = _strip_fence(text[fence[1]:fence[2]], fence[1])
    elif not body.startswith("{"):
        i = _json_start(body)
        i = body.find("{") if i < 0 else i  # no complete object: report the JSON error at the first brace
        if i < 0:
            return ParseResult(False, None, [ParseProblem(None, "no JSON object found")], None, "json")
        reasoning = body[:i].strip() or None
        body, start = body[i:], start + i
    try:
        _, end = _bounded(_DECODER.raw_decode, body, 0)
    except json.JSONDecodeError as e:
        problems.append(ParseProblem(start + e.pos, f"invalid JSON: {e.msg}"))
        return ParseResult(False, None, problems, reasoning, "json")
    except (RecursionError, _TooDeep):
        return ParseResult(False, None, [ParseProblem(start, "invalid JSON: nested too deeply")], reasoning, "json")
    except (ValueError, OverflowError) as e:
        return ParseResult(False, None, [ParseProblem(start, f"invalid JSON: {e}")], reasoning, "json")
    if body[end:].strip():
        problems.append(ParseProblem(start + end, "unexpected text after the JSON object"))
    obj, good = _loads(body[:end], start, problems)
    program = _program_from_obj(obj, start, clamp, problems, notes, body[:end]) if good else None
    return ParseResult(not problems and program is not None, program, problems, reasoning, "json", notes)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,80}")
_NUMBER = re.compile(r"[-+]?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][-+]?\d{1,4})?%?")
_OPS_START = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]{0,80})\s*=")
_BRACE_OPS = re.compile(r"\{\s*(?:[A-Za-z_][A-Za-z0-9_]*\s*=|\})")
_STRUCT_KEYS = {"tone_curve", "tone_curves", "curves", "local", "local_adjustments", "maskgroupbasedcorrections"}


def _known(name: str) -> bool:
    return canonical_name(name) is not None or name.lower() in _STRUCT_KEYS or name.lower().startswith("tonecurve")


def _balanced_end(text: str, i: int) -> int:
    """Index just past the bracket block starting at text[i] ('[' or '{'), respecting JSON strings; -1 if open."""
    return _bracket_scan(text, i, len(text))[0]


def _parse_retouchiq(text: str, clamp: bool) -> ParseResult:
    problems: list[ParseProblem] = []
    notes: list[ClampNote] = []
    seg_start, seg_end, reasoning = None, len(text), None
    b = -1
    for block in _BRACE_OPS.finditer(text):  # the last block (match objects are not kept: no GC churn)
        b = block.start()
    if b >= 0:
        end = _balanced_end(text, b)
        if end < 0:
            problems.append(ParseProblem(b, "unclosed '{' around the operations"))
            end = len(text)
            seg_start, seg_end = b + 1, end
        else:
            seg_start, seg_end = b + 1, end - 1
            if text[end:].strip():
                problems.append(ParseProblem(end, "unexpected text after the operations"))
        reasoning = text[:b].strip() or None
    else:
        for m in _OPS_START.finditer(text):
            if _known(m.group(1)):
                seg_start = m.start()
                reasoning = text[:seg_start].strip() or None
                break
        if seg_start is None:
            return ParseResult(False, None, [ParseProblem(None, "no operations of the form name=value found")],
                               text.strip() or None, "retouchiq")
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # the name as written: Lightroom's Kelvin "Temperature" converts only by that name
    i = seg_start
    while i < seg_end:
        c = text[i]
        if c in " \t\r\n;,":
            i += 1
            continue
        m = _NAME.match(text, i, seg_end)
        if not m:
            problems.append(ParseProblem(i, f"expected an operation name, found {text[i:i + 12]!r}"))
            i = _skip(text, i, seg_end)
            continue
        name, j = m.group(0), m.end()
        while j < seg_end and text[j] in " \t":
            j += 1
        if j >= seg_end or text[j] != "=":
            problems.append(ParseProblem(j, f"expected '=' after {name!r}"))
            i = _skip(text, j, seg_end)
            continue
        j += 1
        while j < seg_end and text[j] in " \t":
            j += 1
        if j < seg_end and text[j] in "[{":
            end = _balanced_end(text, j)
            if end < 0 or end > seg_end:
                problems.append(ParseProblem(j, f"unclosed bracket in the value of {name!r}"))
                break
            val, good = _loads(text[j:end], j, problems)
            i = end
            if not good:
                continue
        else:
            n = _NUMBER.match(text, j, seg_end)
            if not n:
                problems.append(ParseProblem(j, f"value of {name!r} is not a number: {text[j:j + 12]!r}"))
                i = _skip(text, j, seg_end)
                continue
            try:
                val = float(n.group(0).rstrip("%"))
            except (ValueError, OverflowError):
                problems.append(ParseProblem(j, f"value of {name!r} is not a number"))
                i = _skip(text, n.end(), seg_end)
                continue
            i = n.end()
            if i < seg_end and text[i] not in " \t\r\n;,}":
                problems.append(ParseProblem(i, f"unexpected text after the value of {name!r}"))
                i = _skip(text, i, seg_end)
        if not _known(name):
            problems.append(ParseProblem(m.start(), f"unknown operation {name!r}"))
            continue
        key = canonical_name(name) or name.lower()
        if key in values:
            problems.append(ParseProblem(m.start(), f"operation {name!r} given twice"))
            continue
        try:  # validate each op alone so the problem carries its position
            EditProgram.from_dict({name: val}, clamp=clamp)
        except ProgramError as e:
            problems.append(ParseProblem(m.start(), str(e)))
            continue
        except (TypeError, ValueError, OverflowError) as e:
            problems.append(ParseProblem(m.start(), f"invalid value for {name!r}: {e}"))
            continue
        values[key] = val
        spelled[key] = name
    if not values and not problems and text[seg_start:seg_end].strip():
        problems.append(ParseProblem(seg_start, "no operations found"))
    program = None
    try:
        program = EditProgram.from_dict({spelled[k]: v for k, v in values.items()}, clamp=clamp, notes=notes)
    except ProgramError as e:
        problems.append(ParseProblem(seg_start, str(e)))
    return ParseResult(not problems and program is not None, program, problems, reasoning, "retouchiq", notes)


_SEPARATOR = re.compile(r"[;,\n]")


def _skip(text: str, i: int, end: int) -> int:
    """Index just past the next operation separator (``;``, ``,`` or newline) in ``text[i:end]``."""
    m = _SEPARATOR.search(text, i, end)
    return m.start() + 1 if m else max(i, end) + 1


def parse_program(text: str, fmt: str = "auto", *, clamp: bool = False) -> ParseResult:
    """Parse policy text into an :class:`EditProgram`; never raises on any string, never evaluates it.

    ``fmt``: "auto" (detects by shape), "jarvis", "retouchiq" or "json". ``clamp=True`` clamps out-of-range
    values instead of reporting them as problems (the clamps are listed in ``result.notes``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"parse_program: fmt must be one of {FORMATS}, got {fmt!r}")
    thoughts: list[str] = []
    try:
        if not isinstance(text, str):
            return ParseResult(False, None, [ParseProblem(None, f"expected text, got {type(text).__name__}")],
                               None, fmt)
        if len(text) > MAX_TEXT_CHARS:
            return ParseResult(False, None, [ParseProblem(MAX_TEXT_CHARS, f"text longer than {MAX_TEXT_CHARS} "
                                                          "characters")], None, fmt)
        result = None
        if fmt == "auto":
            fmt, text, thoughts = _leading_thoughts(text)
        if fmt == "auto":
            found = _detect(text, clamp)
            if isinstance(found, ParseResult):
                result = found
            else:
                fmt = found
        if result is None:
            parse = _parse_jarvis if fmt == "jarvis" else _parse_json if fmt == "json" else _parse_retouchiq
            result = parse(text, clamp)
    except Exception as e:  # noqa: BLE001 - last resort: model text must never crash the training loop
        result = ParseResult(False, None, [ParseProblem(None, f"internal parser error: {type(e).__name__}: {e}")],
                             None, fmt)
    reasoning = next((r for r in (t.strip() for t in thoughts) if r), None)
    return replace(result, reasoning=reasoning) if reasoning else result


def as_program(value: str | Mapping[str, Any] | EditProgram, *, fmt: str = "auto", clamp: bool = False,
               where: str = "program") -> EditProgram:
    """The :class:`EditProgram` of ``value``: a program (returned as is), a program dict (canonical or
    Lightroom keys, :meth:`EditProgram.from_dict`) or text in any :func:`parse_program` format.

    For references, dataset fields and actions that must be a program: anything else raises
    :class:`ProgramError` whose message starts with ``where`` and says what is wrong (text must parse
    without problems; each problem is listed with its character offset). ``clamp`` as in
    :func:`parse_program`.
    """
    if isinstance(value, EditProgram):
        return value
    if isinstance(value, Mapping):
        try:
            return EditProgram.from_dict(value, clamp=clamp)
        except ProgramError as e:
            msg = str(e)
        except (TypeError, ValueError, OverflowError) as e:  # malformed nested values
            msg = f"invalid program: {e}"
        raise ProgramError(msg if msg.startswith(f"{where}:") else f"{where}: {msg}") from None
    if isinstance(value, str):
        result = parse_program(value, fmt, clamp=clamp)
        if result.ok and result.program is not None:
            return result.program
        shown = "; ".join(map(str, result.problems[:5])) or "no program found"
        more = f" (and {len(result.problems) - 5} more)" if len(result.problems) > 5 else ""
        raise ProgramError(f"{where}: text does not parse as a program ({fmt} format): {shown}{more}")
    raise ProgramError(f"{where}: expected an EditProgram, a program dict or text, got {type(value).__name__}")


def _leading_thoughts(text: str) -> tuple[str, str, list[str]]:
    """Auto mode's first look: ``("jarvis", text, [])`` for the <think>/<answer> form (an <answer> tag, or a
    <think> that is not one of the leading closed blocks); else ``("auto", text, thoughts)`` with the contents
    of the leading closed <think> blocks (a thinking model's trace before a RetouchIQ / JSON answer) and
    those blocks blanked out of the text, so that offsets stay those of the text given."""
    if "<answer>" in text:
        return "jarvis", text, []
    last_think = text.rfind("<think>")
    thoughts: list[str] = []
    pos = 0
    while True:
        a = _WS_RUN.match(text, pos).end()
        end = text.find("</think>", a + 7) if text.startswith("<think>", a) else -1
        if end < 0:
            break
        thoughts.append(text[a + 7:end])
        pos = end + 8
    if last_think >= pos:  # a <think> tag after the leading blocks: judged as the Jarvis form
        return "jarvis", " " * pos + text[pos:] if pos else text, thoughts
    return "auto", " " * pos + text[pos:] if pos else text, thoughts


def _detect(text: str, clamp: bool) -> ParseResult | str:
    """Auto mode on text without think blocks: the format to parse with, or the result when both readings
    had to be tried."""
    body = _strip_fence(text, 0)[0]
    i = body.find("{")
    ops = _OPS_START.search(body)
    if i >= 0 and ops is not None and ops.start() < i:
        # name=value operations before the first brace: the form whose values may be JSON
        # (local=[{...}]), or reasoning that quotes one before a JSON answer; keep the better reading
        as_ops = _parse_retouchiq(text, clamp)
        if as_ops.ok or _json_start(body) < 0:
            return as_ops
        as_json = _parse_json(text, clamp)  # a complete top-level JSON object: the answer
        return as_json if as_json.program is not None or as_ops.program is None else as_ops
    if i >= 0 and not _BRACE_OPS.match(body, i) or body.startswith("{}"):
        if _json_start(body) >= 0:  # a complete JSON object (the first brace may be the reasoning's)
            return "json"
        if re.search(r'\{\s*"', body):  # meant as JSON but broken: report where, unless the
            as_json = _parse_json(text, clamp)  # text also holds name=value operations
            as_ops = _parse_retouchiq(text, clamp)
            return as_ops if as_ops.program is not None else as_json
    return "retouchiq"


def _num_str(v: float) -> str:
    return format(float(v), "+")


def render_program(program: EditProgram, fmt: str, *, reasoning: str = "") -> str:
    """Render a program to one of the text forms ("jarvis", "retouchiq", "json"); parses back to an equal program."""
    if not isinstance(program, EditProgram):
        raise TypeError(f"render_program: expected an EditProgram, got {type(program).__name__}")
    if fmt == "json":
        body = json.dumps(program.to_dict())
        return f"{reasoning}\n{body}" if reasoning else body
    if fmt == "jarvis":
        d = program_to_lightroom(program)
        m = program.params.get("monochrome")
        if m is not None and 0.0 < m < 1.0:  # Lightroom's treatment is on or off: a partial blend keeps our name
            del d["ConvertToGrayscale"]
            d["monochrome"] = m
        return f"<think>{reasoning}</think><answer>{json.dumps(d)}</answer>"
    if fmt == "retouchiq":
        parts = [f"{k}={_num_str(v)}" for k, v in program.params.items()]
        d = program.to_dict()
        if "tone_curve" in d:
            parts.append(f"tone_curve={json.dumps(d['tone_curve'])}")
        if "local" in d:
            parts.append(f"local={json.dumps(d['local'])}")
        body = "{" + "; ".join(parts) + "}"
        return f"{reasoning}\n{body}" if reasoning else body
    raise ValueError(f"render_program: fmt must be one of ('jarvis', 'retouchiq', 'json'), got {fmt!r}")
