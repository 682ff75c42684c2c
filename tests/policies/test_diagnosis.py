"""parse_diagnosis: the EditRefiner and Agentic Retoucher shapes, and untrusted text."""

import json
import random
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlkit.policies import Diagnosis, normalize_flaw_type, parse_diagnosis
from rlkit.policies.diagnosis import _fence_span, _tag_span


def test_editrefiner_list_in_think_answer_tags():
    text = ('<think>The hand on the left has six fingers.</think>\n<answer>[{"flaw_type": "Limb Deformation", '
            '"description": "The left hand has six fingers."}]</answer>')
    p = parse_diagnosis(text)
    assert p.ok and p.has_answer_tags
    assert p.reasoning == "The hand on the left has six fingers."
    assert p.items == [Diagnosis("Limb Deformation", "The left hand has six fingers.")]
    assert p.format == "editrefiner"


def test_plain_json_and_code_fence_and_single_object():
    items = [{"flaw_type": "blur", "description": "face is blurry"}, {"type": "color", "desc": "sky is green"}]
    assert parse_diagnosis(json.dumps(items)).flaw_types == ["blur", "color"]
    fenced = "Here is my answer:\n```json\n" + json.dumps(items) + "\n```"
    assert parse_diagnosis(fenced).descriptions == ["face is blurry", "sky is green"]
    single = parse_diagnosis('{"flaw_type": "text", "description": "unreadable sign"}')
    assert single.ok and single.flaw_types == ["text"]


def test_agentic_retoucher_per_region_forms():
    by_id = parse_diagnosis('{"1": {"flaw_type": "hand", "description": "extra finger"}, '
                            '"2": {"flaw_type": "face", "description": "asymmetric eyes"}}')
    assert by_id.ok and by_id.format == "agentic_retoucher"
    assert [(d.region, d.flaw_type) for d in by_id.items] == [("1", "hand"), ("2", "face")]
    with_box = parse_diagnosis('{"regions": [{"region": 3, "bbox": [1, 2, 30, 40], "flaw_type": "limb", '
                               '"description": "arm bends backwards"}]}')
    assert with_box.ok and with_box.items[0].region == "3" and with_box.items[0].bbox == (1.0, 2.0, 30.0, 40.0)


def test_empty_list_means_no_flaws():
    p = parse_diagnosis("<answer>[]</answer>")
    assert p.ok and p.items == []


def test_failures_report_position_and_reason():
    p = parse_diagnosis('<answer>[{"flaw_type": "blur", "description": }]</answer>')
    assert not p.ok and p.problems[0].position is not None
    assert "invalid JSON" in p.problems[0].reason
    missing = parse_diagnosis('[{"description": "no type"}]')
    assert not missing.ok and "flaw_type" in missing.problems[0].reason
    unclosed = parse_diagnosis("<think>x</think><answer>[")
    assert not unclosed.ok and "not closed" in unclosed.problems[0].reason
    assert not parse_diagnosis("the image looks fine to me").ok
    assert not parse_diagnosis('[{"flaw_type": "x", "bbox": [1, 2]}]').ok


def test_never_evaluates_code():
    p = parse_diagnosis('[{"flaw_type": __import__("os").system("echo hacked"), "description": "x"}]')
    assert not p.ok


def test_normalize_flaw_type():
    assert normalize_flaw_type("  Limb_Deformation ") == normalize_flaw_type("limb-deformation") == "limb deformation"


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(text):
    p = parse_diagnosis(text)
    assert isinstance(p.ok, bool)
    assert p.ok or p.problems


def test_brackets_in_prose_before_the_json_are_skipped():
    p = parse_diagnosis('I looked at region [2] carefully. [{"flaw_type": "blur", "description": "soft face"}]')
    assert p.ok and p.flaw_types == ["blur"]  # "[2]" is not a list of flaw objects: skipped
    assert not parse_diagnosis("scores: [1, 2, 3]").ok
    q = parse_diagnosis('Note {this is prose}. [{"flaw_type": "blur", "description": "soft face"}]')
    assert q.ok and q.flaw_types == ["blur"]


# -- untrusted text: linear time, no recursion limit ---------------------------------------------------------
HOSTILE = ["<answer>", "<think>", "<think></think>", "```", "[{", "[", "{", '{"flaw_type": "blur", ',
           "<answer>[</answer>", '[{"flaw_type": "x"}] ']


def _work_ratio(small: str, large: str, repeats: int = 3) -> float:
    """Best time for ``large`` over the best time for ``small`` parsed len(large)/len(small) times: ~1 for a
    linear parser, ~10 for a quadratic one (equal work keeps both timings equally exposed to machine load)."""
    times = max(1, round(len(large) / len(small)))
    best_small = best_large = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(times):
            parse_diagnosis(small)
        best_small = min(best_small, time.perf_counter() - t0)
        t0 = time.perf_counter()
        parse_diagnosis(large)
        best_large = min(best_large, time.perf_counter() - t0)
    return best_large / best_small


@pytest.mark.parametrize("unit", HOSTILE)
def test_hostile_text_parses_in_linear_time(unit):
    small, large = unit * (2000 // len(unit) + 1), unit * (20000 // len(unit) + 1)
    ratio = min(_work_ratio(small, large) for _ in range(3))  # a loaded machine gets three tries
    assert ratio < 4, f"{unit!r}: 10x the text took {ratio:.1f}x the work (quadratic would be ~10x)"


def test_deep_nesting_is_a_problem_not_a_crash():
    for opener in ("[", "{", '[{"a": '):
        r = parse_diagnosis(opener * 5000)
        assert not r.ok and "nested too deeply" in r.problems[0].reason
    ok = parse_diagnosis("[" * 40 + "1" + "]" * 40 + ' [{"flaw_type": "blur", "description": "soft"}]')
    assert ok.ok and ok.flaw_types == ["blur"]  # nested but bounded JSON before the answer is skipped


def test_envelope_search_matches_the_regexes_it_replaces():
    """_tag_span / _fence_span find what the former lazy regexes found, on random tag soup."""
    think, answer = re.compile(r"<think>(.*?)</think>", re.S), re.compile(r"<answer>(.*?)</answer>", re.S)
    fence = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
    rng = random.Random(0)
    pieces = ["<think>", "</think>", "<answer>", "</answer>", "```", "json", " ", "\n", "a", "[]", "`"]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        for tag, rx in (("think", think), ("answer", answer)):
            m = rx.search(text)
            assert _tag_span(text, tag) == (m.span(1) if m else None), text
        m = fence.search(text)
        assert _fence_span(text) == (m.span(1) if m else None), text
