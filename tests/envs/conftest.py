"""Shared fixtures for the environment tests: tiny diffusers pipelines (built locally, cached) and rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def sd_inpaint_path():
    from rlkit.testing import tiny_model_path

    return tiny_model_path("sd_inpaint")


@pytest.fixture(scope="session")
def flux_fill_path():
    from rlkit.testing import tiny_model_path

    return tiny_model_path("flux_fill")


@pytest.fixture(scope="session")
def sd_inpaint_tool(sd_inpaint_path):
    from rlkit.envs import InpaintTool

    return InpaintTool.from_pretrained(sd_inpaint_path, num_inference_steps=2, seed=0)


@pytest.fixture(scope="session")
def fill_tool(flux_fill_path):
    """The tiny Flux-Fill inpainter (the fastest tiny pipeline; SD-inpaint is covered in test_tools)."""
    from rlkit.envs import InpaintTool

    return InpaintTool.from_pretrained(flux_fill_path, num_inference_steps=2, seed=0)


@pytest.fixture(scope="session")
def pix2pix_pipeline(sd_inpaint_path):
    """A tiny StableDiffusionInstructPix2PixPipeline: tiny SD parts, 8-channel UNet (random weights)."""
    from diffusers import (
        StableDiffusionInpaintPipeline,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )

    base = StableDiffusionInpaintPipeline.from_pretrained(sd_inpaint_path)
    torch.manual_seed(0)
    config = dict(base.unet.config)
    config["in_channels"] = 8
    unet = UNet2DConditionModel.from_config(config)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        unet=unet,
        scheduler=base.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture()
def photo_row():
    """A row with a real photo (bundled) and an instruction."""
    return {"image": "coffee", "instruction": "make it brighter and warmer"}


@pytest.fixture()
def rng_image():
    g = np.random.default_rng(0)
    return (g.uniform(0.1, 0.9, size=(48, 40, 3)) * 255).astype(np.uint8)
