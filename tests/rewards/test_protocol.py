"""Reward protocol and combinators, checked against hand-worked numbers."""

import asyncio
import logging
import math

import pytest

from rlkit.rewards import (
    AsyncReward,
    FunctionReward,
    Gate,
    NormalizedSum,
    Reward,
    RewardBatch,
    RewardResult,
    RewardValueError,
    WeightedSum,
    completion_text,
    reward,
)
from rlkit.rewards.batch import usable_samples


def const(name, values):
    return FunctionReward(lambda b: list(values), name=name)


class Length(Reward):
    name = "length"

    def compute(self, batch):
        return RewardResult([float(len(t)) for t in batch.completions])


def test_completion_text_handles_trl_shapes():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "hi"}]) == "hi"
    blocks = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}]},
              {"role": "tool", "content": "ignored"}, {"role": "assistant", "content": "b"}]
    assert completion_text(blocks) == "a\nb"


def test_batch_columns_roles_and_groups():
    b = RewardBatch(["x", "y", "z"], ["p", "p", "q"], {"image": [1, 2, 3], "target_image": [[4], [5], [6]],
                                                       "instruction": ["brighter", None, "warmer"]})
    assert b.source_images == [1, 2, 3]
    assert b.target_images == [4, 5, 6]  # list-valued (trl "images") -> first
    assert b.instructions == ["brighter", None, "warmer"]
    assert b.group_ids() == [0, 1, 2]  # same prompt text but different source images: different rows
    import torch

    same = RewardBatch(["x", "y", "z", "w"], ["p", "p", "p", "q"],
                       {"image": [torch.zeros(3, 4, 4), torch.zeros(3, 4, 4), torch.ones(3, 4, 4), torch.zeros(3, 4, 4)]})
    assert same.group_ids() == [0, 0, 1, 2]  # grouped by prompt text and image content, not object identity
    with pytest.raises(KeyError, match="'missing' is not in this batch.*image"):
        b.column("missing")
    with pytest.raises(ValueError, match="column 'a' has 1 values for 3"):
        RewardBatch(["x", "y", "z"], None, {"a": [1]})
    sub = b.select([2, 0])
    assert sub.completions == ["z", "x"] and sub.columns["image"] == [3, 1] and sub.group_ids() == [2, 0]


def test_reward_call_validates_and_names_the_reward():
    b = RewardBatch(["a", "bb"])
    assert Length()(b).scores == [1.0, 2.0]
    assert Length()(b).components["length"] == [1.0, 2.0]
    with pytest.raises(RewardValueError, match="'bad'.*nan.*sample 1"):
        const("bad", [1.0, math.nan])(b)
    with pytest.raises(RewardValueError, match="'inf'.*inf"):
        const("inf", [math.inf, 0.0])(b)
    with pytest.raises(RewardValueError, match="'short' returned 1 scores for 2"):
        const("short", [1.0])(b)
    with pytest.raises(TypeError, match="expects a RewardBatch"):
        Length()(["a"])


def test_none_scores_are_logged_with_reason(caplog):
    class Picky(Reward):
        name = "picky"

        def compute(self, batch):
            return RewardResult([1.0, None], reasons=[None, "no reference"])

    with caplog.at_level(logging.INFO, logger="rlkit.rewards"):
        r = Picky()(RewardBatch(["a", "b"]))
    assert r.scores == [1.0, None]
    assert "picky" in caplog.text and "#1: no reference" in caplog.text


def test_decorator_and_score_helper():
    @reward("has_answer", columns=["ref"])
    def has_answer(batch):
        return [float("<answer>" in t) for t in batch.completions]

    assert has_answer.name == "has_answer" and has_answer.required_columns == ("ref",)
    assert has_answer.score(["<answer>1</answer>", "no"], ref=[1, 2]) == [1.0, 0.0]
    assert has_answer.missing_columns(["prompt"]) == ["ref"]
    assert FunctionReward(lambda b: [0.0], required_columns=["a|b"]).missing_columns(["b"]) == []


def test_weighted_sum_hand_worked():
    b = RewardBatch(["a", "b", "c"])
    f, t, s = const("f", [1, 0, 1]), const("t", [1, 1, None]), const("s", [0.5, 0.25, 0.8])
    ws = WeightedSum([f, t, s], [0.2, 0.4, 0.4])
    r = ws(b)
    assert r.scores == pytest.approx([0.2 + 0.4 + 0.2, 0.4 + 0.1, 0.2 + 0.32])
    assert r.components["t"] == [1.0, 1.0, None]
    renorm = WeightedSum([f, t, s], [0.2, 0.4, 0.4], none="renormalize")(b).scores
    assert renorm[2] == pytest.approx((0.2 + 0.32) / 0.6)
    assert WeightedSum([f, t, s], [0.2, 0.4, 0.4], none="propagate")(b).scores[2] is None
    assert WeightedSum({f: 2.0, s: -1.0})(b).scores == pytest.approx([1.5, -0.25, 1.2])


def test_weighted_sum_rejects_bad_configs():
    with pytest.raises(ValueError, match="2 weights for 1"):
        WeightedSum([Length()], [1, 2])
    with pytest.raises(ValueError, match="unique.*'length'"):
        WeightedSum([Length(), Length()])
    with pytest.raises(TypeError, match="not a Reward"):
        WeightedSum([lambda b: [1.0]])
    with pytest.raises(ValueError, match="none='zero'"):
        WeightedSum([Length()], none="zero")


def test_gate_skips_inner_reward_where_gate_fails():
    seen = []

    def inner_fn(batch):
        seen.extend(batch.completions)
        return [10.0 * len(t) for t in batch.completions]

    gate = FunctionReward(lambda b: [float(t.startswith("ok")) for t in b.completions], name="format")
    g = Gate(gate, FunctionReward(inner_fn, name="judge"))
    r = g(RewardBatch(["ok1", "bad", "ok22"]))
    assert seen == ["ok1", "ok22"]
    assert r.scores == [30.0, 0.0, 40.0]
    assert r.components["format"] == [1.0, 0.0, 1.0] and r.components["judge"] == [30.0, None, 40.0]
    assert Gate(gate, Length(), fail_value=None)(RewardBatch(["bad"])).scores == [None]


def test_normalized_sum_groupwise_zscore_and_minmax():
    # groups by prompt: {0,1,2} and {3,4}
    b = RewardBatch(["a", "b", "c", "d", "e"], ["p", "p", "p", "q", "q"])
    x = const("x", [1, 2, 3, 10, 10])
    y = const("y", [0, 0, 6, 1, 3])
    r = NormalizedSum([x, y], [1.0, 0.5], eps=0.0)(b)
    # x group p: mean 2, sample std 1 -> -1, 0, 1 ; group q: constant -> 0 / (0 + eps) = 0
    # y group p: mean 2, sample std sqrt(12) ; group q: mean 2, std sqrt(2)
    sy = math.sqrt(12)
    expected = [-1 + 0.5 * (-2 / sy), 0 + 0.5 * (-2 / sy), 1 + 0.5 * (4 / sy),
                0 + 0.5 * (-1 / math.sqrt(2)), 0 + 0.5 * (1 / math.sqrt(2))]
    assert r.scores == pytest.approx(expected)
    mm = NormalizedSum([x], method="minmax", scope="batch")(b).scores
    assert mm == pytest.approx([0.0, 1 / 9, 2 / 9, 1.0, 1.0])


def test_async_reward_and_async_combination():
    class Slow(AsyncReward):
        name = "slow"

        async def acompute(self, batch):
            await asyncio.sleep(0.01)
            return RewardResult([1.0] * len(batch))

    b = RewardBatch(["a", "b"])
    assert Slow()(b).scores == [1.0, 1.0]  # sync call of an async reward
    ws = WeightedSum([Slow(), Length()], [2.0, 1.0])
    assert ws.is_async
    assert asyncio.run(ws.acall(RewardBatch(["a", "bb"]))).scores == [3.0, 4.0]

    async def inside_loop():  # sync call while an event loop runs in this thread
        return Slow()(b).scores

    assert asyncio.run(inside_loop()) == [1.0, 1.0]

    async def coro_fn(batch):
        return [0.5] * len(batch)

    assert FunctionReward(coro_fn).is_async and FunctionReward(coro_fn)(b).scores == [0.5, 0.5]


def test_usable_samples_names_the_first_missing_input_of_each_sample():
    outputs, sources = ["o", None, None, "o"], ["s", "s", None, None]
    usable, reasons = usable_samples([(outputs, "no edited image"), (sources, "no source image")])
    assert usable == [0]
    assert reasons == [None, "no edited image", "no edited image", "no source image"]
    assert usable_samples([]) == ([], [])
