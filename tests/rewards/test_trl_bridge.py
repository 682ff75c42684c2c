"""The trl adapter: trl's call signature, names, weights, column checks, NaN errors, a real GRPOTrainer run."""

import asyncio
import json
import math

import pytest
from trl.trainer.utils import get_callable_name, is_async_callable

from rlkit.rewards import (
    AsyncReward,
    FormatReward,
    FunctionReward,
    RewardResult,
    TypeAccuracyReward,
    WeightedSum,
    to_trl_reward_funcs,
)

REF = json.dumps([{"flaw_type": "blur", "description": "the face is blurry"}])


def trl_kwargs(completions, **columns):
    """What GRPOTrainer._calculate_rewards passes (conversational completions)."""
    logged = {}
    n = len(completions)
    return dict(
        prompts=[[{"role": "user", "content": "find flaws"}]] * n,
        completions=[[{"role": "assistant", "content": c}] for c in completions],
        completion_ids=[[1, 2, 3]] * n,
        trainer_state=object(), log_extra=lambda *a: None,
        log_metric=lambda k, v: logged.__setitem__(k, v), **columns,
    ), logged


def test_weighted_sum_splits_into_named_trl_funcs_with_weights():
    ws = WeightedSum([FormatReward("diagnosis"), TypeAccuracyReward()], [0.2, 0.8])
    funcs, weights = to_trl_reward_funcs(ws, columns=["prompt", "reference_diagnosis"])
    assert [get_callable_name(f) for f in funcs] == ["format", "type_accuracy"]
    assert weights == [0.2, 0.8]
    kw, _ = trl_kwargs(['[{"flaw_type": "blur", "description": "x"}]', "nonsense", '[{"flaw_type": "noise"}]'],
                       reference_diagnosis=[REF, REF, None])
    assert funcs[0](**kw) == [1.0, 0.0, 1.0]
    assert funcs[1](**kw) == [1.0, 0.0, None]
    one, w = to_trl_reward_funcs(ws, split=False)
    assert len(one) == 1 and w == [1.0] and get_callable_name(one[0]) == ws.name


def test_parsing_is_shared_between_funcs_of_one_step():
    from rlkit.rewards.rollout import WORK_COUNTS

    funcs, _ = to_trl_reward_funcs(WeightedSum([FormatReward("diagnosis"), TypeAccuracyReward()]))
    kw, _ = trl_kwargs(["[]", "[]"], reference_diagnosis=[REF, REF])
    before = WORK_COUNTS["diagnosis"]
    for f in funcs:
        f(**kw)
    assert WORK_COUNTS["diagnosis"] - before == 2  # once per completion, not once per reward function
    kw2, _ = trl_kwargs(["[]", "[]"], reference_diagnosis=[REF, REF])  # next step: new list -> new batch
    funcs[0](**kw2)
    assert WORK_COUNTS["diagnosis"] - before == 4


def test_missing_columns_fail_at_construction_listing_them():
    from datasets import Dataset

    ds = Dataset.from_dict({"prompt": ["a"], "image": [None]})
    ws = WeightedSum([TypeAccuracyReward(), FunctionReward(lambda b: [0.0], name="x", required_columns=["mask"])])
    with pytest.raises(ValueError, match=r"lacks columns \['mask', 'reference_diagnosis'\].*type_accuracy needs"):
        to_trl_reward_funcs(ws, dataset=ds)
    funcs, _ = to_trl_reward_funcs(TypeAccuracyReward())  # no dataset given: checked on the first call
    kw, _ = trl_kwargs(["[]"])
    with pytest.raises(ValueError, match=r"needs dataset columns \['reference_diagnosis'\]"):
        funcs[0](**kw)


def test_nan_and_inf_raise_naming_the_reward():
    funcs, _ = to_trl_reward_funcs([FunctionReward(lambda b: [math.nan], name="broken_judge")])
    kw, _ = trl_kwargs(["x"])
    with pytest.raises(ValueError, match="broken_judge"):
        funcs[0](**kw)


def test_async_rewards_become_async_trl_funcs_and_components_are_logged():
    class Judge(AsyncReward):
        name = "judge"

        async def acompute(self, batch):
            await asyncio.sleep(0)
            return RewardResult([0.5] * len(batch), components={"confidence": [0.9] * len(batch)})

    funcs, _ = to_trl_reward_funcs([Judge(), FormatReward("diagnosis")])
    assert is_async_callable(funcs[0]) and not is_async_callable(funcs[1])
    kw, logged = trl_kwargs(["[]", "[]"])
    assert asyncio.run(funcs[0](**kw)) == [0.5, 0.5]
    assert logged == {"rewards/judge/confidence": pytest.approx(0.9)}


def test_environments_reach_the_batch():
    seen = {}

    def fn(batch):
        seen["envs"] = batch.environments
        return [e["r"] for e in batch.environments]

    funcs, _ = to_trl_reward_funcs([FunctionReward(fn, name="env_reward")])
    kw, _ = trl_kwargs(["a", "b"], environments=[{"r": 1.0}, {"r": 0.0}])
    assert funcs[0](**kw) == [1.0, 0.0]


@pytest.mark.slow
def test_real_grpo_trainer_run_logs_every_component(tmp_path):
    from datasets import Dataset
    from PIL import Image
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig, GRPOTrainer

    from rlkit.rewards import DescriptionSimilarityReward, ImageSimilarityReward
    from rlkit.testing import load_processor, tiny_model_path

    path = tiny_model_path("qwen2_5_vl")
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = load_processor(path)
    imgs = [Image.new("RGB", (64, 64), (40 * i, 100, 200 - 30 * i)) for i in range(4)]
    ds = Dataset.from_dict({
        "prompt": [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Diagnose flaws."}]}]]
        * 4,
        "image": imgs,
        "target_image": imgs,
        "reference_diagnosis": [REF] * 4,
    })
    seen_images = []

    class Async(AsyncReward):
        name = "async_judge"

        async def acompute(self, batch):
            seen_images.extend(batch.source_images)
            return RewardResult([float(len(t) % 3) for t in batch.completions])

    reward = WeightedSum(
        [FormatReward("diagnosis"), TypeAccuracyReward(), DescriptionSimilarityReward(method="rouge_l"),
         ImageSimilarityReward("l1", name="image_l1"), Async()],
        [0.2, 0.4, 0.4, 1.0, 0.1])
    funcs, weights = to_trl_reward_funcs(reward, dataset=ds)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=8, max_steps=2, logging_steps=1, report_to="none", use_cpu=True,
                      bf16=False, reward_weights=weights, save_strategy="no", learning_rate=1e-3)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=ds,
                          processing_class=processor)
    trainer.train()
    logs = {k for entry in trainer.state.log_history for k in entry}
    for name in ("format", "type_accuracy", "description_similarity", "image_l1", "async_judge"):
        assert f"rewards/{name}/mean" in logs
    assert seen_images and all(isinstance(im, Image.Image) for im in seen_images)
    # the tiny random model writes no valid diagnosis: format 0, the image reward cannot render -> 0 too
    first = trainer.state.log_history[0]
    assert first["rewards/format/mean"] == 0.0


@pytest.mark.slow
def test_grpo_trainer_with_http_grm_in_group_mode(tmp_path):
    """RetouchIQ-style policy reward (GRM + format) with the GRM served over loopback HTTP, inside trl."""
    import numpy as np
    from datasets import Dataset
    from PIL import Image
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig, GRPOTrainer

    from rlkit.rewards import GenerativeRewardModel, GRMServer, OpenAIBackend, retouchiq_policy_reward
    from rlkit.testing import load_processor, tiny_model_path

    requests = []

    def judge(messages):  # 10 x brightness of each edited image, in the GRM answer format
        ims = [b["image"] for m in messages if isinstance(m["content"], list) for b in m["content"]
               if b.get("type") == "image"][1:]
        requests.append(len(ims))
        s = "; ".join(f"Image {k}: {10 * np.asarray(im).mean() / 255:.2f}" for k, im in enumerate(ims, 1))
        return f"<metrics>\n1. bright\n</metrics>\n<scores>{s}</scores>"

    path = tiny_model_path("qwen2_5_vl")
    ds = Dataset.from_dict({
        "prompt": [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"Edit {i}."}]}]
                   for i in range(4)],
        "image": [Image.new("RGB", (64, 64), (60, 60, 60))] * 4,
        "output_image": [Image.new("RGB", (64, 64), (v, v, v)) for v in (51, 102, 153, 204)],
        "instruction": ["brighter"] * 4,
    })
    with GRMServer(judge) as srv:
        grm = GenerativeRewardModel(OpenAIBackend(srv.base_url, "judge", timeout=10), mode="group")
        funcs, weights = to_trl_reward_funcs(retouchiq_policy_reward(grm), dataset=ds)
        args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
                          max_completion_length=6, max_steps=1, logging_steps=1, report_to="none", use_cpu=True,
                          bf16=False, reward_weights=weights, save_strategy="no")
        trainer = GRPOTrainer(model=AutoModelForImageTextToText.from_pretrained(path), reward_funcs=funcs,
                              args=args, train_dataset=ds, processing_class=load_processor(path))
        trainer.train()
    log = trainer.state.log_history[0]
    assert requests and all(n == 2 for n in requests)  # one request per prompt holding its G=2 completions
    # each prompt's two completions share its output image: mean GRM reward = mean brightness of the rows drawn
    assert 0.19 < log["rewards/grm/mean"] < 0.81
    assert "rewards/format/mean" in log
