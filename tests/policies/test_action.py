"""The action agent: rule-based tool choice and texts, constraints and budget, the VLM planner's answer
checked (unknown tool, bad JSON, backend errors, the overall deadline) with the rules as fallback."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from rlkit.policies import (
    ActionAgent,
    ActionConstraints,
    ActionError,
    Diagnosis,
    ToolSpec,
    parse_action_answer,
    rule_text,
)

TOOLS = [ToolSpec("flux_fill", "inpaint", 8.0, "Flux-Fill"), ToolSpec("sd_inpaint", "inpaint", 2.0),
         ToolSpec("qwen_edit", "edit", 10.0, "Qwen-Image-Edit")]
MASK = np.zeros((16, 16), bool)
MASK[4:8, 4:9] = True


class Backend:
    """A chat backend double answering a fixed text (or raising / sleeping)."""

    def __init__(self, answer="", *, error=None, sleep=0.0):
        self.answer, self.error, self.sleep, self.requests = answer, error, sleep, []

    def generate(self, requests):
        self.requests += list(requests)
        if self.sleep:
            time.sleep(self.sleep)
        if self.error:
            raise self.error
        return [self.answer for _ in requests]


def test_rules_pick_the_tool_kind_by_flaw_type_in_preference_order():
    agent = ActionAgent(TOOLS)
    art = agent.plan([Diagnosis("color_inconsistency", "a blotch")], MASK, boxes=[[4, 4, 9, 8]])
    assert (art.tool, art.kind, art.planner, art.reason) == ("flux_fill", "inpaint", "rules", None)
    assert art.text == "the surrounding content, natural and clean: no color inconsistency"
    assert art.boxes == [(4, 4, 9, 8)] and art.mask.sum() == 20 and art.cost == 8.0
    fail = agent.plan([{"flaw_type": "missing_edit", "description": "not warmer"},
                       {"flaw_type": "unintended_edit", "description": "sky changed"}], MASK,
                      instruction="Warm it up.")
    assert (fail.tool, fail.kind) == ("qwen_edit", "edit")
    assert fail.text == "Warm it up in the marked area. Restore the marked area to match the source image."
    assert fail.flaw_types == ["missing_edit", "unintended_edit"]
    d = fail.to_dict()
    assert d["mask_area"] == pytest.approx(20 / 256) and d["tool"] == "qwen_edit" and "mask" not in d


def test_rule_texts_by_hand():
    ds = [Diagnosis("incorrect edit", ""), Diagnosis("blur", ""), Diagnosis("incorrect_edit", "")]
    assert rule_text("edit", ds, instruction="Darken the sky.") == (
        "Redo the marked area correctly: Darken the sky. Remove the blur in the marked area; keep everything else "
        "unchanged.")
    assert rule_text("inpaint", ds, instruction="a cat on a sofa") == (
        "a cat on a sofa, natural and clean: no incorrect edit, blur")
    assert len(rule_text("inpaint", ds, instruction="x" * 1000, max_text=50)) == 50


def test_constraints_and_budget():
    agent = ActionAgent(TOOLS)
    diag = [Diagnosis("missing_edit", "")]
    assert agent.plan(diag, MASK, constraints=ActionConstraints(allowed_tools=("sd_inpaint",))).tool == "sd_inpaint"
    assert agent.plan(diag, MASK, constraints=ActionConstraints(prefer="inpaint")).tool == "flux_fill"
    # the edit tool costs 10: with 9 left the agent falls back to the affordable inpainting tools, best first
    assert agent.plan(diag, MASK, budget_left=9.0).tool == "flux_fill"
    assert agent.plan(diag, MASK, constraints=ActionConstraints(max_cost=3.0)).tool == "sd_inpaint"
    with pytest.raises(ActionError, match="no tool is allowed and affordable.*budget left: 1.0"):
        agent.plan(diag, MASK, budget_left=1.0)
    with pytest.raises(ActionError, match=r"unknown tools \['dalle'\]"):
        agent.plan(diag, MASK, constraints=ActionConstraints(allowed_tools=("dalle",)))


@pytest.mark.parametrize("mask, diags, match", [
    (np.zeros((8, 8)), [Diagnosis("blur", "")], "the mask is empty"),
    (np.ones((2, 8, 8)), [Diagnosis("blur", "")], r"2-D \(H, W\)"),
    (MASK, [{"description": "no type"}], "diagnosis 0: expected a Diagnosis or a dict with a 'flaw_type'"),
])
def test_bad_input_is_named(mask, diags, match):
    with pytest.raises(ActionError, match=match):
        ActionAgent(TOOLS).plan(diags, mask)


def test_bad_tool_libraries_are_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        ToolSpec("x", "paint")
    with pytest.raises(ValueError, match="distinct"):
        ActionAgent([ToolSpec("a", "edit"), ToolSpec("a", "inpaint")])
    with pytest.raises(TypeError, match="generate"):
        ActionAgent(TOOLS, backend=object())


def test_vlm_planner_answer_is_used_when_valid():
    backend = Backend('<think>the blotch needs repainting</think><answer>{"tool": "sd_inpaint", '
                      '"text": "smooth blue sky"}</answer>')
    call = ActionAgent(TOOLS, backend=backend).plan([Diagnosis("blotch", "blue patch")], MASK, boxes=[[4, 4, 9, 8]],
                                                    instruction="a sky", image=np.zeros((16, 16, 3)))
    assert (call.tool, call.text, call.planner, call.reason) == ("sd_inpaint", "smooth blue sky", "vlm", None)
    (request,) = backend.requests
    user = request[-1]["content"]
    assert user[0]["type"] == "image" and "<box>[4, 4, 9, 8]</box>" in user[1]["text"]
    assert "qwen_edit (edit, cost 10): Qwen-Image-Edit" in user[1]["text"] and "blue patch" in user[1]["text"]
    assert parse_action_answer('```json\n{"tool": "a", "instruction": "b"}\n```') == ("a", "b")


@pytest.mark.parametrize("backend, why", [
    (Backend('{"tool": "dalle", "text": "x"}'), "not an allowed, affordable tool"),
    (Backend('{"tool": "qwen_edit", "text": "x"}'), "not an allowed, affordable tool"),  # over the budget
    (Backend('{"tool": "sd_inpaint", "text": }'), "does not parse at position"),
    (Backend("I would inpaint it."), "holds no JSON object"),
    (Backend('{"tool": "sd_inpaint"}'), "needs string 'tool' and 'text'"),
    (Backend('{"tool": "sd_inpaint", "text": "' + "a" * 400 + '"}'), "400 characters"),
    (Backend(error=ConnectionError("refused")), "ConnectionError: refused"),
    (Backend(type("Reply", (), {"text": None, "error": "HTTP 500"})()), "HTTP 500"),
])
def test_bad_planner_answers_fall_back_to_the_rules_with_the_reason(backend, why):
    call = ActionAgent(TOOLS, backend=backend).plan([Diagnosis("blotch", "")], MASK, budget_left=9.0)
    assert call.planner == "rules" and call.tool == "flux_fill"
    assert why in call.reason and call.reason.endswith("rule-based fallback")


def test_the_planner_has_one_overall_deadline():
    slow = Backend('{"tool": "sd_inpaint", "text": "x"}', sleep=3.0)
    t = time.perf_counter()
    call = ActionAgent(TOOLS, backend=slow, deadline=0.3).plan([Diagnosis("blotch", "")], MASK)
    elapsed = time.perf_counter() - t
    assert elapsed < 2.0 and call.planner == "rules" and "0.3 s deadline" in call.reason
    assert any(th.name == "rlkit-action-planner" and th.daemon for th in threading.enumerate())


def test_hostile_planner_text_is_parsed_in_linear_time():
    def timed(n: int) -> float:
        text = "{" * n + '{"tool": "a", "text": "b"}'
        t = time.perf_counter()
        with pytest.raises(ActionError):
            parse_action_answer(text)
        return time.perf_counter() - t

    timed(1000)
    with pytest.raises(ActionError, match="does not parse"):  # deep nesting: json's recursion is caught
        parse_action_answer('{"tool": ' + "[" * 19_000)
    small, big = min(timed(2000) for _ in range(3)), min(timed(20000) for _ in range(3))
    assert big < 0.5 and big < 30 * max(small, 1e-4)  # answers are cut at 20k characters; no blow-up
