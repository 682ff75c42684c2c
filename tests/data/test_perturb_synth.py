import argparse
import json

import numpy as np
import pytest
import torch

from rlkit.data import (
    GENBLEMISH_TAXONOMY,
    BlemishRecord,
    RetouchRecord,
    build_blemish,
    build_retoucheval,
    dataset_to_records,
    disk_mask,
    load_photo,
    make_reward_pairs,
    perturb_program,
    weak_edits,
)
from rlkit.ops import PARAM_SPECS, EditProgram, apply_program, to_tensor

STRONG = EditProgram({"exposure": 0.8, "contrast": 30.0, "temperature": 25.0, "vibrance": 20.0, "clarity": 10.0})


def test_perturb_program_omits_or_misadjusts_existing_keys():
    changed_counts = set()
    for seed in range(30):
        weak = perturb_program(STRONG, seed)
        assert weak == perturb_program(STRONG, seed)  # seeded
        assert weak.to_dict() != STRONG.to_dict()
        assert set(weak.params) <= set(STRONG.params)  # never invents a parameter
        changed = [k for k in STRONG.params if weak.get(k) != STRONG.get(k)]
        changed_counts.add(len(changed))
        assert 1 <= len(changed) <= 3
        for k in changed:
            s, w = STRONG.get(k), weak.get(k)
            spec = PARAM_SPECS[k]
            assert spec.lo <= w <= spec.hi
            # omitted (default), under-adjusted (same sign, smaller) or over-adjusted (same sign, larger)
            assert w == spec.default or (np.sign(w) == np.sign(s) and (abs(w) < abs(s) or abs(w) > abs(s)))
    assert changed_counts == {1, 2, 3}
    with pytest.raises(ValueError, match="identity"):
        perturb_program(EditProgram(), 0)


def test_weak_edits_filter_keeps_only_clearly_worse_results():
    from skimage.color import deltaE_ciede2000, rgb2lab

    x = to_tensor(load_photo("coffee", size=48))
    kept = weak_edits(x, STRONG, 3, seed=1, min_gap=2.0)
    assert len(kept) == 3
    strong_img = apply_program(x, STRONG)[0].permute(1, 2, 0).double().numpy()
    for w in kept:
        ref_gap = deltaE_ciede2000(rgb2lab(strong_img), rgb2lab(w.image.permute(1, 2, 0).double().numpy())).mean()
        assert w.gap == pytest.approx(ref_gap, rel=1e-3)
        assert ref_gap >= 2.0
        assert torch.allclose(w.image, apply_program(x, w.program)[0], atol=1e-5)
        assert w.changes
    # an impossible threshold keeps nothing: the filter really filters
    assert weak_edits(x, STRONG, 2, seed=1, min_gap=1e9, max_candidates=4) == []
    with pytest.raises(ValueError, match="unknown metric"):
        weak_edits(x, STRONG, 1, seed=0, metric="lpips")


def test_retoucheval_builder():
    ds = build_retoucheval(2, seed=3, size=48)
    assert set(ds) == {"quality", "style", "local"}
    assert ds["quality"].features == RetouchRecord.features()
    for split in ds:
        recs = dataset_to_records(ds[split], RetouchRecord)
        assert len(recs) == 2
        for r in recs:
            assert r.split == split and len(r.instructions) == 3 and len(set(r.instructions)) == 3
            before = to_tensor(r.before)
            target = apply_program(before, r.program)
            # the stored target is the hidden program applied to the stored before (8-bit rounding)
            assert (to_tensor(r.after) - target).abs().max() <= 1.5 / 255
            assert not r.program.is_identity()
            if split == "local":
                assert r.program.local and not r.program.params
                assert min(r.before.size) == 48
    again = build_retoucheval(2, seed=3, size=48, splits=["style"])
    assert again["style"]["program"] == ds["style"]["program"]
    with pytest.raises(ValueError, match="unknown split"):
        build_retoucheval(1, splits=["global"])
    with pytest.raises(KeyError, match="astronaut"):
        build_retoucheval(1, photos=["lena"])


def test_blemish_builder_places_known_distortions_inside_disks():
    ds = build_blemish(3, seed=0, size=96)
    assert ds.features == BlemishRecord.features()
    for rec in dataset_to_records(ds, BlemishRecord):
        w, h = rec.image.size
        assert h == 96 and 1 <= len(rec.regions) <= 3
        img, clean = np.asarray(rec.image, float), np.asarray(rec.clean_image, float)
        inside = disk_mask(rec.regions, h, w)  # radius H/20
        assert np.abs(img - clean)[~inside].max() == 0  # nothing changes outside the annotated disks
        for reg, m in zip(rec.regions, rec.masks()):
            assert reg.category in GENBLEMISH_TAXONOMY and reg.description
            assert np.abs(img - clean)[m].max() > 0
    with pytest.raises(KeyError, match="unknown category"):
        build_blemish(1, categories=["melted clock"])
    with pytest.raises(ValueError, match="no synthetic distortion"):
        build_blemish(1, categories=["hand_distortion"])


def test_make_reward_pairs_from_retouch_records():
    ds = build_retoucheval(1, seed=0, size=48, splits=["style"])
    pairs = make_reward_pairs(dataset_to_records(ds["style"], RetouchRecord), seed=0, min_gap=1.0)
    assert len(pairs) == 1
    p = pairs[0]
    assert p.weak_program.to_dict() != p.strong_program.to_dict()
    assert p.strong.size == p.weak.size == p.source.size


def test_cli_build_and_stats(tmp_path, capsys):
    from rlkit.data.cli import register

    parser = argparse.ArgumentParser(prog="rlkit")
    register(parser.add_subparsers())
    out = tmp_path / "bl"
    args = parser.parse_args(["data", "build", "blemish", str(out), "--n", "2", "--size", "64"])
    assert args.func(args) == 0
    assert (out / "preview.png").is_file()
    args = parser.parse_args(["data", "stats", str(out), "--json"])
    capsys.readouterr()
    assert args.func(args) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["data"]["rows"] == 2 and stats["data"]["regions"] >= 2
    args = parser.parse_args(["data", "build", "blemish", str(out), "--n", "1"])
    assert args.func(args) == 2  # refuses to overwrite
    args = parser.parse_args(["data", "stats", str(tmp_path / "nothing")])
    assert args.func(args) == 2


def test_instruction_variants_follow_the_program():
    from rlkit.data.instructions import instructions_for

    std, detailed, terse = instructions_for({"exposure": 1.5, "temperature": 25.0})
    assert std == "Brighten the image and warm it up."
    assert "+1.5 EV" in detailed and "temperature +25" in detailed
    assert terse == "brighter, warmer"
    std, detailed, terse = instructions_for({"exposure": -0.7}, where="at the top of the frame")
    assert std == "Only at the top of the frame: darken the image." and "-0.7 EV" in detailed
    with pytest.raises(ValueError, match="no adjustment"):
        instructions_for({"tone_shadow_split": 30.0})
