"""Tiny Qwen-VL policies: Auto-class loading, image tokens, generation, tool-call chat template."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import rlkit.testing as rt

VLM_KINDS = ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"]
# Spatial patch size of each family's vision tower (Qwen2/2.5-VL: 14 px, Qwen3-VL: 16 px), merge 2x2.
MODEL_CLASS = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}
PATCH = {"qwen2_5_vl": 14, "qwen2_vl": 14, "qwen3_vl": 16}


def _photo(size: int = 64) -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()[180 : 180 + size, 200 : 200 + size])


@pytest.fixture(scope="module", params=VLM_KINDS)
def vlm(request):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = rt.tiny_model_path(request.param)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    return request.param, path, model, processor


def _expected_tokens(kind: str, h: int, w: int) -> int:
    # Hand-worked smart_resize: round each side to a multiple of patch*merge, then one token per 2x2 patches.
    factor = PATCH[kind] * 2
    gh, gw = round(h / factor) * 2, round(w / factor) * 2
    return gh * gw // 4


def test_auto_classes_load_real_multimodal_processor(vlm):
    kind, path, model, processor = vlm
    assert type(model).__name__ == MODEL_CLASS[kind]
    assert model.config.model_type == kind
    assert hasattr(processor, "image_processor") and hasattr(processor, "tokenizer")
    assert type(rt.load_processor(path)) is type(processor)
    # Tiny: a few hundred thousand parameters, a few MB on disk.
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") == model.config.image_token_id


@pytest.mark.parametrize("size", [(64, 64), (96, 160)])
def test_processor_gives_the_image_tokens_the_model_expects(vlm, size):
    kind, _, model, processor = vlm
    h, w = size
    image = _photo(max(size)).crop((0, 0, w, h))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Fix this photo."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 1
    batch = processor(images=[image], text=[text], return_tensors="pt")
    n_tokens = int((batch["input_ids"] == model.config.image_token_id).sum())
    assert n_tokens == _expected_tokens(kind, h, w)
    if size == (64, 64):
        assert n_tokens == 4 and batch["image_grid_thw"].tolist() == [[1, 4, 4]]  # 16 patches -> 4 tokens
    # The vision tower emits exactly one embedding per image token.
    with torch.no_grad():
        feats = model.get_image_features(
            pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"]
        )
    feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    n_feats = sum(f.shape[0] for f in feats) if isinstance(feats, (list, tuple)) else feats.shape[0]
    assert n_feats == n_tokens
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape[:2] == batch["input_ids"].shape and torch.isfinite(logits).all()


def test_large_photo_is_capped_at_64_image_tokens(vlm):
    from skimage import data

    _, _, model, processor = vlm
    photo = Image.fromarray(data.astronaut())  # 512x512
    batch = processor(
        images=[photo], text=["<|vision_start|><|image_pad|><|vision_end|>"], return_tensors="pt"
    )
    n_tokens = int((batch["input_ids"] == model.config.image_token_id).sum())
    assert 16 <= n_tokens <= 64


def test_generates_text_from_image_and_text_chat(vlm):
    _, _, model, processor = vlm
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the flaws."}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    batch = processor(images=[_photo()], text=[text], return_tensors="pt")
    outs = [model.generate(**batch, max_new_tokens=6, do_sample=False) for _ in range(2)]
    assert torch.equal(outs[0], outs[1])  # greedy decoding is deterministic
    new = outs[0][:, batch["input_ids"].shape[1] :]
    assert new.shape[1] >= 1
    decoded = processor.batch_decode(new, skip_special_tokens=False)
    assert isinstance(decoded[0], str) and decoded[0] != ""


def test_tool_call_turn_renders_and_trl_accepts_template(vlm):
    from trl.chat_template_utils import (
        add_response_schema,
        is_chat_template_prefix_preserving,
        supports_tool_calling,
    )

    _, _, _, processor = vlm
    call = {"type": "function", "function": {"name": "apply_edit", "arguments": {"program": "exposure=+0.5"}}}
    tools = [
        {
            "type": "function",
            "function": {
                "name": "apply_edit",
                "description": "Apply an edit program.",
                "parameters": {"type": "object", "properties": {"program": {"type": "string"}}},
            },
        }
    ]
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Brighten it."}]},
        {"role": "assistant", "content": [], "tool_calls": [call]},
        {
            "role": "tool",
            "name": "apply_edit",
            "content": [{"type": "image"}, {"type": "text", "text": "done"}],
        },
    ]
    text = processor.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
    assert "<tools>" in text and '"name": "apply_edit"' in text
    assert (
        '<tool_call>\n{"name": "apply_edit", "arguments": {"program": "exposure=+0.5"}}\n</tool_call>' in text
    )
    assert "<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>done\n</tool_response>" in text
    assert text.endswith("<|im_start|>assistant\n")
    # Both images (prompt and tool result) expand to their image tokens.
    batch = processor(images=[_photo(), _photo()], text=[text], return_tensors="pt")
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((batch["input_ids"] == image_id).sum()) == 8
    assert supports_tool_calling(processor)
    assert is_chat_template_prefix_preserving(processor)
    add_response_schema(processor)  # raises ValueError for a template trl does not know
    completion = '<tool_call>\n{"name": "apply_edit", "arguments": {"program": "contrast=-30"}}\n</tool_call><|im_end|>'
    parsed = processor.tokenizer.parse_response(completion, prefix="")
    assert parsed["tool_calls"][0]["function"] == {
        "name": "apply_edit",
        "arguments": {"program": "contrast=-30"},
    }


def test_tokenizer_covers_retouching_vocabulary():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rt.tiny_model_path("qwen2_5_vl"))
    for word in [
        "Exposure",
        "Contrast",
        "Highlights",
        "Shadows",
        "Vibrance",
        "Saturation",
        "Dehaze",
        "Temperature",
        " blemish",
        " exposure",
        " contrast",
        "flaw",
        "_type",
        "description",
    ]:
        assert len(tok.tokenize(word)) == 1, word
    answer = '<think>too dark</think><answer>{"Exposure2012": 0.85, "Shadows2012": 35}</answer>'
    assert tok.decode(tok(answer)["input_ids"]) == answer
    # Byte-level: any text round-trips, even outside the training corpus.
    odd = "Ünïcødé ✓ 東京 — 42°"
    assert tok.decode(tok(odd)["input_ids"]) == odd
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    # Qwen's pre-tokenizer splits numbers into single digits, as in the real checkpoints.
    assert tok.tokenize(json.dumps({"Contrast2012": -30})) == [
        '{"',
        "Contrast",
        "2",
        "0",
        "1",
        "2",
        '":',
        "Ġ-",
        "3",
        "0",
        "}",
    ]


def test_processor_without_registration_falls_back_to_load_processor(monkeypatch):
    # load_processor builds the image-only class directly, whatever AutoProcessor's mapping says.
    from transformers.models.auto import processing_auto

    path = rt.tiny_model_path("qwen2_5_vl")
    monkeypatch.setattr(processing_auto.PROCESSOR_MAPPING, "_extra_content", {})
    proc = rt.load_processor(path)
    assert isinstance(proc, rt.ImageOnlyQwen2_5_VLProcessor)
    with pytest.raises(FileNotFoundError, match="neither a directory nor a loadable model id"):
        rt.load_processor(path / "missing")
    # A text-only checkpoint gives its tokenizer, as AutoProcessor does.
    assert type(rt.load_processor(rt.tiny_model_path("text"))).__name__ == "Qwen2Tokenizer"


def test_registration_leaves_stock_processor_names_alone():
    from transformers import Qwen2_5_VLProcessor, Qwen3VLProcessor
    from transformers.models.auto.processing_auto import processor_class_from_name

    # Real checkpoints name the stock classes; those still resolve to transformers' own processors.
    assert processor_class_from_name("Qwen2_5_VLProcessor") is Qwen2_5_VLProcessor
    assert processor_class_from_name("Qwen3VLProcessor") is Qwen3VLProcessor
    assert processor_class_from_name("ImageOnlyQwen3VLProcessor") is rt.ImageOnlyQwen3VLProcessor


def test_image_array_input_is_accepted(vlm):
    _, _, _, processor = vlm
    arr = np.asarray(_photo())
    batch = processor(
        images=[arr], text=["<|vision_start|><|image_pad|><|vision_end|>hi"], return_tensors="pt"
    )
    assert batch["image_grid_thw"].prod().item() == 16
