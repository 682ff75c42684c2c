"""Diffusers tools on the tiny pipelines: masks respected, seeded, sizes preserved, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlkit.envs import InpaintTool, InstructionEditTool, ToolError, load_pipeline, masks_from_boxes
from rlkit.envs._images import ImageInputError


def _img(h=64, w=48, seed=0):
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


def test_sd_inpaint_changes_only_the_mask_and_is_seeded(sd_inpaint_tool):
    img = _img()
    mask = masks_from_boxes([[8, 8, 30, 40]], (64, 48))
    m = torch.from_numpy(mask)
    out = sd_inpaint_tool(img, mask, "a hand")
    assert out.shape == img.shape and out.dtype == torch.float32
    assert torch.equal(out[:, ~m], img[:, ~m])  # outside the mask: bit-identical
    assert (out[:, m] - img[:, m]).abs().mean() > 0.02  # inside: repainted
    assert torch.equal(out, sd_inpaint_tool(img, mask, "a hand"))  # tool seed 0: reproducible
    other = sd_inpaint_tool(img, mask, "a hand", seed=1)
    assert not torch.equal(out, other)
    assert torch.equal(sd_inpaint_tool(img, np.zeros((64, 48), bool), "x"), img)  # empty mask: no call


def test_inpaint_without_composite_returns_raw_pipeline_output(sd_inpaint_tool):
    tool = InpaintTool(sd_inpaint_tool.pipeline, num_inference_steps=2, seed=0, composite=False)
    img = _img()
    mask = masks_from_boxes([[8, 8, 30, 40]], (64, 48))
    out = tool(img, mask, "x")
    assert (out[:, ~torch.from_numpy(mask)] - img[:, ~torch.from_numpy(mask)]).abs().mean() > 0.01


def test_flux_fill_odd_sizes_come_back_at_input_size(flux_fill_path):
    tool = InpaintTool.from_pretrained(flux_fill_path, num_inference_steps=2, seed=3)
    img = _img(50, 70)
    mask = masks_from_boxes([[0, 0, 35, 25]], (50, 70))
    out = tool(img, mask, "sky")
    assert out.shape == (3, 50, 70)
    assert torch.equal(out[:, 25:, :], img[:, 25:, :])


def test_inpaint_errors_name_the_problem(sd_inpaint_tool, fill_tool, pix2pix_pipeline):
    with pytest.raises(ImageInputError, match=r"does not match the image size \(64, 48\)"):
        sd_inpaint_tool(_img(), np.ones((10, 10), bool), "x")
    with pytest.raises(ImageInputError, match=r"\[0, 1\]"):
        sd_inpaint_tool(_img() * 3, np.ones((64, 48), bool), "x")
    with pytest.raises(ToolError, match="mask_image"):
        InpaintTool(pix2pix_pipeline)
    with pytest.raises(ToolError, match="strength"):
        InpaintTool(lambda **kw: None, strength=0)
    with pytest.raises(ToolError, match=r"does not take call_kwargs \['num_frames'\]"):
        InpaintTool(fill_tool.pipeline, call_kwargs={"num_frames": 3})  # FluxFill takes no **kwargs
    with pytest.raises(ToolError, match="could not load"):
        load_pipeline("/nonexistent/pipeline/dir")


def test_instruction_edit_tool_with_a_user_pipeline(pix2pix_pipeline):
    tool = InstructionEditTool(pix2pix_pipeline, num_inference_steps=2, seed=0)
    img = _img(40, 56)
    out = tool(img, "make it warmer")
    assert out.shape == img.shape
    assert (out - img).abs().mean() > 0.02
    assert torch.equal(out, tool(img, "make it warmer"))
    mask = masks_from_boxes([[0, 0, 20, 20]], (40, 56))
    local = tool(img, "make it warmer", mask=mask)
    m = torch.from_numpy(mask)
    assert torch.equal(local[:, ~m], img[:, ~m]) and not torch.equal(local[:, m], img[:, m])
    with pytest.raises(ToolError, match="non-empty instruction"):
        tool(img, "  ")


def test_instruction_edit_passes_source_and_mask_to_pipelines_that_take_them():
    seen = {}

    class FakeEditPipeline:  # a pipeline that takes image lists and a mask, like multi-image editors
        vae_scale_factor = 8

        def __call__(
            self, prompt, image, mask_image=None, num_inference_steps=1, generator=None, output_type="np"
        ):
            seen.update(prompt=prompt, image=image, mask=mask_image, steps=num_inference_steps)
            return type("Out", (), {"images": np.full((1, 32, 32, 3), 0.5, dtype=np.float32)})()

    tool = InstructionEditTool(FakeEditPipeline(), num_inference_steps=3, source_mode="list")
    img, src = _img(30, 30, 1), _img(30, 30, 2)
    out = tool(img, "fix the hand", mask=np.ones((30, 30), bool), source=src)
    assert isinstance(seen["image"], list) and len(seen["image"]) == 2
    assert seen["mask"].size == (32, 32) and seen["steps"] == 3 and seen["prompt"] == "fix the hand"
    assert out.shape == (3, 30, 30) and torch.allclose(out, torch.full_like(out, 0.5), atol=1e-6)
