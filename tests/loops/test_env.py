"""The loops inside the environments: RefineEnv driven by a loop's agents with the evaluator as reward and
EditRefiner's stopping rule, and trl tool environments whose prompt carries the loop's findings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlkit.envs import RefineEnv
from rlkit.loops import (
    AgenticRetoucherToolEnv,
    EditRefiner,
    EditRefinerToolEnv,
    run_in_refine_env,
    tool_call_action,
)
from rlkit.policies import ActionAgent, ToolCall, ToolSpec
from rlkit.rewards import EvaluatorReward


def _loop(d, tool):
    return EditRefiner(perception=d.SpotPerception(), reasoner=d.Scripted(), action=ActionAgent(
        [ToolSpec("paint", "inpaint")]), tools={"paint": tool}, evaluator=d.RedScore(), min_area=1, opening=0,
        closing=0)


def _row(d):
    img = (d.grey().permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return {"image": img, "source_image": img, "instruction": "warm it"}


def test_tool_calls_become_refine_env_actions():
    m = np.ones((4, 4), bool)
    assert tool_call_action(ToolCall("x", "inpaint", "sky", m)) == {"tool": "inpaint", "prompt": "sky", "mask": m}
    a = tool_call_action(ToolCall("y", "edit", "warmer", m))
    assert a["tool"] == "edit" and a["instruction"] == "warmer" and a["mask"] is m


def test_refine_env_runs_the_loop_and_enforces_the_stopping_rule(d):
    tool = d.AddRed(0.2, -0.3)
    loop = _loop(d, tool)
    env = RefineEnv(inpaint_tool=tool, reward=EvaluatorReward(loop.evaluator), image_size=32, max_iterations=4,
                    stop_when_no_improvement=True, reward_mode="delta")
    infos = run_in_refine_env(loop, env, _row(d), seed=0)
    assert [i["tool"] for i in infos] == ["inpaint", "inpaint"] and infos[1]["reverted"]
    assert infos[0]["score"] == pytest.approx(0.5 + 0.2 * 64 / 256 * 1.0, abs=2e-3)  # red corner mean / 100
    # the environment reverted the worse step: its image is the first step's result
    assert float(env.current_image[0, 4:12, 4:12].mean()) == pytest.approx(0.7, abs=2e-3)
    assert infos[0]["tool_call"]["tool"] == "paint" and "artifact regions: [4, 4, 12, 12]" in infos[0]["observation"]


def test_tool_env_prompt_carries_the_findings_and_the_evaluator_scores(d):
    tool = d.AddRed(0.3)
    loop = _loop(d, tool)
    env = EditRefinerToolEnv(loop=loop, inpaint_tool=tool, edit_tool=lambda im, ins, **k: im,
                             reward=EvaluatorReward(loop.evaluator), image_size=32)
    text = env.reset(**_row(d))
    assert "artifact regions: [4, 4, 12, 12]" in text and '"flaw_type": "color_inconsistency"' in text
    assert env.last_observation.boxes == [(4, 4, 12, 12)]
    out = env.inpaint_region(4, 4, 12, 12, "clean red")
    assert isinstance(out, list) and out[0]["type"] == "image"
    assert env.get_reward() == pytest.approx(0.5 + 0.3 * 64 / 256, abs=2e-3)
    ar = AgenticRetoucherToolEnv(loop=_loop(d, tool), inpaint_tool=tool, image_size=32)
    assert "artifact regions" in ar.reset(**_row(d))
    with pytest.raises(TypeError, match="observe"):
        EditRefinerToolEnv(loop=object(), inpaint_tool=tool, edit_tool=tool)


def test_tool_env_reports_a_failed_diagnosis_instead_of_raising(d):
    loop = _loop(d, d.AddRed(0.1))
    loop.reasoner = d.Scripted("not json")
    env = EditRefinerToolEnv(loop=loop, inpaint_tool=d.AddRed(0.1), edit_tool=d.AddRed(0.1), image_size=32)
    text = env.reset(**_row(d))
    assert "could not diagnose the image" in text and env.last_observation is None
    assert torch.is_tensor(env.episode.current)
