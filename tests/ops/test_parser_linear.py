"""The parser in linear time: hostile texts 10x longer take about 10x longer (not 100x), no input reaches the
recursion limit, and the linear scanners give what the regular expressions they replace give."""

import json
import re
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlkit.ops import EditProgram, parse_program
from rlkit.ops.parser import (
    MAX_TEXT_CHARS,
    _closing_fence,
    _first_quoted,
    _jarvis_envelope,
    _strip_fence,
    _tag_span,
)

# Each family repeats a unit k times; the unit is what makes a naive parser quadratic or recurse.
HOSTILE = {
    "unclosed <answer>": lambda k: "<answer>" * k,
    "unclosed <think>": lambda k: "<think>" * k,
    "</think><answer> after one <think>": lambda k: "<think>" + "</think><answer>" * k,
    "think blocks then a program": lambda k: "<think></think>" * k + "{exposure=+0.5}",
    "think/answer pairs": lambda k: "<think>a</think><answer>" * k,
    "{": lambda k: "{" * k,
    "[": lambda k: "[" * k,
    '"': lambda k: '"' * k,
    "=": lambda k: "=" * k,
    "nested objects": lambda k: '{"a":' * k + "1" + "}" * k,
    "nested lists": lambda k: "[" * k + "]" * k,
    "objects nested through strings": lambda k: '{"a":"}","b":' * k + "1" + "}" * k,
    "code fences": lambda k: "```" * k,
    "space after a fence": lambda k: "Plan.\n```json" + " " * k + "x",
    "escaped quotes": lambda k: '{"a": "' + '\\"' * k,
    "name=": lambda k: "a=" * k,
    "operations": lambda k: "exposure=1;" * k,
    "unclosed operation blocks": lambda k: "{a=" * k,
    "operation name then spaces": lambda k: "exposure" + " " * k,
    "unclosed local values": lambda k: "local=[" * k,
    "unknown JSON keys": lambda k: "{" + ", ".join(f'"k{i:07d}": 1' for i in range(k)) + "}",
    "braces in the reasoning": lambda k: "think {x} " * k + '{"exposure": 0.5}',
    "JSON objects then text": lambda k: '{"a":1} ' * k + "x",
}
FORMATS = ("auto", "jarvis", "retouchiq", "json")
SMALL = 19_000  # characters; the large texts are 10x (190k, under the 200k cap)


def _texts(family):
    make = HOSTILE[family]
    unit = len(make(2)) - len(make(1))
    k = SMALL // unit
    small, large = make(k), make(10 * k)
    assert len(large) <= MAX_TEXT_CHARS and len(large) >= 9 * len(small)
    return small, large


def _work_ratio(small: str, large: str, fmt: str, repeats: int = 3) -> float:
    """Best time to parse ``large`` over best time to parse ``small`` len(large)/len(small) times: 1 for a
    linear parser, ~10 for a quadratic one. Equal amounts of work keep the two timings equally exposed to a
    loaded machine (preemption, cold caches), which a plain t(10n)/t(n) is not."""
    times = max(1, round(len(large) / len(small)))
    best_small = best_large = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(times):
            parse_program(small, fmt)
        best_small = min(best_small, time.perf_counter() - t0)
        t0 = time.perf_counter()
        parse_program(large, fmt)
        best_large = min(best_large, time.perf_counter() - t0)
    return best_large / best_small


@pytest.mark.parametrize("family", sorted(HOSTILE))
def test_hostile_text_parses_in_linear_time(family):
    small, large = _texts(family)
    for fmt in FORMATS:
        for _ in range(3):  # a loaded machine can slow one measurement; a quadratic parser fails all three
            ratio = _work_ratio(small, large, fmt)
            if ratio < 4:
                break
        assert ratio < 4, f"{family} ({fmt}): parsing 10x the text took {ratio:.1f}x the time of 10 short parses"
        r = parse_program(large, fmt)
        assert isinstance(r.ok, bool) and not any("internal parser error" in p.reason for p in r.problems)


def test_many_leading_think_blocks_then_a_program():
    # auto mode used to recurse once per leading block: 989 blocks raised RecursionError
    text = "<think></think>" * 2000 + "<think>lift it</think>\n" + "<think></think>" * 3000 + "{exposure=+0.5}"
    r = parse_program(text)
    assert r.ok and r.format == "retouchiq" and r.program == EditProgram({"exposure": 0.5})
    assert r.reasoning == "lift it" and r.problems == []
    r = parse_program("<think></think>" * 5000 + "exposure=+0.5; sparkle=1")  # offsets stay those of the text
    assert r.program == EditProgram({"exposure": 0.5})
    assert [(p.position, p.reason) for p in r.problems] == [(5000 * 15 + 15, "unknown operation 'sparkle'")]


def _frames() -> int:
    f, n = sys._getframe(), 0
    while f is not None:
        f, n = f.f_back, n + 1
    return n


def _parse_with_headroom(text: str, fmt: str, headroom: int):
    """parse_program called with only ``headroom`` frames left before the interpreter's recursion limit."""
    def dive(k: int):
        return dive(k - 1) if k > 0 else parse_program(text, fmt)
    return dive(sys.getrecursionlimit() - _frames() - headroom)


@pytest.mark.parametrize("text", [
    '{"a":' * 400 + "}",  # broken deep inside: json's error (or RecursionError) depended on the caller's stack
    '{"exposure": ' + "[" * 300 + "]" * 300 + "}",
    "[" * 100_000, "{" * 100_000, '{"a":' * 3000 + "1" + "}" * 3000,
    "exposure=0.5; local=" + "[" * 5000,
    "<think></think>" * 5000 + '{"exposure": 0.5}',
    '{"a":' * 31 + "1" + "}" * 31,
])
def test_result_does_not_depend_on_the_callers_stack_depth(text):
    for fmt in FORMATS:
        near_limit = _parse_with_headroom(text, fmt, 300)
        assert near_limit == parse_program(text, fmt), fmt
        assert not any("internal parser error" in p.reason for p in near_limit.problems)


def test_json_nested_past_the_bound_is_refused_before_decoding():
    r = parse_program("Plan.\n" + '{"a":' * 250 + "1" + "}" * 250, "json")
    assert r.program is None and [(p.position, p.reason) for p in r.problems] == [(6, "invalid JSON: nested too deeply")]
    r = parse_program('{"a":' * 40 + "1" + "}" * 40, "json")  # decodable, deeper than programs may be
    assert [p.reason for p in r.problems] == ["invalid JSON: nested deeper than 32"]
    r = parse_program('{"a": [1, 2,, 3], "b":' + "[" * 300, "json")  # json's own error comes first
    assert [(p.position, p.reason) for p in r.problems] == [(12, "invalid JSON: Expecting value")]


# ---- the scanners against the regular expressions they replace (quadratic on hostile text, fine on short) ----

_TOKENS = ["<think>", "</think>", "<answer>", "</answer>", "```", "json", "JSON", " ", "\n", "\t", "\u00a0", "x",
           "{", "}", '"', "\\", "`", "a", "k"]
_short_texts = st.lists(st.sampled_from(_TOKENS), max_size=14).map("".join)


@settings(max_examples=1000, deadline=None)
@given(_short_texts)
def test_tag_scanners_match_the_regexes(text):
    m = re.fullmatch(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", text, re.S)
    assert _jarvis_envelope(text) == ((m.start(1), m.end(1), m.start(2), m.end(2)) if m else None)
    for tag in ("think", "answer"):
        m = re.search(f"<{tag}>(.*?)</{tag}>", text, re.S)
        assert _tag_span(text, tag) == (m.span(1) if m else None)
    m = re.fullmatch(r"\s*```(?:json|JSON)?\s*(.*?)\s*```\s*", text, re.S)
    lead = len(text) - len(text.lstrip())
    assert _strip_fence(text, 5) == ((m.group(1), 5 + m.start(1)) if m else (text.strip(), 5 + lead))
    m = re.search(r"```(?:json|JSON)?[ \t]*\n?(.*?)```\s*$", text, re.S)
    assert _closing_fence(text) == ((m.start(), m.start(1), m.end(1)) if m else None)


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(['"', "\\", "a", "b", ",", ":", " "]), max_size=40).map("".join),
       st.lists(st.lists(st.sampled_from(['"', "\\", "a", "b", ","]), max_size=4).map("".join), min_size=1,
                max_size=12))
def test_first_key_occurrences_match_str_find(text, keys):
    wanted = {json.dumps(k) for k in keys}
    found = _first_quoted(text, wanted)
    assert {p: found.get(p, -1) for p in wanted} == {p: text.find(p) for p in wanted}
