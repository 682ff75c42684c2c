"""Where a recipe's policy comes from: a path, a hub id, ``tiny:<kind>`` (rlkit.testing) or a stage-1 output.

Stage 2 starts from stage 1: a LoRA adapter folder is loaded on its base model with the adapter
trainable (GRPO keeps training the same adapter); a full-model folder is loaded as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["TINY_PREFIX", "resolve_model_path", "load_processing_class", "is_adapter_dir", "load_policy"]

TINY_PREFIX = "tiny:"


def resolve_model_path(name_or_path: str) -> str:
    """``tiny:qwen2_5_vl`` -> the cached tiny model folder (built once, no download); anything else unchanged."""
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ValueError(f"model_name_or_path must be a non-empty string, got {name_or_path!r}")
    if name_or_path.startswith(TINY_PREFIX):
        from rlkit.testing import TINY_KINDS, tiny_model_path

        kind = name_or_path[len(TINY_PREFIX):]
        if kind not in TINY_KINDS:
            raise ValueError(f"model_name_or_path={name_or_path!r}: unknown tiny kind {kind!r}; "
                             f"choose one of {sorted(TINY_KINDS)}")
        return str(tiny_model_path(kind))
    return name_or_path


def is_adapter_dir(path: str | Path) -> bool:
    """True for a PEFT adapter folder (``adapter_config.json``)."""
    return (Path(path) / "adapter_config.json").is_file()


def _base_of(path: str | Path) -> str:
    cfg = json.loads((Path(path) / "adapter_config.json").read_text(encoding="utf-8"))
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path}/adapter_config.json names no base_model_name_or_path")
    return str(base)


def load_processing_class(path: str | Path) -> Any:
    """The processor of a VLM folder (works without torchvision) or the tokenizer of a text model.

    For an adapter folder, the base model's (training does not change the processor).
    """
    from transformers import AutoConfig, AutoTokenizer

    p = Path(path)
    if p.is_dir() and is_adapter_dir(p):
        p = Path(_base_of(p))
    config = AutoConfig.from_pretrained(str(p))
    if hasattr(config, "vision_config"):
        if not p.is_dir():  # a hub id (GPU machines have torchvision, so AutoProcessor is complete there)
            from transformers import AutoProcessor

            return AutoProcessor.from_pretrained(str(path))
        from rlkit.testing import load_processor

        return load_processor(p)
    return AutoTokenizer.from_pretrained(str(p))


def load_policy(path: str | Path, *, trainable_adapter: bool = True, dtype: Any = None) -> Any:
    """Load a policy folder: a full model, or a LoRA adapter on its base (adapter trainable for more training)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"policy folder {str(p)!r} does not exist (did stage 1 run? set sft_model_path)")
    base = _base_of(p) if is_adapter_dir(p) else str(p)
    config = AutoConfig.from_pretrained(base)
    auto = AutoModelForImageTextToText if hasattr(config, "vision_config") else AutoModelForCausalLM
    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = auto.from_pretrained(base, **kwargs)
    if is_adapter_dir(p):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(p), is_trainable=trainable_adapter)
    return model
