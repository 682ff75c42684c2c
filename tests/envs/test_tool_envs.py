"""The trl environment_factory adapter: tool discovery, schemas, tool semantics, rewards, a real GRPO run."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest
import torch
from PIL import Image

from rlkit.envs import EditRefineToolEnv, RefineToolEnv, RetouchToolEnv, ToolEnvRollouts
from rlkit.envs._images import load_image, resize, to_pil
from rlkit.ops import EditProgram, apply_program
from rlkit.rewards import FunctionReward, to_trl_reward_funcs

SIZE = (64, 64)


def _tools(cls):
    """The methods trl 1.16 exposes as tools (public class functions but reset/get_reward)."""
    return sorted(
        name
        for name, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
        if name not in ("reset", "get_reward") and not name.startswith("_")
    )


def _row():
    src = resize(load_image("coffee"), SIZE)
    return {
        "prompt": [{"role": "user", "content": "brighten"}],
        "image": src,
        "instruction": "brighten",
        "target_image": apply_program(src[None], EditProgram.from_dict({"exposure": 0.6}))[0],
    }


def _l1(batch):
    return [
        1.0 - float(np.abs(np.asarray(o, np.float64) - np.asarray(t, np.float64)).mean())
        for o, t in zip(batch.column("output_image"), batch.column("target_image"))
    ]


L1 = FunctionReward(_l1, name="l1")


def test_trl_sees_exactly_the_intended_tools_with_valid_schemas():
    from transformers.utils import get_json_schema

    assert _tools(RetouchToolEnv) == ["apply_edits", "finish"]
    assert _tools(RefineToolEnv) == ["apply_edits", "finish", "inpaint_region", "undo"]
    assert _tools(EditRefineToolEnv) == ["apply_edits", "edit_image", "finish", "inpaint_region", "undo"]
    schema = get_json_schema(RefineToolEnv.inpaint_region)["function"]
    assert schema["name"] == "inpaint_region"
    assert schema["parameters"]["required"] == ["x1", "y1", "x2", "y2", "prompt"]
    assert schema["parameters"]["properties"]["x1"]["type"] == "integer"
    assert "Left edge" in schema["parameters"]["properties"]["x1"]["description"]
    for cls in (EditRefineToolEnv,):
        for name in _tools(cls):
            assert get_json_schema(getattr(cls, name))["function"]["description"]


def test_reset_tools_and_reward():
    env = RetouchToolEnv.factory(reward=L1, image_size=SIZE, max_steps=2)()
    row = _row()
    text = env.reset(**row)
    assert "64x64" in text and "2 calls" in text
    assert env.get_reward() == 0.0  # nothing done yet: invalid_reward
    out = env.apply_edits("garbage !!")
    assert isinstance(out, str) and out.startswith("error:") and "unchanged" in out
    out = env.apply_edits('{"Exposure2012": 0.6}')
    assert isinstance(out, list) and out[0]["type"] == "image" and isinstance(out[0]["image"], Image.Image)
    assert "exposure=+0.6" in out[1]["text"]
    assert torch.allclose(env.episode.current, row["target_image"], atol=1e-6)
    assert env.get_reward() == pytest.approx(1.0, abs=1e-6)
    assert env.apply_edits("contrast=5").startswith("error: the budget of 2")
    assert env.finish() == "finished; the current image is submitted"
    assert env.apply_edits("contrast=5").startswith("error: the episode is finished")
    env.reset(**row)  # a fresh rollout on the same instance (trl pools instances)
    assert env.episode.steps == 0 and env.tool_log == [] and env.get_reward() == 0.0


def test_refine_tools_inpaint_and_undo(fill_tool):
    env = RefineToolEnv(inpaint_tool=fill_tool, image_size=SIZE, max_steps=4, return_image=False)
    env.reset(**_row())
    start = env.episode.current.clone()
    msg = env.inpaint_region(0, 0, 32, 16, "a saucer")
    assert msg.startswith("inpainted box [0, 0, 32, 16] (12.5% of the image)")
    assert torch.equal(env.episode.current[:, 16:], start[:, 16:])
    assert not torch.equal(env.episode.current[:, :16, :32], start[:, :16, :32])
    assert env.inpaint_region(10, 10, 5, 20, "x").startswith("error:") and "x1 < x2" in env.tool_log[-1]
    assert "outside" in env.inpaint_region(100, 100, 120, 120, "x")
    assert env.undo() == "undid the last edit" and torch.equal(env.episode.current, start)
    assert env.get_reward() is None  # no reward configured: trl ignores the column


def test_trl_bridge_scores_all_tool_environments_in_one_call():
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return _l1(batch)

    envs = [RetouchToolEnv(image_size=SIZE) for _ in range(3)]
    for env in envs:
        env.reset(**_row())
    envs[0].apply_edits("exposure=+0.6")
    envs[1].apply_edits("nonsense")
    envs[2].finish()
    (func,), weights = to_trl_reward_funcs(FunctionReward(counting, name="l1"), executor=ToolEnvRollouts(),
                                           invalid_reward=0.0)
    scores = func(prompts=[None] * 3, completions=[None] * 3, environments=envs)
    assert calls == [3] and weights == [1.0]  # one reward call for the whole step
    # env 1 never succeeded: invalid_reward; env 2 finished without an edit: the unedited photo's L1 score
    assert scores[0] == pytest.approx(1.0, abs=1e-6) and scores[1] == 0.0 and 0 < scores[2] < 1.0
    assert func.__name__ == "l1"
    with pytest.raises(ValueError, match="environment_factory"):
        func(prompts=[None], completions=[None])


def test_tool_call_round_trip_through_the_tiny_vlm_chat_template():
    """trl parses the model's tool call with the tokenizer's response template, calls the method and renders
    the tool message (image + text) with the chat template; do the same steps here."""
    from trl.chat_template_utils import add_response_schema, parse_response, supports_tool_calling
    from trl.data_utils import prepare_multimodal_messages

    from rlkit.testing import load_processor, tiny_model_path

    processor = load_processor(tiny_model_path("qwen2_5_vl"))
    assert supports_tool_calling(processor)
    processor = add_response_schema(processor)
    env = RetouchToolEnv(image_size=SIZE)
    env.reset(**_row())
    user = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "brighten"}]}]
    prefix = processor.tokenizer.encode(
        processor.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    )
    call_json = '{"name": "apply_edits", "arguments": {"program": "exposure=+0.6"}}'
    generated = f"<tool_call>\n{call_json}\n</tool_call><|im_end|>"
    parsed = parse_response(
        processor.tokenizer,
        processor.tokenizer.encode(generated),
        prefix=prefix,
        tools=[env.apply_edits, env.finish],
    )
    call = parsed["tool_calls"][0]["function"]
    result = getattr(env, call["name"])(**call["arguments"])
    assert result[1]["text"] == "applied exposure=+0.6"
    messages = [
        *user,
        {"role": "assistant", "content": "", "tool_calls": parsed["tool_calls"]},
        {"role": "tool", "name": call["name"], "content": result},
    ]
    text = processor.apply_chat_template(
        prepare_multimodal_messages(messages, images=[to_pil(env.episode.initial)]), tokenize=False
    )
    assert text.count("<|image_pad|>") == 2 and "applied exposure=+0.6" in text


@pytest.mark.slow
def test_grpo_trainer_runs_with_the_environment_factory(tmp_path):
    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig, GRPOTrainer

    from rlkit.testing import load_processor, tiny_model_path

    path = tiny_model_path("qwen2_5_vl")
    img = load_image("coffee")
    pil = Image.fromarray((resize(img, SIZE).permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Make it brighter."}]}]
    ds = Dataset.from_list(
        [{"prompt": prompt, "image": pil, "target_image": pil, "instruction": "brighter"}] * 4
    )
    resets = []

    class Recording(RetouchToolEnv):
        def reset(self, **row):
            resets.append(sorted(row))
            return super().reset(**row)

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        max_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        max_tool_calling_iterations=2,
    )
    trainer = GRPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(path),
        processing_class=load_processor(path),
        reward_funcs=[],
        args=args,
        train_dataset=ds,
        environment_factory=Recording.factory(reward=L1, image_size=SIZE),
    )
    assert sorted(t.__name__ for t in trainer.tools) == ["apply_edits", "finish"]
    assert trainer.reward_func_names == ["Recording"]
    trainer.train()
    assert trainer.state.global_step == 2
    assert len(resets) == 8 and resets[0] == ["image", "instruction", "prompt", "target_image"]
    logged = [h for h in trainer.state.log_history if "rewards/Recording/mean" in h]
    assert len(logged) == 2 and all(h["tools/call_frequency"] >= 0 for h in logged)


def test_env_reward_executes_single_turn_completions():
    """The single-turn path: trl hands completions + columns; each is executed and scored, malformed -> 0."""
    from rlkit.envs import RetouchEnvReward

    row = _row()
    pil = to_pil(row["image"])
    target = row["target_image"]
    logged = {}
    func = RetouchEnvReward(L1, image_size=SIZE)
    completions = [
        [{"role": "assistant", "content": "Brighten. {exposure=+0.6}"}],
        [{"role": "assistant", "content": "import os; os.remove('x')"}],
        [{"role": "assistant", "content": '<think>a bit</think><answer>{"Exposure2012": 0.3}</answer>'}],
    ]
    scores = func(
        prompts=[row["prompt"]] * 3,
        completions=completions,
        image=[pil] * 3,
        target_image=[target] * 3,
        instruction=["brighten"] * 3,
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    src = resize(load_image(pil), SIZE)
    expected = apply_program(src[None], EditProgram.from_dict({"exposure": 0.3}))[0]
    ref = 1.0 - np.abs(expected.numpy().astype(np.float64) - target.numpy()).mean()
    assert scores[1] == 0.0 and scores[2] == pytest.approx(ref, abs=1e-6)
    # the photo went through uint8 PIL, so the exact edit is within quantisation of the float target
    assert scores[0] == pytest.approx(1.0, abs=3e-3)
    assert logged["rewards/retouch_l1/valid_fraction"] == pytest.approx(2 / 3)
    assert func.__name__ == "retouch_l1"


def test_edit_refine_tools_report_tool_failures_and_undo_programs():
    calls = []

    def editor(image, instruction, *, mask=None, source=None, seed=None):
        calls.append((instruction, source is not None, seed))
        if instruction == "explode":
            raise RuntimeError("CUDA out of memory")
        return torch.zeros_like(image)

    env = EditRefineToolEnv(
        inpaint_tool=lambda *a, **k: None, edit_tool=editor, image_size=SIZE, max_steps=8, return_image=False
    )
    env.reset(**_row())
    start = env.episode.current.clone()
    assert env.edit_image("explode") == "error: editing failed: CUDA out of memory"
    assert torch.equal(env.episode.current, start)
    assert env.inpaint_region(0, 0, 8, 8, "x").startswith("error: inpainting failed")  # tool returned None
    assert env.apply_edits("exposure=+0.3").startswith("applied")
    assert env.edit_image("make it night") == "edited: make it night"
    assert float(env.episode.current.abs().max()) == 0.0 and calls[-1][:2] == ("make it night", True)
    assert env.undo() == "undid the last edit" and len(env.episode.programs) == 1
    assert env.undo() == "undid the last edit" and env.episode.programs == []
    assert torch.equal(env.episode.current, start)


def test_env_reward_reuses_its_env_without_leaking_state_between_calls():
    """A reused RetouchEnvReward gives each call exactly what a fresh one gives (rows and images re-armed)."""
    from rlkit.envs import RetouchEnvReward

    row = _row()
    pil = to_pil(row["image"])
    dark = to_pil(resize(load_image(pil), SIZE) * 0.5)
    calls = [
        (["{exposure=+0.6}", "garbage"], [pil, pil]),
        (["garbage", "{exposure=-0.3}"], [dark, pil]),
        (["{exposure=+0.6}", "{exposure=+0.6}"], [dark, dark]),
    ]
    reused = RetouchEnvReward(L1, image_size=SIZE)
    for texts, images in calls:
        kwargs = {"image": images, "target_image": [row["target_image"]] * 2, "instruction": ["x"] * 2}
        fresh = RetouchEnvReward(L1, image_size=SIZE)(completions=texts, **kwargs)
        assert reused(completions=texts, **kwargs) == fresh
