"""Tiny inpainting pipelines load back with DiffusionPipeline and inpaint a 64x64 photo crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import rlkit.testing as rt


def _crop_and_mask() -> tuple[Image.Image, Image.Image, np.ndarray]:
    from skimage import data

    photo = Image.fromarray(data.astronaut()[160:224, 180:244])
    mask = np.zeros((64, 64), dtype=bool)
    mask[16:40, 20:48] = True
    return photo, Image.fromarray(mask.astype(np.uint8) * 255), mask


def _as_float(images) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.float64) / 255.0 for im in images])


@pytest.fixture(scope="module")
def sd_pipe():
    from diffusers import DiffusionPipeline, StableDiffusionInpaintPipeline

    pipe = DiffusionPipeline.from_pretrained(rt.tiny_model_path("sd_inpaint"))
    assert isinstance(pipe, StableDiffusionInpaintPipeline)
    assert (
        StableDiffusionInpaintPipeline.from_pretrained(
            rt.tiny_model_path("sd_inpaint")
        ).unet.config.in_channels
        == 9
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_sd_inpaint_keeps_pixels_outside_the_mask(sd_pipe):
    photo, mask_img, mask = _crop_and_mask()
    # padding_mask_crop makes the pipeline paste the result back over the original outside the mask.
    out = sd_pipe(
        prompt="clean skin",
        image=photo,
        mask_image=mask_img,
        height=64,
        width=64,
        num_inference_steps=2,
        padding_mask_crop=0,
        generator=torch.Generator().manual_seed(0),
    ).images
    got, ref = _as_float(out)[0], _as_float([photo])[0]
    assert got.shape == (64, 64, 3)
    # Outside the mask the output is the input photo, to the 8-bit quantum.
    assert np.abs(got[~mask] - ref[~mask]).max() <= 1 / 255
    # Inside, the random-weight model really repaints.
    assert np.abs(got[mask] - ref[mask]).mean() > 0.02


def test_sd_inpaint_is_seeded_and_batched(sd_pipe):
    photo, mask_img, _ = _crop_and_mask()

    def run(seed: int) -> np.ndarray:
        return sd_pipe(
            prompt=["a photo", "a photo"],
            image=photo,
            mask_image=mask_img,
            height=64,
            width=64,
            num_inference_steps=2,
            output_type="np",
            generator=torch.Generator().manual_seed(seed),
        ).images

    a, b, c = run(0), run(0), run(1)
    assert a.shape == (2, 64, 64, 3) and 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.abs(a - c).max() > 1e-3


def test_flux_fill_loads_and_inpaints():
    from diffusers import DiffusionPipeline, FluxFillPipeline

    pipe = DiffusionPipeline.from_pretrained(rt.tiny_model_path("flux_fill"))
    assert isinstance(pipe, FluxFillPipeline)
    assert pipe.transformer.config.in_channels == 20 and pipe.tokenizer.model_max_length == 77
    pipe.set_progress_bar_config(disable=True)
    photo, mask_img, _ = _crop_and_mask()

    def run(seed: int) -> np.ndarray:
        return pipe(
            prompt="remove the spot",
            image=photo,
            mask_image=mask_img,
            height=64,
            width=64,
            num_inference_steps=2,
            max_sequence_length=32,
            output_type="np",
            generator=torch.Generator().manual_seed(seed),
        ).images

    a, b = run(0), run(0)
    assert a.shape == (1, 64, 64, 3) and np.isfinite(a).all() and 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_allclose(a, b, atol=1e-6)
    # FluxFill regenerates the whole latent (no paste-back promise), so only check it responds to the mask.
    full = pipe(
        prompt="remove the spot",
        image=photo,
        mask_image=Image.new("L", (64, 64), 255),
        height=64,
        width=64,
        num_inference_steps=2,
        max_sequence_length=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images
    assert np.abs(full - a).max() > 1e-3
