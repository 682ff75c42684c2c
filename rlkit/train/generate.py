"""Batched sampling from a (vision-)language policy for evaluation, outside any trainer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from transformers import PreTrainedModel, PreTrainedTokenizerBase, ProcessorMixin

__all__ = ["generate_texts"]


def generate_texts(model: PreTrainedModel, processing_class: ProcessorMixin | PreTrainedTokenizerBase,
                   prompts: Sequence[list[dict[str, Any]]], images: Sequence[Image.Image | None] | None = None, *, num_samples: int = 1, temperature: float = 1.0,
                   max_new_tokens: int = 64, batch_size: int = 16, seed: int | None = 0,
                   progress: Callable[[int], object] | None = None) -> list[list[str]]:
    """``num_samples`` completions per chat prompt (greedy when ``temperature == 0``), as text.

    ``images`` gives one PIL image (or None) per prompt for VLM processors. ``progress`` is an optional
    callable ``advance(n)`` called after each batch.
    """
    if images is not None and len(images) != len(prompts):
        raise ValueError(f"generate_texts: {len(images)} images for {len(prompts)} prompts")
    if num_samples < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError("generate_texts: num_samples, max_new_tokens and batch_size must be >= 1")
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if seed is not None:
        torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[list[str]] = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start:start + batch_size])
            texts = [processing_class.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                     for p in chunk]
            kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
            if images is not None:
                kwargs["images"] = [[im] if im is not None else [] for im in images[start:start + batch_size]]
            inputs = processing_class(**kwargs).to(device)
            gen = {"do_sample": temperature > 0, "max_new_tokens": max_new_tokens,
                   "num_return_sequences": num_samples, "pad_token_id": tokenizer.pad_token_id}
            if temperature > 0:
                gen.update(temperature=temperature, top_k=0, top_p=1.0)
            with torch.no_grad():
                ids = model.generate(**inputs, **gen)
            new = ids[:, inputs["input_ids"].shape[1]:]
            decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
            for i in range(len(chunk)):
                out.append([d.strip() for d in decoded[i * num_samples:(i + 1) * num_samples]])
            if progress is not None:
                progress(len(chunk))
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return out
