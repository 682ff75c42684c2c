"""Bundled photos load by name, match the packages' own arrays, and fail clearly when unknown."""

import numpy as np
import pytest
import skimage.data
from sklearn.datasets import load_sample_image

from rlkit.data.photos import list_photos, load_photo, photo_names


def test_every_photo_loads_as_rgb_with_its_documented_size():
    for info in list_photos():
        image = load_photo(info.name)
        assert image.mode == "RGB", info.name
        assert image.size == info.size, info.name


def test_pixels_are_the_packages_own():
    np.testing.assert_array_equal(np.asarray(load_photo("astronaut")), skimage.data.astronaut())
    np.testing.assert_array_equal(np.asarray(load_photo("china")), load_sample_image("china.jpg"))
    grey = np.asarray(load_photo("camera"))
    for c in range(3):
        np.testing.assert_array_equal(grey[..., c], skimage.data.camera())


def test_unknown_name_lists_available_ones():
    with pytest.raises(KeyError) as err:
        load_photo("no-such-photo")
    message = str(err.value)
    assert "no-such-photo" in message
    for name in ("astronaut", "coffee", "china", "flower"):
        assert name in message


def test_resize_keeps_aspect_and_returns_a_copy():
    small = load_photo("coffee", size=64)  # 600x400 -> shorter side 64
    assert small.size == (96, 64)
    assert load_photo("coffee", size=(32, 48)).size == (32, 48)
    original = load_photo("chelsea").getpixel((0, 0))
    edited = load_photo("chelsea")
    edited.putpixel((0, 0), (255 - original[0], 0, 0))
    assert load_photo("chelsea").getpixel((0, 0)) == original  # callers get their own copy
    with pytest.raises(ValueError, match="size"):
        load_photo("coffee", size=0)


def test_names_are_case_insensitive_and_catalogue_is_complete():
    assert load_photo("Astronaut").size == (512, 512)
    assert {"astronaut", "coffee", "chelsea", "rocket", "china", "flower"} <= set(photo_names())
