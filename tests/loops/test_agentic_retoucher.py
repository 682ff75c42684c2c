"""The Agentic Retoucher loop: repair while a region reaches tau_s, the T2I prompt to perception and reasoner,
per-region diagnoses, the perception score, max turns and failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlkit.loops import AgenticRetoucher
from rlkit.policies import ActionAgent, ToolSpec


def _loop(d, tool, **kw):
    kw.setdefault("perception", d.OneMap())
    kw.setdefault("reasoner", d.Scripted('{"1": {"flaw_type": "color_inconsistency", "description": "a blotch"}}'))
    return AgenticRetoucher(action=ActionAgent([ToolSpec("paint", "inpaint")]), tools={"paint": tool},
                            dilation=0, min_area=1, **kw)


def test_repairs_until_no_region_reaches_tau_s(d):
    perception, tool = d.OneMap(clean_red=0.75), d.AddRed(0.1)
    reasoner = d.Scripted('{"1": {"flaw_type": "color_inconsistency", "description": "a blotch"}}')
    trace = _loop(d, tool, perception=perception, reasoner=reasoner).run(d.grey(), prompt="a red square")
    # red 0.5 -> 0.6 -> 0.7 -> 0.8: the third repair clears the map, the loop stops before max_turns (3)
    assert [t.status for t in trace.turns] == ["ok", "ok", "ok"] and trace.stop_reason == "reached max_turns=3"
    trace4 = _loop(d, d.AddRed(0.1), perception=d.OneMap(clean_red=0.75), max_turns=5).run(d.grey(), prompt="p")
    assert len(trace4.turns) == 3 and trace4.stop_reason == "no region reaches tau_s=0.5"
    assert trace4.best_turn == 3 and float(trace4.best_image[0, 4:12, 4:12].mean()) == pytest.approx(0.8)
    assert [s[0] for s in trace4.scores] == pytest.approx([10.0, 10.0, 10.0, 100.0])  # 100 (1 - max S)
    assert perception.seen[0]["prompts"] == ["a red square"]
    user = reasoner.requests[0][-1]["content"]
    assert user[0]["type"] == "image" and torch.equal(user[0]["image"], trace.tensors[0])
    assert "Image prompt: a red square" in user[1]["text"] and "<box>[4, 4, 12, 12]</box>" in user[1]["text"]
    assert trace.turns[0].diagnosis["saliency"][0]["region"] == "1"
    assert np.asarray(tool.calls[0]["mask"])[4:12, 4:12].all() and tool.calls[0]["mask"].sum() == 64
    assert tool.calls[0]["prompt"] == "a red square, natural and clean: no color inconsistency"


def test_tau_s_filters_weak_regions(d):
    trace = _loop(d, d.AddRed(0.1), tau_s=0.95).run(d.grey(), prompt="p")  # the map peaks at 0.9
    assert trace.turns == [] and trace.stop_reason == "no region reaches tau_s=0.95" and trace.stop_turn == 0


def test_failures_stop_the_loop_and_keep_the_last_good_image(d):
    calls = {"n": 0}

    def flaky(image, mask, prompt, *, seed=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("pipeline returned NaNs")
        return d.AddRed(0.05)(image, mask, prompt)

    trace = _loop(d, flaky).run(d.grey(), prompt="p")
    assert [t.status for t in trace.turns] == ["ok", "failed"] and trace.best_turn == 1
    assert "pipeline returned NaNs" in trace.turns[1].reason and "turn 2 failed" in trace.stop_reason
    empty = _loop(d, d.AddRed(0.1), reasoner=d.Scripted("[]")).run(d.grey(), prompt="p")
    assert empty.turns[0].status == "failed" and "found no flaw" in empty.turns[0].reason
    assert torch.equal(empty.best_image, empty.tensors[0])


def test_an_evaluator_gives_the_scores(d):
    ev = d.RedScore()
    trace = _loop(d, d.AddRed(0.1), evaluator=ev, max_turns=2).run(d.grey(), prompt="p")
    # red +0.1 on the 8 x 8 square = +2.5 on the 16 x 16 corner the double averages
    assert trace.overalls == pytest.approx([50.0, 52.5, 55.0], abs=1e-4) and ev.calls == 3
