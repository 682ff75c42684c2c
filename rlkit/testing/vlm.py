"""Tiny Qwen-VL policies and a tiny text-only causal LM (random seeded weights, local tokenizer).

Each builder writes a directory that the ordinary calls load: ``AutoModelForImageTextToText`` +
``AutoProcessor`` (after ``tiny_model_path``; see ``rlkit.policies.loading``) for the VLMs, and
``AutoModelForCausalLM`` + ``AutoTokenizer`` for ``"text"``.

Chat template: all three VLM kinds use trl's shipped Qwen3-VL template text, byte for byte
(``trl/chat_templates/qwen3_vl.jinja``). The original Qwen2-VL / Qwen2.5-VL template cannot render
tool calls or tool messages, so trl's ``environment_factory`` would reject it; the Qwen3-VL template
renders images with the same ``<|vision_start|><|image_pad|><|vision_end|>`` tokens, and trl
recognises it (tool-call parsing via ``add_response_schema``, prefix-preserving, training variant
with generation markers). The text model uses trl's ``qwen2_5.jinja`` (Qwen2.5 instruct, with tools).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import trl
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    GenerationConfig,
    Qwen2_5_VLConfig,
    Qwen2Config,
    Qwen2VLConfig,
    Qwen3VLConfig,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from rlkit.policies.loading import PROCESSOR_CLASSES

from .tokenizers import qwen_tokenizer

VLM_KINDS: tuple[str, ...] = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl")

TEXT_HIDDEN = 64
TEXT_LAYERS = 2
TEXT_HEADS = 4
TEXT_KV_HEADS = 2
HEAD_DIM = TEXT_HIDDEN // TEXT_HEADS  # 16
MROPE_SECTION = [2, 3, 3]  # (temporal, height, width) rotary pairs: must sum to HEAD_DIM / 2
VISION_HIDDEN = 32
VISION_DEPTH = 2
VISION_HEADS = 2
MIN_PIXELS = 32 * 32
MAX_PIXELS = 224 * 224
"""Image processor pixel budget: a 64x64 image -> 16 patches -> 4 image tokens; large photos are
downscaled to <= 224x224 pixels (<= 64 image tokens) so CPU tests stay fast."""

RECIPE: dict[str, Any] = {
    "text": [TEXT_HIDDEN, TEXT_LAYERS, TEXT_HEADS, TEXT_KV_HEADS, MROPE_SECTION],
    "vision": [VISION_HIDDEN, VISION_DEPTH, VISION_HEADS],
    "pixels": [MIN_PIXELS, MAX_PIXELS],
    "templates": ["trl:qwen3_vl.jinja", "trl:qwen2_5.jinja"],
}
"""Everything that shapes the saved files; part of the cache key."""


def trl_chat_template(name: str) -> str:
    """The text of one of trl's shipped chat templates (``name`` without ``.jinja``)."""
    path = Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja"
    if not path.is_file():
        raise FileNotFoundError(f"trl {trl.__version__} ships no chat template {name!r} (looked for {path})")
    return path.read_text(encoding="utf-8")


def _vocab_size(tokenizer: Any) -> int:
    # Real Qwen checkpoints pad the embedding table beyond the tokenizer; round up to a multiple of 64.
    return (len(tokenizer) + 63) // 64 * 64


def _text_kwargs(tokenizer: Any) -> dict[str, Any]:
    return {
        "vocab_size": _vocab_size(tokenizer),
        "hidden_size": TEXT_HIDDEN,
        "intermediate_size": 2 * TEXT_HIDDEN,
        "num_hidden_layers": TEXT_LAYERS,
        "num_attention_heads": TEXT_HEADS,
        "num_key_value_heads": TEXT_KV_HEADS,
        "max_position_embeddings": 4096,
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "tie_word_embeddings": False,
    }


def _token_ids(tokenizer: Any) -> dict[str, int]:
    return {
        "image_token_id": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    }


def _vlm_config(kind: str, tokenizer: Any):
    text = _text_kwargs(tokenizer)
    rope = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": list(MROPE_SECTION)}
    if kind == "qwen2_5_vl":
        vision = {
            "depth": VISION_DEPTH,
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": 2 * VISION_HIDDEN,
            "num_heads": VISION_HEADS,
            "out_hidden_size": TEXT_HIDDEN,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [VISION_DEPTH - 1],
        }
        return Qwen2_5_VLConfig(
            text_config={**text, "rope_parameters": rope},
            vision_config=vision,
            **_token_ids(tokenizer),
            tie_word_embeddings=False,
        )
    if kind == "qwen2_vl":
        vision = {
            "depth": VISION_DEPTH,
            "embed_dim": VISION_HIDDEN,
            "hidden_size": TEXT_HIDDEN,
            "mlp_ratio": 2,
            "num_heads": VISION_HEADS,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        }
        return Qwen2VLConfig(
            text_config={**text, "rope_parameters": rope},
            vision_config=vision,
            **_token_ids(tokenizer),
            tie_word_embeddings=False,
        )
    if kind == "qwen3_vl":
        vision = {
            "depth": VISION_DEPTH,
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": 2 * VISION_HIDDEN,
            "num_heads": VISION_HEADS,
            "out_hidden_size": TEXT_HIDDEN,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 256,
            "deepstack_visual_indexes": [0],
        }
        text3 = {**text, "head_dim": HEAD_DIM, "rope_parameters": {**rope, "mrope_interleaved": True}}
        return Qwen3VLConfig(
            text_config=text3, vision_config=vision, **_token_ids(tokenizer), tie_word_embeddings=False
        )
    raise ValueError(f"unknown VLM kind {kind!r}; expected one of {VLM_KINDS}")


def _image_processor(kind: str):
    if kind == "qwen3_vl":
        patch, mean, std = 16, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    else:
        patch, mean, std = 14, [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    return Qwen2VLImageProcessorPil(
        patch_size=patch,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=mean,
        image_std=std,
        size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
    )


def _seeded(seed: int):
    torch.manual_seed(seed)


def build_vlm(kind: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny ``kind`` VLM (model, tokenizer, image-only processor, chat template) to ``out_dir``."""
    out = Path(out_dir)
    tokenizer = qwen_tokenizer()
    config = _vlm_config(kind, tokenizer)
    _seeded(seed)
    with torch.device("cpu"):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[
            tokenizer.convert_tokens_to_ids("<|im_end|>"),
            tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        ],
        pad_token_id=config.text_config.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
    )
    template = trl_chat_template("qwen3_vl")
    tokenizer.chat_template = template
    processor = PROCESSOR_CLASSES[kind](
        image_processor=_image_processor(kind), tokenizer=tokenizer, chat_template=template
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_text_lm(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2 causal LM sharing the VLMs' tokenizer (trl's Qwen2.5 chat template)."""
    out = Path(out_dir)
    tokenizer = qwen_tokenizer()
    tokenizer.chat_template = trl_chat_template("qwen2_5")
    config = Qwen2Config(
        **_text_kwargs(tokenizer), rope_parameters={"rope_type": "default", "rope_theta": 1e6}
    )
    _seeded(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[
            tokenizer.convert_tokens_to_ids("<|im_end|>"),
            tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        ],
        pad_token_id=config.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


__all__ = [
    "MAX_PIXELS",
    "MIN_PIXELS",
    "RECIPE",
    "VLM_KINDS",
    "build_text_lm",
    "build_vlm",
    "trl_chat_template",
]
