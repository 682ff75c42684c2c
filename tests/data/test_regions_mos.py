import math

import numpy as np
import pytest

from rlkit.data import (
    GENBLEMISH_TAXONOMY,
    FlawRegion,
    Region,
    Taxonomy,
    default_radius,
    disk_mask,
    disk_masks,
    mos_from_ratings,
    saliency_from_regions,
)

# ------------------------------------------------------------------ disks and saliency


def test_disk_radius_is_exactly_h_over_20():
    assert default_radius(100) == 5.0
    m = disk_mask([Region((50, 40))], 100, 120)
    # Gauss circle problem: 81 lattice points with x^2 + y^2 <= 25
    assert m.sum() == 81
    assert m[40, 55] and not m[40, 56]  # (5, 0) inside, (6, 0) outside
    assert m[44, 53] and not m[44, 54]  # (3, 4): 25 inside; (4, 4): 32 outside
    assert m.shape == (100, 120)


def test_disk_masks_per_region_and_flaw_region_disks():
    regs = [Region((10, 10)), Region((30, 10), radius=2.0)]
    ms = disk_masks(regs, 40, 60)
    assert ms.shape == (2, 40, 60)
    assert ms[1].sum() == 13  # lattice points with x^2 + y^2 <= 4
    fr = FlawRegion((0, 0, 20, 20), [(5, 5), (15, 15)], "x")
    assert disk_masks([fr], 40, 60).shape == (2, 40, 60)


def test_gaussian_saliency_sums_as_documented():
    h, w = 200, 200
    raw = saliency_from_regions([Region((100, 100))], h, w, normalize=None)  # sigma = H/20 = 10
    assert raw[100, 100] == pytest.approx(1.0)
    assert raw.sum() == pytest.approx(2 * math.pi * 10**2, rel=1e-4)
    assert raw[100, 110] == pytest.approx(math.exp(-0.5), rel=1e-6)  # one sigma away
    two = saliency_from_regions([Region((50, 50)), Region((150, 120))], h, w, normalize=None)
    a = saliency_from_regions([Region((50, 50))], h, w, normalize=None)
    b = saliency_from_regions([Region((150, 120))], h, w, normalize=None)
    np.testing.assert_allclose(two, a + b, rtol=1e-6, atol=1e-12)
    assert saliency_from_regions([Region((50, 50)), Region((150, 120))], h, w).max() == pytest.approx(1.0)
    assert saliency_from_regions([Region((50, 50))], h, w, normalize="sum").sum() == pytest.approx(1.0, rel=1e-5)
    assert not saliency_from_regions([], h, w).any()


def test_region_validation():
    with pytest.raises(ValueError, match="outside"):
        Region((120, 5)).check_inside(100, 50)
    with pytest.raises(ValueError, match="at least one disk"):
        FlawRegion((0, 0, 5, 5), [])
    with pytest.raises(ValueError, match="x1 <= x2"):
        FlawRegion((5, 0, 1, 5), [(1, 1)])
    with pytest.raises(ValueError, match="center"):
        Region(("a", 1))


def test_taxonomy():
    assert len(GENBLEMISH_TAXONOMY) == 12
    assert len(GENBLEMISH_TAXONOMY.dimensions) == 6
    assert GENBLEMISH_TAXONOMY.canonical("Hand Distortion") == "hand_distortion"
    assert GENBLEMISH_TAXONOMY.dimension_of("text-anomaly") == "miscellaneous"
    with pytest.raises(KeyError, match="hand_distortion"):
        GENBLEMISH_TAXONOMY.canonical("sixth finger")
    custom = Taxonomy.from_dict({"colour": ["cast", "blotch"]}, name="mine")
    assert custom.categories == ("cast", "blotch") and "Blotch" in custom
    with pytest.raises(ValueError, match="twice"):
        Taxonomy({"a": ("x",), "b": ("X",)})


# ------------------------------------------------------------------ MOS


RATINGS = np.array([
    [1, 2, 3, 4],  # A
    [1, 2, 3, 4],  # B
    [1, 2, 3, 5],  # C
    [1, 3, 4, 5],  # D
    [1, 3, 4, 4],  # E
    [5, 2, 3, 4],  # F: item 0 is 2.04 sigma from its mean -> 1/4 = 25% outliers > 5% -> dropped
], dtype=float)


def test_mos_worked_example_with_outlier_annotator():
    r = mos_from_ratings(RATINGS)
    assert r.outliers.sum() == 1 and r.outliers[5, 0]
    assert r.dropped_annotators == [5]
    # hand-worked z-scores of the five kept annotators (own mean, sample std)
    s = math.sqrt(5 / 3)  # std of [1, 2, 3, 4]
    zab = [(-1.5) / s, (-0.5) / s, 0.5 / s, 1.5 / s]
    s2 = math.sqrt(8.75 / 3)  # std of [1, 2, 3, 5] and of [1, 3, 4, 5]
    zc = [-1.75 / s2, -0.75 / s2, 0.25 / s2, 2.25 / s2]
    zd = [-2.25 / s2, -0.25 / s2, 0.75 / s2, 1.75 / s2]
    ze = [-2 / math.sqrt(2), 0.0, 1 / math.sqrt(2), 1 / math.sqrt(2)]
    z = [(2 * zab[j] + zc[j] + zd[j] + ze[j]) / 5 for j in range(4)]
    np.testing.assert_allclose(r.z, z)
    np.testing.assert_allclose(r.mos, [100 * (v + 3) / 6 for v in z])
    assert r.mos[0] == pytest.approx(29.7331, abs=1e-3)
    assert list(r.n_valid) == [5, 5, 5, 5]


def test_mos_long_format_matches_matrix_and_handles_missing():
    rows = [(f"ann{a}", f"img{i}", RATINGS[a, i]) for a in range(6) for i in range(4)]
    r = mos_from_ratings(rows)
    np.testing.assert_allclose(r.mos, mos_from_ratings(RATINGS).mos)
    assert r.items == ["img0", "img1", "img2", "img3"] and r.annotators[5] == "ann5"
    m = RATINGS.copy()
    m[0, 3] = np.nan
    assert mos_from_ratings(m).n_valid[3] == 4
    with pytest.raises(ValueError, match="twice"):
        mos_from_ratings(rows + [("ann0", "img0", 3.0)])
