"""parse_diagnosis: the EditRefiner and Agentic Retoucher shapes, and untrusted text."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from rlkit.policies import Diagnosis, normalize_flaw_type, parse_diagnosis


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
