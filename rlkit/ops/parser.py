"""Text forms of edit programs: parse policy output safely (never evaluate it) and render programs back.

Formats:
- ``"jarvis"``: ``<think>reasoning</think><answer>{flat JSON of Lightroom keys}</answer>`` (JarvisArt);
- ``"retouchiq"``: reasoning, then ``exposure=+0.9; contrast=-30`` (optionally inside braces; values may be
  numbers or, for ``tone_curve`` / ``local``, JSON);
- ``"json"``: rlkit's canonical JSON (``EditProgram.to_dict()``), optionally after free-text reasoning.

:func:`parse_program` never raises on any ``str``: failures come back as :class:`ParseProblem` values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ProgramError
from .params import canonical_name
from .program import ClampNote, EditProgram

__all__ = ["ParseProblem", "ParseResult", "parse_program", "render_program", "FORMATS", "MAX_TEXT_CHARS"]

FORMATS = ("auto", "jarvis", "retouchiq", "json")
MAX_TEXT_CHARS = 200_000
_MAX_JSON_DEPTH = 32


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


def _reject_constant(name: str) -> Any:
    raise _Reject(f"{name} is not a valid number")


def _depth(obj: Any, d: int = 0) -> int:
    if d > _MAX_JSON_DEPTH:
        return d
    if isinstance(obj, dict):
        return max([_depth(v, d + 1) for v in obj.values()] or [d + 1])
    if isinstance(obj, list):
        return max([_depth(v, d + 1) for v in obj] or [d + 1])
    return d


def _loads(s: str, offset: int, problems: list[ParseProblem]) -> tuple[Any, bool]:
    """Strict JSON (no NaN/Infinity, bounded depth); problems carry absolute positions."""
    if s.count("[") + s.count("{") > 200_000:
        problems.append(ParseProblem(offset, "JSON too large"))
        return None, False
    try:
        obj = json.loads(s, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        problems.append(ParseProblem(offset + e.pos, f"invalid JSON: {e.msg}"))
        return None, False
    except RecursionError:
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
    m = re.fullmatch(r"\s*```(?:json|JSON)?\s*(.*?)\s*```\s*", s, re.S)
    if m:
        return m.group(1), offset + m.start(1)
    lead = len(s) - len(s.lstrip())
    return s.strip(), offset + lead


def _program_from_obj(obj: Any, pos: int, clamp: bool, problems: list[ParseProblem],
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
    for path, one in entries:
        try:
            EditProgram.from_dict(one, clamp=clamp, notes=[])
        except ProgramError as e:
            problems.append(ParseProblem(_key_position(text, path[-1], pos), str(e)))
            continue
        except (TypeError, ValueError, OverflowError) as e:  # defensive: malformed nested values
            problems.append(ParseProblem(_key_position(text, path[-1], pos), f"invalid program: {e}"))
            continue
        if len(path) == 1:
            good[path[0]] = one[path[0]]
        else:
            good.setdefault("params", {})[path[1]] = one["params"][path[1]]
    if not good:
        return None
    try:
        return EditProgram.from_dict(good, clamp=clamp, notes=notes)
    except (ProgramError, TypeError, ValueError, OverflowError) as e:  # pragma: no cover - each key passed alone
        problems.append(ParseProblem(pos, f"invalid program: {e}"))
    return None


def _key_position(text: str, key: Any, default: int) -> int:
    """Offset of the JSON key ``"key"`` in ``text`` (which starts at offset ``default``), else ``default``."""
    i = text.find(json.dumps(key)) if isinstance(key, str) else -1
    return default + i if i >= 0 else default


_JARVIS = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.S)


def _parse_jarvis(text: str, clamp: bool) -> ParseResult:
    problems: list[ParseProblem] = []
    notes: list[ClampNote] = []
    m = _JARVIS.fullmatch(text)
    reasoning = None
    if m:
        reasoning, body, start = m.group(1).strip(), m.group(2), m.start(2)
        for tag in ("<think>", "</think>", "<answer>", "</answer>"):
            if tag in m.group(1) or tag in body:
                problems.append(ParseProblem(m.start(1), f"nested or repeated {tag} tag"))
                break
    else:
        problems.append(ParseProblem(0, "text does not match <think>...</think><answer>{JSON}</answer>"))
        a = re.search(r"<answer>(.*?)</answer>", text, re.S)
        if not a:
            return ParseResult(False, None, problems, None, "jarvis")
        body, start = a.group(1), a.start(1)
        t = re.search(r"<think>(.*?)</think>", text, re.S)
        reasoning = t.group(1).strip() if t else None
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
    dec = json.JSONDecoder(parse_constant=_reject_constant)

    def obj_end(i: int) -> int:  # end of the object opened at i, or -1
        try:
            obj, end = dec.raw_decode(body, i)
        except Exception:  # noqa: BLE001 - not an object here (JSON errors, recursion, NaN)
            return -1
        return end if isinstance(obj, dict) else -1

    starts = _top_level_braces(body)
    for i in starts[::-1][:tries]:
        end = obj_end(i)
        if end >= 0 and not body[end:].strip():
            return i
    return next((i for i in starts[:tries] if obj_end(i) >= 0), -1)


def _parse_json(text: str, clamp: bool) -> ParseResult:
    problems: list[ParseProblem] = []
    notes: list[ClampNote] = []
    body, start = _strip_fence(text, 0)
    reasoning = None
    fence = re.search(r"```(?:json|JSON)?[ \t]*\n?(.*?)```\s*$", text, re.S)
    if not body.startswith("{") and fence:
        reasoning = text[:fence.start()].strip() or None
        body, start = _strip_fence(fence.group(1), fence.start(1))
    elif not body.startswith("{"):
        i = _json_start(body)
        i = body.find("{") if i < 0 else i  # no complete object: report the JSON error at the first brace
        if i < 0:
            return ParseResult(False, None, [ParseProblem(None, "no JSON object found")], None, "json")
        reasoning = body[:i].strip() or None
        body, start = body[i:], start + i
    try:
        _, end = json.JSONDecoder(parse_constant=_reject_constant).raw_decode(body)
    except json.JSONDecodeError as e:
        problems.append(ParseProblem(start + e.pos, f"invalid JSON: {e.msg}"))
        return ParseResult(False, None, problems, reasoning, "json")
    except RecursionError:
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
    depth, in_str, esc = 0, False, False
    for j in range(i, len(text)):
        c = text[j]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def _parse_retouchiq(text: str, clamp: bool) -> ParseResult:
    problems: list[ParseProblem] = []
    notes: list[ClampNote] = []
    seg_start, seg_end, reasoning = None, len(text), None
    blocks = list(_BRACE_OPS.finditer(text))
    if blocks:
        b = blocks[-1].start()
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


def _skip(text: str, i: int, end: int) -> int:
    while i < end and text[i] not in ";,\n":
        i += 1
    return i + 1


def parse_program(text: str, fmt: str = "auto", *, clamp: bool = False) -> ParseResult:
    """Parse policy text into an :class:`EditProgram`; never raises on any string, never evaluates it.

    ``fmt``: "auto" (detects by shape), "jarvis", "retouchiq" or "json". ``clamp=True`` clamps out-of-range
    values instead of reporting them as problems (the clamps are listed in ``result.notes``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"parse_program: fmt must be one of {FORMATS}, got {fmt!r}")
    try:
        if not isinstance(text, str):
            return ParseResult(False, None, [ParseProblem(None, f"expected text, got {type(text).__name__}")],
                               None, fmt)
        if len(text) > MAX_TEXT_CHARS:
            return ParseResult(False, None, [ParseProblem(MAX_TEXT_CHARS, f"text longer than {MAX_TEXT_CHARS} "
                                                          "characters")], None, fmt)
        if fmt == "auto":
            think = re.match(r"\s*<think>(.*?)</think>", text, re.S)
            if "<answer>" in text or ("<think>" in text and not think):
                fmt = "jarvis"
            elif think:  # a thinking model's trace followed by a RetouchIQ / JSON answer
                inner = parse_program(" " * think.end() + text[think.end():], "auto", clamp=clamp)
                return replace(inner, reasoning=think.group(1).strip() or inner.reasoning)
            else:
                body = _strip_fence(text, 0)[0]
                i = body.find("{")
                fmt = "retouchiq"
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
                        fmt = "json"
                    elif re.search(r'\{\s*"', body):  # meant as JSON but broken: report where, unless the
                        as_json = _parse_json(text, clamp)  # text also holds name=value operations
                        as_ops = _parse_retouchiq(text, clamp)
                        return as_ops if as_ops.program is not None else as_json
        if fmt == "jarvis":
            return _parse_jarvis(text, clamp)
        if fmt == "json":
            return _parse_json(text, clamp)
        return _parse_retouchiq(text, clamp)
    except Exception as e:  # noqa: BLE001 - last resort: model text must never crash the training loop
        return ParseResult(False, None, [ParseProblem(None, f"internal parser error: {type(e).__name__}: {e}")],
                           None, fmt)


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
        from .lightroom import program_to_lightroom

        return f"<think>{reasoning}</think><answer>{json.dumps(program_to_lightroom(program))}</answer>"
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
