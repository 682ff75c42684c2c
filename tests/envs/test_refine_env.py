"""RefineEnv with the tiny inpainting / instruction-editing pipelines: masks, history, undo, stopping."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from PIL import Image
from skimage import draw, morphology

from rlkit.envs import InstructionEditTool, RefineEnv
from rlkit.envs._images import load_image, resize
from rlkit.ops import EditProgram, apply_program
from rlkit.rewards import FunctionReward

SIZE = (64, 64)


def _brightness(batch):
    """Reference reward: mean pixel value of the current image (numpy)."""
    return [float(np.asarray(o, dtype=np.float64).mean()) for o in batch.column("output_image")]


BRIGHT = FunctionReward(_brightness, name="brightness")


def _row(**extra):
    return {"image": resize(load_image("astronaut"), SIZE), "prompt": "an astronaut portrait", **extra}


def test_check_env_with_tools(fill_tool):
    env = RefineEnv([_row()], inpaint_tool=fill_tool, reward=BRIGHT, image_size=SIZE, include_source=True)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert obs["instruction"] == "an astronaut portrait"  # Agentic Retoucher: the T2I prompt
    assert info["score"] == pytest.approx(
        float(resize(load_image("astronaut"), SIZE).double().mean()), abs=1e-6
    )


def test_inpaint_regions_changes_only_the_disks_then_undo_restores(fill_tool):
    env = RefineEnv([_row()], inpaint_tool=fill_tool, image_size=SIZE, max_iterations=4)
    env.reset(seed=0)
    before = env.current_image.clone()
    action = json.dumps({"tool": "inpaint", "prompt": "a natural hand", "regions": [[20, 30], [50, 10]]})
    _, reward, terminated, _, info = env.step(action)
    assert info["valid"] and info["tool"] == "inpaint" and not terminated
    ref = np.zeros(SIZE, dtype=bool)  # default radius = 64 / 20 = 3.2 (the papers' H/20)
    for cx, cy in [(20, 30), (50, 10)]:
        ref[draw.disk((cy, cx), 3.2, shape=SIZE)] = True
    assert info["mask_area"] == pytest.approx(ref.mean())
    changed = (env.current_image - before).abs().amax(0) > 0
    assert not changed[torch.from_numpy(~ref)].any() and changed[torch.from_numpy(ref)].float().mean() > 0.5
    assert len(env.history) == 1 and env.history[0].tool == "inpaint"
    _, _, _, _, info = env.step({"tool": "undo"})
    assert info["valid"] and torch.equal(env.current_image, before) and env.history == []
    _, reward, _, _, info = env.step({"tool": "undo"})
    assert not info["valid"] and "nothing to undo" in info["error"] and reward == 0.0


def test_inpaint_from_row_saliency_uses_threshold_and_dilation(fill_tool):
    sal = np.zeros((32, 32))
    sal[8:12, 20:24] = 0.8  # upsampled x2 to the 64x64 observation
    env = RefineEnv(
        [_row(saliency=sal)], inpaint_tool=fill_tool, image_size=SIZE, mask_threshold=0.5, mask_dilation=2
    )
    env.reset(seed=0)
    _, _, _, _, info = env.step({"tool": "inpaint", "prompt": "fix", "saliency": True})
    up = torch.nn.functional.interpolate(
        torch.tensor(sal, dtype=torch.float32)[None, None], size=SIZE, mode="bilinear", align_corners=False
    )[0, 0].numpy()
    ref = morphology.dilation(up >= 0.5, morphology.disk(2)).astype(bool)
    assert info["valid"] and info["mask_area"] == pytest.approx(ref.mean())


def test_boxes_and_program_tools_and_history_png(fill_tool, tmp_path):
    env = RefineEnv([_row()], inpaint_tool=fill_tool, reward=BRIGHT, image_size=SIZE, max_iterations=3)
    env.reset(seed=0)
    start = env.current_image.clone()
    _, r1, _, _, info = env.step({"tool": "program", "program": "exposure=+0.5"})
    expected = apply_program(start[None], EditProgram.from_dict({"exposure": 0.5}))[0]
    assert torch.allclose(env.current_image, expected, atol=1e-6) and info["program"].to_dict() == {
        "exposure": 0.5
    }
    assert r1 == pytest.approx(
        float(expected.double().mean() - start.double().mean()), abs=1e-6
    )  # delta mode
    _, _, _, _, info = env.step({"tool": "inpaint", "prompt": "x", "boxes": [[0, 0, 16, 8]]})
    assert info["mask_area"] == pytest.approx(16 * 8 / 64 / 64)
    _, _, terminated, truncated, info = env.step("contrast=+10")  # plain text = engine program
    assert info["tool"] == "program" and terminated and not truncated and info["budget_exhausted"]
    png = env.save_png(str(tmp_path / "history.png"), height=32)
    with Image.open(png) as im:
        assert im.size == (4 * 32 + 3 * 4, 32)  # 3 images before the tools + the current one


@pytest.mark.parametrize(
    "action, match",
    [
        ('{"tool": "inpaint", "prompt": "x"', "not valid JSON"),
        ({"tool": "paint"}, "unknown tool"),
        ({"tool": "inpaint", "prompt": "x"}, "needs a mask"),
        ({"tool": "inpaint", "prompt": "x", "boxes": [[5, 5, 2, 9]]}, "x1 < x2"),
        ({"tool": "edit", "instruction": "warmer"}, "no edit_tool"),
        ({"tool": "program", "program": "__import__('os')"}, "did not parse"),
        ({"tool": "inpaint", "prompt": "x", "regions": [[1, 1]], "seed": "7"}, "seed"),
        (["not", "a", "dict"], "tool call dict"),
    ],
)
def test_invalid_actions_leave_the_image_and_report(fill_tool, action, match):
    env = RefineEnv([_row()], inpaint_tool=fill_tool, reward=BRIGHT, image_size=SIZE)
    env.reset(seed=0)
    before = env.current_image.clone()
    _, reward, terminated, _, info = env.step(action)
    assert not info["valid"] and match in info["error"] and reward == 0.0 and not terminated
    assert torch.equal(env.current_image, before) and env.history == []


def test_stop_when_no_improvement_reverts_and_ends():
    env = RefineEnv([_row()], reward=BRIGHT, image_size=SIZE, stop_when_no_improvement=True, max_iterations=5)
    env.reset(seed=0)
    _, r, t, _, info = env.step("exposure=+0.3")
    assert r > 0 and not t and not info["reverted"]
    brighter = env.current_image.clone()
    _, r, t, _, info = env.step("exposure=-0.6")  # darker: no improvement -> reverted, episode over
    assert t and info["reverted"] and r == 0.0 and torch.equal(env.current_image, brighter)
    assert len(env.history) == 1


def test_edit_tool_gets_source_and_mask(pix2pix_pipeline):
    calls = []
    tool = InstructionEditTool(pix2pix_pipeline, num_inference_steps=2, seed=0)

    def spy(image, instruction, *, mask=None, source=None, seed=None):
        calls.append((instruction, None if mask is None else mask.mean(), source, seed))
        return tool(image, instruction, mask=mask, source=source, seed=seed)

    src = resize(load_image("chelsea"), SIZE)
    row = {
        "image": resize(load_image("coffee"), SIZE),
        "source_image": src,
        "instruction": "make the cup red",
    }
    env = RefineEnv([row], edit_tool=spy, image_size=SIZE, include_source=True)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(
        obs["source"], (src.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    )
    before = env.current_image.clone()
    _, _, _, _, info = env.step({"tool": "edit", "instruction": "redder cup", "boxes": [[0, 0, 32, 64]]})
    assert info["valid"] and calls[0][0] == "redder cup" and calls[0][1] == pytest.approx(0.5)
    assert torch.equal(calls[0][2], src)
    assert torch.equal(env.current_image[:, :, 32:], before[:, :, 32:])
    assert not torch.equal(env.current_image[:, :, :32], before[:, :, :32])


def test_final_reward_mode_and_finish():
    env = RefineEnv([_row()], reward=BRIGHT, image_size=SIZE, reward_mode="final", max_iterations=4)
    env.reset(seed=0)
    _, r, t, _, _ = env.step("exposure=+0.2")
    assert r == 0.0 and not t
    _, r, t, _, info = env.step({"tool": "finish"})
    assert t and info["valid"] and r == pytest.approx(float(env.current_image.double().mean()), abs=1e-6)


def test_row_annotations_are_rescaled_to_the_observation():
    """`"regions": true` / `"boxes": true` use the row's GenBlemish/EditFHF annotations (row-image pixels)."""
    from rlkit.data.regions import Region, disk_mask

    seen = []

    def fill_black(image, mask, prompt, *, seed=None):  # a stand-in inpainter: paints the mask black
        seen.append(mask.copy())
        return image * torch.from_numpy(~mask)

    row = {
        "image": "astronaut",
        "regions": [Region((256, 128)), Region((100, 400), radius=40)],
        "boxes": [[0, 0, 256, 128]],
    }  # astronaut is 512x512; the observation 64x64 -> scale 1/8
    env = RefineEnv([row], inpaint_tool=fill_black, image_size=SIZE)
    env.reset(seed=0)
    _, _, _, _, info = env.step({"tool": "inpaint", "prompt": "fix", "regions": True})
    np.testing.assert_array_equal(
        seen[0], disk_mask([Region((32, 16)), Region((12.5, 50), radius=5)], 64, 64)
    )
    _, _, _, _, info = env.step({"tool": "inpaint", "prompt": "fix", "boxes": True})
    assert info["mask_area"] == pytest.approx(32 * 16 / 64 / 64) and seen[1][:16, :32].all()
    _, _, _, _, info = env.step({"tool": "inpaint", "prompt": "fix", "saliency": True})
    assert not info["valid"] and "saliency" in info["error"]


def test_a_failing_tool_is_an_invalid_action_not_a_crash():
    def broken(image, mask, prompt, *, seed=None):
        raise RuntimeError("pipeline exploded")

    env = RefineEnv([_row()], inpaint_tool=broken, image_size=SIZE, max_iterations=2)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step({"tool": "inpaint", "prompt": "x", "boxes": [[0, 0, 8, 8]]})
    assert not info["valid"] and "inpaint tool failed: RuntimeError: pipeline exploded" in info["error"]
    assert reward == 0.0 and not terminated and env.history == []
