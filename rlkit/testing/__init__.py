"""Tiny local models for tests, CI and the quickstart: built in seconds, cached, no download.

``tiny_model_path(kind)`` returns a directory loadable with the ordinary ``from_pretrained`` calls
(kinds in ``TINY_KINDS``). Importing this package registers image-only Qwen-VL processors with
``AutoProcessor`` so the tiny VLM dirs load without torchvision (see ``rlkit.testing.processors``).
"""

from .cache import RECIPE_VERSION, TINY_KINDS, build_tiny_model, cache_root, recipe_hash, tiny_model_path
from .corpus import CORPUS
from .processors import (
    ImageOnlyQwen2_5_VLProcessor,
    ImageOnlyQwen2VLProcessor,
    ImageOnlyQwen3VLProcessor,
    load_processor,
    register_processors,
)

__all__ = [
    "CORPUS",
    "RECIPE_VERSION",
    "TINY_KINDS",
    "ImageOnlyQwen2VLProcessor",
    "ImageOnlyQwen2_5_VLProcessor",
    "ImageOnlyQwen3VLProcessor",
    "build_tiny_model",
    "cache_root",
    "load_processor",
    "recipe_hash",
    "register_processors",
    "tiny_model_path",
]
