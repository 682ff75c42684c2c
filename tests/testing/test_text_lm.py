"""Tiny text-only causal LM: Auto-class loading, shared tokenizer, generation, tool chat template."""

from __future__ import annotations

import torch

import rlkit.testing as rt


def test_text_lm_loads_generates_and_shares_the_vlm_tokenizer():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = rt.tiny_model_path("text")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    vlm_tok = AutoTokenizer.from_pretrained(rt.tiny_model_path("qwen2_5_vl"))
    assert tok.get_vocab() == vlm_tok.get_vocab()
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.vocab_size >= len(tok)

    messages = [{"role": "user", "content": "Describe the flaws of this photo."}]
    batch = tok.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert tok.decode(batch["input_ids"][0]).endswith("<|im_start|>assistant\n")
    out = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > batch["input_ids"].shape[1]
    torch.manual_seed(0)
    sampled = model.generate(**batch, max_new_tokens=5)  # generation_config samples by default
    assert sampled.shape[0] == 1 and sampled.shape[1] > batch["input_ids"].shape[1]
    with torch.no_grad():
        loss = model(**batch, labels=batch["input_ids"]).loss
    # Random init: loss close to log(vocab) (uniform guess), i.e. untrained but numerically sane.
    assert abs(loss.item() - torch.log(torch.tensor(float(model.config.vocab_size))).item()) < 1.0


def test_text_template_renders_tools_and_trl_recognises_it():
    from transformers import AutoTokenizer
    from trl.chat_template_utils import add_response_schema, supports_tool_calling

    tok = AutoTokenizer.from_pretrained(rt.tiny_model_path("text"))
    call = {"type": "function", "function": {"name": "score", "arguments": {"x": 1}}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "name": "score", "content": "0.5"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert '<tool_call>\n{"name": "score", "arguments": {"x": 1}}\n</tool_call>' in text
    assert "<tool_response>\n0.5\n</tool_response>" in text
    assert supports_tool_calling(tok)
    add_response_schema(tok)
