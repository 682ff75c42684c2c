"""Tiny perception agents (random seeded weights, local tokenizers): the two saliency nets in seconds.

- ``saliency_text``: :class:`~rlkit.policies.TextSaliencyNet` with a 2-layer ViT (64 px input, 8 px
  patches: an 8 x 8 grid, width 64) and a 2-layer T5 encoder (width 64) with the locally trained Unigram
  tokenizer of ``rlkit.testing.tokenizers.t5_tokenizer``; decoder 8 -> 32 px logits (resized to 64).
- ``saliency_vlm``: :class:`~rlkit.policies.VLMSaliencyNet` on the tiny Qwen3-VL of ``rlkit.testing``
  (the ``qwen3_vl`` kind's recipe, same seed), 128 px inputs (a 4 x 4 token grid per image), features from layer 0
  (the vision encoder's output at the edited image's tokens: the paper's "vision encoder features"; the
  2-layer language model adds little at this size), LoRA r=8 on the language model, decoder 4 -> 64 px
  (resized to 128).

Both folders load with ``AutoModel.from_pretrained(dir)`` once ``rlkit.policies`` nets are imported (or
with ``rlkit.policies.load_saliency_net``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import T5Config, ViTConfig
from transformers.utils import logging as hf_logging

from rlkit.policies import TextSaliencyConfig, TextSaliencyNet, VLMSaliencyNet

from .tokenizers import t5_tokenizer
from .vlm import build_vlm

PERCEPTION_KINDS: tuple[str, ...] = ("saliency_text", "saliency_vlm")

NET_VERSION = 1
"""Bump when the nets' code changes what a saved folder holds (part of the cache key, with ``RECIPE``)."""

RECIPE: dict[str, Any] = {
    "saliency_text": {
        "net_version": NET_VERSION,
        "vit": {"image_size": 64, "patch_size": 8, "hidden_size": 64, "num_hidden_layers": 2,
                "num_attention_heads": 4, "intermediate_size": 128},
        "t5": {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_heads": 4, "dropout_rate": 0.0},
        "net": {"refine_heads": 4, "refine_pool_sizes": [2, 4, 8], "decoder_channels": [32, 16],
                "decoder_factors": [2, 2], "max_text_length": 32, "loss_alpha": 0.5},
    },
    "saliency_vlm": {
        "net_version": NET_VERSION,
        "backbone": "qwen3_vl",
        "net": {"image_size": 128, "feature_layer": 0, "decoder_dim": 64, "decoder_heads": 4,
                "decoder_channels": [32, 32, 16, 16], "decoder_factors": [2, 2, 2, 2], "lora_r": 8,
                "lora_alpha": 16, "lora_dropout": 0.0, "max_instruction_tokens": 48},
    },
}
"""Everything that shapes the saved files; part of the cache key."""


def build_text_saliency(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the tiny text-conditioned saliency net (model + T5 tokenizer) to ``out_dir``."""
    r = RECIPE["saliency_text"]
    tok = t5_tokenizer()
    t5 = T5Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                  decoder_start_token_id=tok.pad_token_id, **r["t5"])
    config = TextSaliencyConfig(vision_config=ViTConfig(**r["vit"]).to_dict(), text_config=t5.to_dict(), **r["net"])
    torch.manual_seed(seed)
    model = TextSaliencyNet(config)
    model.tokenizer = tok
    out = Path(out_dir)
    model.save_pretrained(out)
    return out


def build_vlm_saliency(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the tiny VLM saliency net (tiny Qwen3-VL backbone + LoRA + decoder, tokenizer, image processor)."""
    r = RECIPE["saliency_vlm"]
    out = Path(out_dir)

    with tempfile.TemporaryDirectory(prefix=".backbone-", dir=out) as tmp:  # the tiny Qwen3-VL, built here
        backbone = build_vlm(r["backbone"], tmp, seed=seed)
        torch.manual_seed(seed)
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the base model skips the checkpoint's lm_head: expected, not news
        try:
            model = VLMSaliencyNet.from_backbone(backbone, **r["net"])
        finally:
            hf_logging.set_verbosity(level)
        model.save_pretrained(out)
    return out


__all__ = ["PERCEPTION_KINDS", "RECIPE", "build_text_saliency", "build_vlm_saliency"]
