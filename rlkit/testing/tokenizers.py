"""Locally trained tokenizers for the tiny models (deterministic, trained on ``corpus.CORPUS``).

- ``qwen_tokenizer``: byte-level BPE with Qwen2's pre-tokenizer regex and the Qwen-VL special tokens,
  wrapped as ``Qwen2Tokenizer`` (what the real Qwen2/2.5/3-VL checkpoints load as).
- ``clip_tokenizer``: byte-level BPE wrapped as ``CLIPTokenizer`` (``model_max_length=77``).
- ``t5_tokenizer``: Unigram wrapped as ``T5Tokenizer`` (for the tiny Flux text encoder).
"""

from __future__ import annotations

import json
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import CLIPTokenizer, Qwen2Tokenizer, T5Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from .corpus import CORPUS

QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
"""Qwen-VL special tokens, in the order (and relative ids) the real checkpoints use."""

QWEN_ADDED_TOKENS: tuple[str, ...] = (
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
"""Non-special added tokens of the Qwen families (tool calling and reasoning markers)."""


def _train_bpe(
    vocab_size: int, pre_tokenizer: Any, normalizer: Any, special: list[str], suffix: str | None = None
):
    tok = Tokenizer(models.BPE(end_of_word_suffix=suffix) if suffix else models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=special,
        show_progress=False,
        **({"end_of_word_suffix": suffix} if suffix else {}),
    )
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer=trainer)
    return tok


def _vocab_and_merges(tok: Any) -> tuple[dict[str, int], list[tuple[str, str]]]:
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def qwen_tokenizer(vocab_size: int = 4096):
    """Qwen2Tokenizer with a locally trained byte-level BPE and the Qwen-VL special tokens."""
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe = _train_bpe(
        vocab_size - len(QWEN_SPECIAL_TOKENS) - len(QWEN_ADDED_TOKENS),
        pre,
        normalizers.NFC(),
        ["<|endoftext|>"],
    )
    vocab, merges = _vocab_and_merges(bpe)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        errors="replace",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS[1:]])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_ADDED_TOKENS])
    return tokenizer


def clip_tokenizer(vocab_size: int = 1000):
    """CLIPTokenizer with a locally trained byte-level BPE; ``model_max_length=77`` like real CLIP."""
    # Same normaliser / pre-tokenizer / ``</w>`` suffix as CLIPTokenizer, so the merges apply as trained.
    norm = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(
                    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
                ),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    bpe = _train_bpe(vocab_size, pre, norm, ["<|startoftext|>", "<|endoftext|>"], suffix="</w>")
    vocab, merges = _vocab_and_merges(bpe)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def t5_tokenizer(vocab_size: int = 1000):
    """T5Tokenizer with a locally trained Unigram model (``<pad>``=0, ``</s>``=1, ``<unk>``=2)."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    vocab = [tuple(v) for v in json.loads(tok.to_str())["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


__all__ = ["QWEN_ADDED_TOKENS", "QWEN_SPECIAL_TOKENS", "clip_tokenizer", "qwen_tokenizer", "t5_tokenizer"]
