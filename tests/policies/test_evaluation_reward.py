"""The evaluation agent as an rlkit Reward: Eq. 5 (or one dimension) of each sample's edited image, None with
a reason where there is nothing to score, the same numbers through trl's bridge and from the real agent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlkit.metrics import editrefiner_overall
from rlkit.rewards import EvaluatorReward, RewardBatch, to_trl_reward_funcs


class Fixed:
    """Scores each edited image by its mean (x100) per channel: three known numbers per sample."""

    def __init__(self):
        self.seen = []

    def score(self, sources, edited, instructions):
        self.seen.append(list(instructions))
        return np.array([[100 * float(e[c].mean()) for c in range(3)] for e in edited])


def _img(r, g, b):
    return torch.stack([torch.full((8, 8), v) for v in (r, g, b)])


def test_overall_and_dimensions_per_sample():
    ev = Fixed()
    outs = [_img(0.5, 0.8, 0.2), _img(0.9, 0.1, 0.4)]
    batch = RewardBatch(["a", "b"], None, {"source_image": [_img(0, 0, 0)] * 2, "output_image": outs,
                                           "instruction": ["warm", "cool"]})
    res = EvaluatorReward(ev)(batch)
    assert res.scores == pytest.approx([editrefiner_overall(50, 80, 20) / 100, editrefiner_overall(90, 10, 40) / 100])
    assert res.components["evaluator/instruction_following"] == pytest.approx([0.8, 0.1])
    assert ev.seen == [["warm", "cool"]]
    assert EvaluatorReward(ev, output="visual_consistency", scale=1.0)(batch).scores == pytest.approx([20.0, 40.0])
    assert EvaluatorReward(ev, output=0)(batch).scores == pytest.approx([0.5, 0.9])
    assert EvaluatorReward(ev, output="mean")(batch).scores == pytest.approx([0.5, 1.4 / 3])


def test_nothing_to_score_is_none_with_a_reason_and_bad_scores_are_named():
    batch = RewardBatch(["not a program at all"], None, {"source_image": [_img(0, 0, 0)]})
    res = EvaluatorReward(Fixed())(batch)
    assert res.scores == [None] and "no edited image" in res.reasons[0]

    class Wrong:
        def score(self, s, e, i):
            return np.zeros((len(e), 2))

    batch = RewardBatch(["x"], None, {"source_image": [_img(0, 0, 0)], "output_image": [_img(1, 1, 1)]})
    with pytest.raises(ValueError, match=r"scores of shape \(1, 2\), expected \(1, 3\)"):
        EvaluatorReward(Wrong())(batch)
    with pytest.raises(TypeError, match="score"):
        EvaluatorReward(object())
    with pytest.raises(ValueError, match="output must be"):
        EvaluatorReward(Fixed(), output="sharpness")


def test_trl_bridge_passes_the_same_scores():
    ev = Fixed()
    funcs, weights = to_trl_reward_funcs(EvaluatorReward(ev))
    outs = [_img(0.5, 0.8, 0.2), _img(0.9, 0.1, 0.4)]
    got = funcs[0](prompts=["p", "p"], completions=["a", "b"], source_image=[_img(0, 0, 0)] * 2,
                   output_image=outs, instruction=["w", "w"])
    assert got == pytest.approx([editrefiner_overall(50, 80, 20) / 100, editrefiner_overall(90, 10, 40) / 100])


def test_with_the_tiny_evaluation_agent():
    from rlkit.policies import EvaluationAgent
    from rlkit.testing import tiny_model_path

    torch.manual_seed(0)
    agent = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), image_size=64, head_dims=(8,),
                                          head_dropout=(0.0,), lora_r=2).eval()
    g = torch.Generator().manual_seed(1)
    src, out = [torch.rand(3, 64, 64, generator=g) for _ in range(2)], [torch.rand(3, 64, 64, generator=g)
                                                                        for _ in range(2)]
    batch = RewardBatch(["a", "b"], None, {"source_image": src, "output_image": out, "instruction": ["x", "y"]})
    want = agent.overall(src, out, ["x", "y"]) / 100
    assert EvaluatorReward(agent)(batch).scores == pytest.approx(list(want), rel=1e-6)
