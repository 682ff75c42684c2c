"""Real photographs that ship inside installed PyPI packages, loadable by name with no download.

rlkit's tests, quickstart and synthetic benchmarks need real photos (skin, sky, texture, text),
not noise; scikit-image and scikit-learn carry a handful inside their wheels. This module gives
them one name each, as RGB PIL images, with their size and where they came from.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from rlkit.errors import MissingDependencyError

__all__ = ["PhotoInfo", "PhotoUnavailableError", "list_photos", "load_photo", "photo_names"]


class PhotoUnavailableError(MissingDependencyError):
    """A bundled photo's package is not installed; the message names the package to install."""


@dataclass(frozen=True)
class PhotoInfo:
    """One bundled photo: its name, size as (width, height), source and whether it is greyscale."""

    name: str
    size: tuple[int, int]
    source: str
    package: str
    greyscale: bool = False
    description: str = ""


def _skimage(attr: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        data = _import("skimage.data", "scikit-image")
        out = getattr(data, attr)()
        return out[0] if isinstance(out, tuple) else out  # stereo pairs: the left view

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        datasets = _import("sklearn.datasets", "scikit-learn")
        return datasets.load_sample_image(filename)

    return load


def _import(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PhotoUnavailableError(f"bundled photos from {module!r}", package,
                                    f"pip install {package}  (a dependency of rlkit: pip install -e .)") from exc


# name -> (loader, PhotoInfo). Sizes are those of the shipped files (checked by the tests).
_CATALOGUE: dict[str, tuple[Callable[[], np.ndarray], PhotoInfo]] = {}


def _add(name: str, loader: Callable[[], np.ndarray], size: tuple[int, int], source: str, package: str,
         description: str, greyscale: bool = False) -> None:
    _CATALOGUE[name] = (loader, PhotoInfo(name, size, source, package, greyscale, description))


_add("astronaut", _skimage("astronaut"), (512, 512), "skimage.data.astronaut", "scikit-image",
     "portrait of astronaut Eileen Collins: skin, flag, suit")
_add("coffee", _skimage("coffee"), (600, 400), "skimage.data.coffee", "scikit-image",
     "cup of coffee on a saucer, warm tones")
_add("chelsea", _skimage("chelsea"), (451, 300), "skimage.data.chelsea", "scikit-image",
     "a tabby cat: fur texture")
_add("rocket", _skimage("rocket"), (640, 427), "skimage.data.rocket", "scikit-image",
     "rocket on the launch pad under a blue sky")
_add("hubble", _skimage("hubble_deep_field"), (1000, 872), "skimage.data.hubble_deep_field",
     "scikit-image", "Hubble deep field: dark background, small bright galaxies")
_add("ihc", _skimage("immunohistochemistry"), (512, 512), "skimage.data.immunohistochemistry",
     "scikit-image", "immunohistochemistry stain microscopy")
_add("retina", _skimage("retina"), (1411, 1411), "skimage.data.retina", "scikit-image",
     "human retina fundus photograph")
_add("motorcycle", _skimage("stereo_motorcycle"), (741, 500), "skimage.data.stereo_motorcycle (left)",
     "scikit-image", "motorcycle in a cluttered workshop")
_add("camera", _skimage("camera"), (512, 512), "skimage.data.camera", "scikit-image",
     "cameraman (greyscale, returned as RGB)", greyscale=True)
_add("moon", _skimage("moon"), (512, 512), "skimage.data.moon", "scikit-image",
     "lunar surface (greyscale, returned as RGB)", greyscale=True)
_add("coins", _skimage("coins"), (384, 303), "skimage.data.coins", "scikit-image",
     "Greek coins (greyscale, returned as RGB)", greyscale=True)
_add("china", _sklearn("china.jpg"), (640, 427), "sklearn.datasets.load_sample_image('china.jpg')",
     "scikit-learn", "Chinese temple against the sky")
_add("flower", _sklearn("flower.jpg"), (640, 427), "sklearn.datasets.load_sample_image('flower.jpg')",
     "scikit-learn", "a pink flower, close up")


def photo_names() -> list[str]:
    """Names of all bundled photos, in catalogue order."""
    return list(_CATALOGUE)


def list_photos() -> list[PhotoInfo]:
    """Every bundled photo with its size, source package and description."""
    return [info for _, info in _CATALOGUE.values()]


def load_photo(name: str, size: int | tuple[int, int] | None = None) -> Image.Image:
    """Load a bundled photo as an RGB PIL image.

    ``size`` resizes it: an int sets the shorter side (aspect kept), a (width, height) pair sets both.
    Raises KeyError naming the available photos for an unknown name, and PhotoUnavailableError
    naming the package to install when the photo's package is missing.
    """
    key = name.strip().lower()
    if key not in _CATALOGUE:
        raise KeyError(f"unknown photo {name!r}; available: {', '.join(photo_names())}")
    image = _load_cached(key)
    if size is not None:
        image = _resize(image, size)
    return image.copy()


@cache
def _load_cached(key: str) -> Image.Image:
    array = np.asarray(_CATALOGUE[key][0]())
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(array[..., :3]).astype(np.uint8), mode="RGB")


def _resize(image: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"size must be a positive int or (width, height), got {size}")
        w, h = image.size
        scale = size / min(w, h)
        target = (max(1, round(w * scale)), max(1, round(h * scale)))
    else:
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"size must be a positive int or (width, height), got {size}")
        target = (int(size[0]), int(size[1]))
    return image.resize(target, Image.Resampling.LANCZOS)
