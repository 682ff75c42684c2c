"""Tiny local models for tests, CI and the quickstart: built in seconds, cached, no download.

``tiny_model_path(kind)`` returns a directory loadable with the ordinary ``from_pretrained`` calls
(kinds in ``TINY_KINDS``); for a VLM kind it also registers the image-only Qwen-VL processors with
``AutoProcessor`` so the folder loads without torchvision (see ``rlkit.policies.loading``).
``resolve_model_name("tiny:<kind>")`` turns the ``tiny:`` names recipes and the CLI accept into such a path.
"""

from rlkit.policies.loading import (
    ImageOnlyQwen2_5_VLProcessor,
    ImageOnlyQwen2VLProcessor,
    ImageOnlyQwen3VLProcessor,
    load_processor,
    register_processors,
)

from .cache import (
    RECIPE_VERSION,
    TINY_KINDS,
    TINY_PREFIX,
    build_tiny_model,
    cache_root,
    recipe_hash,
    resolve_model_name,
    tiny_model_path,
)
from .corpus import CORPUS
from .threads import one_torch_thread

__all__ = [
    "CORPUS",
    "RECIPE_VERSION",
    "TINY_KINDS",
    "TINY_PREFIX",
    "ImageOnlyQwen2VLProcessor",
    "ImageOnlyQwen2_5_VLProcessor",
    "ImageOnlyQwen3VLProcessor",
    "build_tiny_model",
    "cache_root",
    "load_processor",
    "one_torch_thread",
    "recipe_hash",
    "register_processors",
    "resolve_model_name",
    "tiny_model_path",
]
