"""Qwen-VL processors that need no video processor (hence no torchvision).

Every Qwen-VL processor in transformers also wants a video processor, and those import torchvision.
On machines without torchvision, ``AutoProcessor.from_pretrained`` then quietly falls back to the bare
tokenizer. The subclasses here take only an image processor and a tokenizer; importing this module
registers them with ``AutoProcessor`` for the Qwen-VL configs. The tiny checkpoints name these classes
in ``processor_config.json``, so they load with ``AutoProcessor`` with or without torchvision; real
checkpoints name the stock classes (``Qwen2_5_VLProcessor`` ...), which ``AutoProcessor`` resolves by
name before it consults the registry, so they are unaffected where torchvision is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from transformers import (
    AutoProcessor,
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


def register_processors() -> None:
    """Register the image-only processors with ``AutoProcessor`` (done on import; idempotent)."""
    for model_type, proc_cls in PROCESSOR_CLASSES.items():
        AutoProcessor.register(_CONFIG_CLASSES[model_type], proc_cls, exist_ok=True)


def load_processor(path: str | Path, **kwargs: Any):
    """Load the processor of a checkpoint (tiny or real; local dir or hub id), working without torchvision.

    Library code should call this instead of ``AutoProcessor.from_pretrained``: a tiny checkpoint,
    or a real Qwen-VL one on a machine without torchvision, gets the image-only processor for its
    ``model_type``; anything else defers to ``AutoProcessor`` (a text-only checkpoint gives its
    tokenizer). Raises ``FileNotFoundError`` naming ``path`` when it is neither a directory nor a
    loadable model id.
    """
    import json

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
        from transformers import AutoConfig

        try:
            model_type = AutoConfig.from_pretrained(str(path), **kwargs).model_type
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(
                f"load_processor: {str(path)!r} is neither a directory nor a loadable model id ({exc})"
            ) from exc
    if model_type in PROCESSOR_CLASSES and not has_torchvision():
        return PROCESSOR_CLASSES[model_type].from_pretrained(str(path), **kwargs)
    return AutoProcessor.from_pretrained(str(path), **kwargs)


register_processors()

__all__ = [
    "ImageOnlyQwen2VLProcessor",
    "ImageOnlyQwen2_5_VLProcessor",
    "ImageOnlyQwen3VLProcessor",
    "PROCESSOR_CLASSES",
    "has_torchvision",
    "load_processor",
    "register_processors",
]
