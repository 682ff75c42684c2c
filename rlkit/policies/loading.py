"""Loading policies and their processors: paths, hub ids, LoRA adapters, and Qwen-VL without torchvision.

A policy folder is a full model or a PEFT adapter on its base (loaded with the adapter trainable, so GRPO
keeps training the same adapter). Every Qwen-VL processor in transformers also wants a video processor, and those import torchvision.
On machines without torchvision, ``AutoProcessor.from_pretrained`` then quietly falls back to the bare
tokenizer. The subclasses here take only an image processor and a tokenizer; importing this module
registers them with ``AutoProcessor`` for the Qwen-VL configs when a processor is first loaded. The tiny checkpoints name these classes
in ``processor_config.json``, so they load with ``AutoProcessor`` with or without torchvision; real
checkpoints name the stock classes (``Qwen2_5_VLProcessor`` ...), which ``AutoProcessor`` resolves by
name before it consults the registry, so they are unaffected where torchvision is installed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2_5_VLProcessor,
    Qwen2VLConfig,
    Qwen2VLProcessor,
    Qwen3VLConfig,
    Qwen3VLProcessor,
)


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2-VL processor for images and text only (no video processor, no torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs: Any) -> None:
        # ProcessorMixin pairs positional sub-processors with ``get_attributes()`` (read from this
        # signature: image_processor, tokenizer), so the parent's video_processor slot is dropped.
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor for images and text only (no video processor, no torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs: Any) -> None:
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
    """Qwen3-VL processor for images and text only (no video processor, no torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs: Any) -> None:
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


PROCESSOR_CLASSES: dict[str, type] = {
    "qwen2_vl": ImageOnlyQwen2VLProcessor,
    "qwen2_5_vl": ImageOnlyQwen2_5_VLProcessor,
    "qwen3_vl": ImageOnlyQwen3VLProcessor,
}
_CONFIG_CLASSES: dict[str, type] = {
    "qwen2_vl": Qwen2VLConfig,
    "qwen2_5_vl": Qwen2_5_VLConfig,
    "qwen3_vl": Qwen3VLConfig,
}


def has_torchvision() -> bool:
    """True when torchvision is importable (then the stock Qwen-VL processors work)."""
    return importlib.util.find_spec("torchvision") is not None


_registered = False


def register_processors() -> None:
    """Register the image-only processors with ``AutoProcessor`` (called by :func:`load_processor`;
    idempotent), so ``AutoProcessor.from_pretrained`` on a tiny checkpoint finds them too."""
    global _registered
    if not _registered:
        for model_type, proc_cls in PROCESSOR_CLASSES.items():
            AutoProcessor.register(_CONFIG_CLASSES[model_type], proc_cls, exist_ok=True)
        _registered = True


def load_processor(path: str | Path, **kwargs: Any) -> ProcessorMixin | PreTrainedTokenizerBase:
    """Load the processor of a checkpoint (tiny or real; local dir or hub id), working without torchvision.

    Library code should call this instead of ``AutoProcessor.from_pretrained``: a tiny checkpoint,
    or a real Qwen-VL one on a machine without torchvision, gets the image-only processor for its
    ``model_type``; anything else defers to ``AutoProcessor`` (a text-only checkpoint gives its
    tokenizer). Raises ``FileNotFoundError`` naming ``path`` when it is neither a directory nor a
    loadable model id.
    """
    register_processors()
    local = Path(path)
    ours = {cls.__name__: cls for cls in PROCESSOR_CLASSES.values()}
    if local.is_dir():

        def _read(name: str) -> dict[str, Any]:
            file = local / name
            return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

        model_type = _read("config.json").get("model_type")
        named = _read("processor_config.json").get("processor_class")
        if named in ours:
            return ours[named].from_pretrained(str(local), **kwargs)
    else:
        try:
            model_type = AutoConfig.from_pretrained(str(path), **kwargs).model_type
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(
                f"load_processor: {str(path)!r} is neither a directory nor a loadable model id ({exc})"
            ) from exc
    if model_type in PROCESSOR_CLASSES and not has_torchvision():
        return PROCESSOR_CLASSES[model_type].from_pretrained(str(path), **kwargs)
    return AutoProcessor.from_pretrained(str(path), **kwargs)


def resolve_model_path(name_or_path: str) -> str:
    """Check a model path or hub id (tiny test models are named by ``rlkit.testing.resolve_model_name``)."""
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ValueError(f"model_name_or_path must be a non-empty string, got {name_or_path!r}")
    if name_or_path.startswith("tiny:"):
        raise ValueError(f"model_name_or_path={name_or_path!r} names a tiny test model: build it first with "
                         "rlkit.testing.resolve_model_name (the recipes and the CLI do this for you)")
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


def load_processing_class(path: str | Path) -> ProcessorMixin | PreTrainedTokenizerBase:
    """The processor of a VLM folder or hub id (works without torchvision) or the tokenizer of a text model.

    For an adapter folder, the base model's (training does not change the processor).
    """
    p = Path(path)
    if p.is_dir() and is_adapter_dir(p):
        p = Path(_base_of(p))
    config = AutoConfig.from_pretrained(str(p))
    if hasattr(config, "vision_config"):
        return load_processor(p if p.is_dir() else str(path))
    return AutoTokenizer.from_pretrained(str(p))


def load_policy(path: str | Path, *, trainable_adapter: bool = True,
                dtype: torch.dtype | str | None = None) -> PreTrainedModel:
    """Load a policy folder: a full model, or a LoRA adapter on its base (adapter trainable for more training).

    ``dtype`` is passed to ``from_pretrained`` (a ``torch.dtype`` or ``"auto"``).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"policy folder {str(p)!r} does not exist (did stage 1 run? set sft_model_path)")
    base = _base_of(p) if is_adapter_dir(p) else str(p)
    config = AutoConfig.from_pretrained(base)
    auto = AutoModelForImageTextToText if hasattr(config, "vision_config") else AutoModelForCausalLM
    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = auto.from_pretrained(base, **kwargs)
    if is_adapter_dir(p):
        model = PeftModel.from_pretrained(model, str(p), is_trainable=trainable_adapter)
    return model


__all__ = [
    "ImageOnlyQwen2VLProcessor",
    "ImageOnlyQwen2_5_VLProcessor",
    "ImageOnlyQwen3VLProcessor",
    "PROCESSOR_CLASSES",
    "has_torchvision",
    "is_adapter_dir",
    "load_policy",
    "load_processing_class",
    "load_processor",
    "register_processors",
    "resolve_model_path",
]
