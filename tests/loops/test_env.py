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


@pytest.mark.slow
def test_grpo_trains_the_action_side_with_the_loop_findings_in_the_prompt(d, tmp_path):
    """trl's GRPOTrainer with EditRefinerToolEnv: every rollout's reset carries the loop's findings, the
    evaluator scores the rollouts (a tiny VLM policy; 2 steps)."""
    import os

    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    from datasets import Dataset
    from PIL import Image
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig, GRPOTrainer

    from rlkit.policies import load_processor
    from rlkit.testing import tiny_model_path

    path = tiny_model_path("qwen3_vl")
    tool = d.AddRed(0.3)
    loop = _loop(d, tool)
    resets = []

    class Recording(EditRefinerToolEnv):
        def reset(self, **row):
            text = super().reset(**row)
            resets.append(text)
            return text

    pil = Image.fromarray((d.grey().permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Repair the flaws."}]}]
    ds = Dataset.from_list([{"prompt": prompt, "image": pil, "source_image": pil, "instruction": "warm it"}] * 4)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=16, max_steps=2, learning_rate=1e-3, logging_steps=1, report_to=[],
                      use_cpu=True, bf16=False, save_strategy="no", max_tool_calling_iterations=2)
    trainer = GRPOTrainer(model=AutoModelForImageTextToText.from_pretrained(path), processing_class=load_processor(path),
                          reward_funcs=[], args=args, train_dataset=ds,
                          environment_factory=Recording.factory(loop=loop, inpaint_tool=tool,
                                                                edit_tool=lambda im, ins, **k: im,
                                                                reward=EvaluatorReward(loop.evaluator), image_size=32))
    assert sorted(t.__name__ for t in trainer.tools) == ["apply_edits", "edit_image", "finish", "inpaint_region",
                                                         "undo"]
    trainer.train()
    assert trainer.state.global_step == 2 and len(resets) == 8
    assert all("artifact regions: [4, 4, 12, 12]" in r for r in resets)
    assert [h for h in trainer.state.log_history if "rewards/Recording/mean" in h]
