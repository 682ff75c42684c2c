"""Tiny diffusers inpainting pipelines (random seeded weights, locally trained tokenizers).

``build_sd_inpaint`` writes a ``StableDiffusionInpaintPipeline`` (9-channel UNet, blocks (32, 64),
2-block VAE, 2-layer CLIP text encoder, DDIM); ``build_flux_fill`` writes a ``FluxFillPipeline``
(1+1-layer Flux transformer with in_channels=20, 1-block VAE, tiny CLIP + tiny T5 with a Unigram
tokenizer, flow-matching Euler). Both load back with ``DiffusionPipeline.from_pretrained(dir)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

from .tokenizers import clip_tokenizer, t5_tokenizer

RECIPE: dict[str, Any] = {
    "sd_inpaint": {"unet": [32, 64], "vae": [32, 64], "clip": [32, 2, 4], "sched": "ddim"},
    "flux_fill": {
        "transformer": [1, 1, 2, 16, 20, 8],
        "vae": [4],
        "clip": [32, 2, 4],
        "t5": [32, 2, 4],
        "sched": "flow_euler",
    },
}
"""Everything that shapes the saved files; part of the cache key."""


def _clip_text_encoder(tokenizer: Any):
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
    )
    return CLIPTextModel(config)


def build_sd_inpaint(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny ``StableDiffusionInpaintPipeline`` (about 6 MB) to ``out_dir``."""
    # deferred: diffusers takes ~3.5 s to import and only the two tiny pipeline builders need it
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel


    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=64,
        norm_num_groups=32,
    )
    tokenizer = clip_tokenizer()
    text_encoder = _clip_text_encoder(tokenizer)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out = Path(out_dir)
    pipe.save_pretrained(out)
    return out


def build_flux_fill(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny ``FluxFillPipeline`` to ``out_dir``."""
    from diffusers import (  # deferred: as in build_sd_inpaint
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxFillPipeline,
        FluxTransformer2DModel,
    )


    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=20,
        out_channels=8,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    vae = AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=2,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    tokenizer = clip_tokenizer()
    text_encoder = _clip_text_encoder(tokenizer)
    tokenizer_2 = t5_tokenizer()
    t5_config = T5Config(
        vocab_size=len(tokenizer_2),
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        pad_token_id=tokenizer_2.pad_token_id,
        eos_token_id=tokenizer_2.eos_token_id,
        decoder_start_token_id=tokenizer_2.pad_token_id,
        tie_word_embeddings=False,
    )
    text_encoder_2 = T5EncoderModel(t5_config)
    scheduler = FlowMatchEulerDiscreteScheduler()
    pipe = FluxFillPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    out = Path(out_dir)
    pipe.save_pretrained(out)
    return out


__all__ = ["RECIPE", "build_flux_fill", "build_sd_inpaint"]
