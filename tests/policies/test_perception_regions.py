"""Map -> regions: threshold, opening/closing, components, boxes and dilation on hand-made maps, against
hand-worked answers and scipy.ndimage / scikit-image run independently."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import measure, morphology

from rlkit.policies import (
    MaskError,
    boxes_from_mask,
    dilate_mask,
    masks_from_saliency,
    open_close,
    regions_from_map,
    regions_from_maps,
)


def _hand_map() -> np.ndarray:
    """40 x 50 map: a 6 x 8 block (rows 4-9, cols 5-12) joined by a 1-px bridge to a 5 x 5 block
    (rows 6-10, cols 20-24); a lone speck at (30, 40); an 8 x 8 ring (rows 24-31, cols 4-11) whose
    centre pixel is a hole; a 0.4 patch (below tau) at rows 15-17, cols 30-33."""
    s = np.zeros((40, 50))
    s[4:10, 5:13] = 0.9
    s[7, 13:20] = 0.8  # bridge, 1 px thick
    s[6:11, 20:25] = 0.7
    s[30, 40] = 1.0
    s[24:32, 4:12] = 0.6
    s[27, 7] = 0.0  # a one-pixel hole
    s[15:18, 30:34] = 0.4
    return s


def test_threshold_and_components_are_hand_worked():
    r = regions_from_map(_hand_map(), tau=0.5, dilation=0)
    # 3 components at tau 0.5 (blocks + bridge are one; ring; speck), largest first; x2/y2 exclusive
    assert r.boxes == [(5, 4, 25, 11), (4, 24, 12, 32), (40, 30, 41, 31)]
    assert r.areas == [48 + 7 + 25, 63, 1]
    assert r.scores == [0.9, 0.6, 1.0]
    np.testing.assert_array_equal(r.union, _hand_map() >= 0.5)


def test_opening_removes_speck_and_bridge_closing_fills_the_hole():
    r = regions_from_map(_hand_map(), tau=0.5, opening=1, closing=1, dilation=0)
    # a radius-1 opening (disk(1) is the 3x3 cross) removes the speck and the bridge except its two end pixels
    # (each regrown from the block pixel next to it) and rounds off the rectangles' corner pixels; the closing
    # fills the ring's hole. Ring 64 - 4 corners; left block 48 - 4 + 1 stub; right block 25 - 3 + 1 stub (its
    # top-left corner regrows from the eroded pixel (7, 20) that the bridge kept alive)
    assert r.boxes == [(4, 24, 12, 32), (5, 4, 14, 10), (19, 6, 25, 11)]
    assert r.areas == [60, 45, 23]
    # independent reference: scipy opening then closing of the zero-padded map, 3x3 cross = disk(1)
    disk1 = ndimage.generate_binary_structure(2, 1)
    ref = ndimage.binary_opening(_hand_map() >= 0.5, structure=disk1)
    ref = ndimage.binary_closing(np.pad(ref, 3), structure=disk1)[3:-3, 3:-3]
    np.testing.assert_array_equal(r.union, ref)
    np.testing.assert_array_equal(open_close(_hand_map() >= 0.5, 1, 1), ref)


def test_min_area_and_dilation_match_brute_force_disks():
    s = _hand_map()
    r = regions_from_map(s, tau=0.5, dilation=3, min_area=2)
    assert len(r) == 2  # the speck is dropped
    # dilation by a closed disk: a pixel is in when some component pixel lies within Euclidean distance 3
    comp = measure.label(s >= 0.5, connectivity=2) == 1
    dist = ndimage.distance_transform_edt(~comp)
    np.testing.assert_array_equal(r.masks[0], dist <= 3)
    np.testing.assert_array_equal(dilate_mask(comp, 3), morphology.dilation(comp, morphology.disk(3)) > 0)


def test_closing_keeps_border_pixels():
    s = np.zeros((20, 20))
    s[0:6, 0:6] = 1.0  # touches the top-left corner
    r = regions_from_map(s, closing=2, dilation=0)
    assert r.boxes == [(0, 0, 6, 6)] and r.areas == [36]
    # scipy's own binary_closing erodes with border_value=0 and would strip the edge rows
    assert ndimage.binary_closing(s > 0, structure=morphology.disk(2)).sum() < 36


def test_boxes_from_mask_agree_with_regionprops_on_random_masks():
    rng = np.random.default_rng(3)
    m = ndimage.binary_dilation(rng.uniform(size=(60, 70)) > 0.97, iterations=1)
    ref = sorted(((p.area, (p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]))
                  for p in measure.regionprops(measure.label(m, connectivity=2))), key=lambda t: (-t[0], t[1]))
    assert boxes_from_mask(m) == [b for _, b in ref]
    assert boxes_from_mask(m, min_area=6) == [b for a, b in ref if a >= 6]


def test_union_fast_path_equals_per_component_masks():
    s = _hand_map()
    union = masks_from_saliency(s, threshold=0.5, dilation=2, min_area=2)
    sep = masks_from_saliency(s, threshold=0.5, dilation=2, min_area=2, separate=True)
    np.testing.assert_array_equal(union, sep.any(0))


def test_batches_tensors_and_env_delegation():
    import rlkit.envs as envs

    maps = torch.from_numpy(np.stack([_hand_map(), np.zeros((40, 50))])).float()
    out = regions_from_maps(maps[:, None], tau=0.5, dilation=0)
    assert len(out[0]) == 3 and len(out[1]) == 0 and out[1].masks.shape == (0, 40, 50)
    assert out[1].union.shape == (40, 50) and not out[1].union.any()
    assert envs.masks_from_saliency is masks_from_saliency and envs.MaskError is MaskError
    assert out[0].to_dict()["boxes"][0] == [5, 4, 25, 11]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tau": 1.5}, "tau"),
        ({"opening": -1}, "opening"),
        ({"closing": 1.5}, "closing"),
        ({"dilation": "2"}, "dilation"),
        ({"min_area": -3}, "min_area"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(MaskError, match=match):
        regions_from_map(_hand_map(), **kwargs)


def test_bad_maps_are_named():
    s = _hand_map()
    s[3, 4] = np.nan
    with pytest.raises(MaskError, match="NaN.*row 3, column 4"):
        regions_from_map(s)
    with pytest.raises(MaskError, match=r"\[0, 1\]"):
        regions_from_map(_hand_map() * 3)
    with pytest.raises(MaskError, match="2-D"):
        regions_from_map(np.zeros((2, 3, 4)))
    bad = np.stack([_hand_map(), _hand_map() * 2])
    with pytest.raises(MaskError, match="map 1"):
        regions_from_maps(bad)
    # a raw map is accepted when asked to normalise
    assert len(regions_from_map(_hand_map() * 3 - 1, normalize=True, dilation=0)) == 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_open_close_and_dilation_equal_whole_image_scipy_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    s = ndimage.gaussian_filter(rng.uniform(size=(70, 90)), 3)
    s = (s - s.min()) / (s.max() - s.min())
    for o, c in ((1, 0), (0, 2), (2, 3)):
        ref = ndimage.binary_opening(s >= 0.6, structure=morphology.disk(o)) if o else s >= 0.6
        if c:
            ref = ndimage.binary_closing(np.pad(ref, c), structure=morphology.disk(c))[c:-c, c:-c]
        np.testing.assert_array_equal(open_close(s >= 0.6, o, c), ref)
    r = regions_from_map(s, tau=0.6, dilation=4)
    assert len(r) >= 2
    dist = ndimage.distance_transform_edt(s < 0.6)
    np.testing.assert_array_equal(r.union, dist <= 4)
    np.testing.assert_array_equal(r.masks.any(0), r.union)
    assert (r.masks.sum(0) <= 1).all()  # overlapping dilations are split between the nearer components
