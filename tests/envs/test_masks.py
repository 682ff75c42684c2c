"""Mask builders against scikit-image references (disk footprints, dilation, connected components)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import measure, morphology

from rlkit.envs import (
    MaskError,
    boxes_from_mask,
    dilate_mask,
    mask_from_spec,
    masks_from_boxes,
    masks_from_regions,
    masks_from_saliency,
)


def _placed_disk(size, cx, cy, r):
    """skimage.morphology.disk(r) (x^2 + y^2 <= r^2) pasted at integer centre (cx, cy), cropped."""
    h, w = size
    fp = morphology.disk(r).astype(bool)
    out = np.zeros((h + 2 * r, w + 2 * r), dtype=bool)
    out[cy : cy + 2 * r + 1, cx : cx + 2 * r + 1] = fp
    return out[r : r + h, r : r + w]


def test_region_default_radius_is_one_twentieth_of_height():
    # 100 px high -> radius 5 (GenBlemish / EditFHF annotation rule)
    m = masks_from_regions([(30, 40)], (100, 80))
    np.testing.assert_array_equal(m, _placed_disk((100, 80), 30, 40, 5))
    assert m.sum() == morphology.disk(5).sum() == 81


def test_regions_union_dict_forms_and_clipping():
    size = (64, 64)
    regions = [{"center": [10, 12], "radius": 4}, {"x": 60, "y": 62, "radius": 3}, (0, 0)]
    m = masks_from_regions(regions, size, radius=2)
    ref = _placed_disk(size, 10, 12, 4) | _placed_disk(size, 60, 62, 3) | _placed_disk(size, 0, 0, 2)
    np.testing.assert_array_equal(m, ref)
    sep = masks_from_regions(regions, size, radius=2, separate=True)
    assert sep.shape == (3, 64, 64)
    np.testing.assert_array_equal(sep[2], _placed_disk(size, 0, 0, 2))


def test_region_objects_with_attributes():
    class R:
        center = (20, 20)
        radius = 6

    np.testing.assert_array_equal(masks_from_regions([R()], (48, 48)), _placed_disk((48, 48), 20, 20, 6))


@pytest.mark.parametrize(
    "regions, match",
    [
        ([{"centre": [1, 2]}], "center"),
        ([(1, float("nan"))], "finite"),
        ([{"center": [1, 2], "radius": -1}], "radius"),
        ("abc", "sequence"),
    ],
)
def test_region_errors_name_the_problem(regions, match):
    with pytest.raises(MaskError, match=match):
        masks_from_regions(regions, (32, 32))


def test_boxes_cover_exact_pixels_and_clip():
    m = masks_from_boxes([[2, 3, 7, 5], [60, 60, 100, 100]], (64, 64))
    ref = np.zeros((64, 64), dtype=bool)
    ref[3:5, 2:7] = True
    ref[60:, 60:] = True
    np.testing.assert_array_equal(m, ref)
    n = masks_from_boxes([[0.25, 0.5, 0.5, 1.0]], (32, 64), normalized=True)
    ref = np.zeros((32, 64), dtype=bool)
    ref[16:32, 16:32] = True
    np.testing.assert_array_equal(n, ref)


@pytest.mark.parametrize(
    "box, match", [([5, 5, 5, 9], "x1 < x2"), ([1, 2, 3], r"\[x1, y1, x2, y2\]"), (["a", 0, 3, 3], "number")]
)
def test_box_errors(box, match):
    with pytest.raises(MaskError, match=match):
        masks_from_boxes([box], (16, 16))


def test_saliency_threshold_and_dilation_match_skimage():
    rng = np.random.default_rng(0)
    s = np.zeros((80, 80))
    s[10:14, 10:14] = 0.9
    s[50, 60] = 0.6
    s[30:33, 40:44] = 0.4  # below threshold
    s += rng.uniform(0, 0.1, s.shape)
    m = masks_from_saliency(s, threshold=0.5, dilation=3)
    ref = morphology.dilation(s >= 0.5, morphology.disk(3)).astype(bool)
    np.testing.assert_array_equal(m, ref)
    # default dilation radius: round(H / 40) = 2 for H = 80
    np.testing.assert_array_equal(
        masks_from_saliency(s), morphology.dilation(s >= 0.5, morphology.disk(2)).astype(bool)
    )


def test_saliency_min_area_separate_and_normalize():
    s = np.zeros((40, 40))
    s[5:10, 5:10] = 1.0  # 25 px
    s[30, 30] = 1.0  # 1 px, dropped by min_area
    comps = masks_from_saliency(s, threshold=0.5, dilation=0, min_area=4, separate=True)
    assert comps.shape == (1, 40, 40) and comps[0].sum() == 25
    raw = s * 300.0 - 7.0
    with pytest.raises(MaskError, match="normalize=True"):
        masks_from_saliency(raw)
    np.testing.assert_array_equal(masks_from_saliency(raw, normalize=True, dilation=0), s >= 0.5)
    np.testing.assert_array_equal(masks_from_saliency(torch.tensor(s)[None], dilation=0), s >= 0.5)


def test_boxes_from_mask_matches_regionprops():
    rng = np.random.default_rng(1)
    m = rng.uniform(size=(50, 50)) > 0.93
    m = morphology.dilation(m, morphology.disk(1)).astype(bool)
    boxes = boxes_from_mask(m)
    ref = [
        (p.area, (p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]))
        for p in measure.regionprops(measure.label(m, connectivity=2))
    ]
    ref.sort(key=lambda t: (-t[0], t[1]))
    assert boxes == [b for _, b in ref]
    assert boxes_from_mask(m, min_area=10) == [b for a, b in ref if a >= 10]


def test_dilate_mask_zero_and_negative():
    m = np.zeros((9, 9), dtype=bool)
    m[4, 4] = True
    np.testing.assert_array_equal(dilate_mask(m, 0), m)
    np.testing.assert_array_equal(dilate_mask(m, 2), morphology.dilation(m, morphology.disk(2)).astype(bool))
    with pytest.raises(MaskError):
        dilate_mask(m, -1)


def test_mask_from_spec_routes_and_rejects_ambiguity():
    size = (32, 32)
    sal = np.zeros((16, 16))
    sal[4:8, 4:8] = 1.0  # resized x2 to the observation size
    m = mask_from_spec({"saliency": True}, size, row_saliency=sal, dilation=0)
    assert m[10:14, 10:14].all() and not m[:6].any()
    with pytest.raises(MaskError, match="one of"):
        mask_from_spec({"boxes": [[0, 0, 4, 4]], "regions": [(1, 1)]}, size)
    with pytest.raises(MaskError, match="needs a mask"):
        mask_from_spec({}, size)
    assert mask_from_spec({}, size, required=False) is None
    with pytest.raises(MaskError, match="saliency"):
        mask_from_spec({"saliency": True}, size)


def test_agrees_with_the_data_room_disks_for_regions_and_flaw_regions():
    """rlkit.data draws the same annotation disks (written independently); both must agree pixel for pixel."""
    from rlkit.data.regions import FlawRegion, Region, disk_mask

    regions = [Region((12.5, 40.0)), Region((50, 8), radius=7.5), Region((0, 63))]
    np.testing.assert_array_equal(masks_from_regions(regions, (64, 80)), disk_mask(regions, 64, 80))
    flaws = [
        FlawRegion((0, 0, 30, 30), [(10, 10), (20, 25)]),
        FlawRegion((40, 40, 60, 60), [(50, 50)], radius=4),
    ]
    sep = masks_from_regions(flaws, (64, 80), separate=True)
    assert sep.shape == (2, 64, 80)
    np.testing.assert_array_equal(sep.any(0), disk_mask(flaws, 64, 80))
    np.testing.assert_array_equal(
        masks_from_regions([f.to_dict() for f in flaws], (64, 80)), disk_mask(flaws, 64, 80)
    )
