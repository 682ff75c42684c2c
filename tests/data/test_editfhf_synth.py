"""The synthetic EditFHF builder: real engine edits, injected flaws where the records say, maps, reasons, and
MOS that follow the documented formula and fall monotonically with injected severity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rlkit.data import (
    MOS_DIMENSIONS,
    EditFHFRecord,
    build_editfhf,
    dataset_to_records,
    disk_mask,
    editfhf_mos,
    saliency_from_regions,
)
from rlkit.testing import one_torch_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():  # tiny models: no thread contention on a loaded machine
        yield


@pytest.fixture(scope="module")
def ds():
    return build_editfhf(10, seed=3, size=64, artifacts=(1, 2), failures=(1, 2))


def test_schema_determinism_and_records(ds):
    assert set(EditFHFRecord.features()) <= set(ds.column_names)
    assert {"intended", "program", "injected"} <= set(ds.column_names)
    again = build_editfhf(2, seed=3, size=64, artifacts=(1, 2), failures=(1, 2))
    assert np.array_equal(np.asarray(again[1]["edited"]), np.asarray(ds[1]["edited"]))
    recs = dataset_to_records(ds, EditFHFRecord)
    for r in recs:
        assert r.source.size == r.edited.size == (64, 64)
        assert set(r.scores) == set(MOS_DIMENSIONS)
        assert r.instruction and r.instruction[0].isupper()
        for reg in [*r.artifact_regions, *r.failure_regions]:
            assert reg.description and reg.flaw_type
            reg.check_inside(64, 64)
            x1, y1, x2, y2 = reg.box
            assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in reg.disks)


def test_intended_edit_is_the_engine_executing_the_program(ds):
    from rlkit.ops import EditProgram, apply_program, to_tensor

    for row in ds.select(range(4)):
        prog = EditProgram.from_dict(json.loads(row["program"]))
        want = apply_program(to_tensor(row["source"]), prog)[0].permute(1, 2, 0).numpy()
        got = np.asarray(row["intended"], dtype=np.float64) / 255
        assert np.abs(got - want).max() <= 1 / 255 + 1e-6
        assert np.abs(got - np.asarray(row["source"]) / 255).mean() > 0.01  # the edit does something


def test_flaws_are_where_the_records_say(ds):
    for row in ds:
        inj = json.loads(row["injected"])
        edited = np.asarray(row["edited"], dtype=np.float64)
        intended = np.asarray(row["intended"], dtype=np.float64)
        diff = np.abs(edited - intended).max(-1)
        flawed = disk_mask([tuple(p) for r in inj for p in r["disks"]], 64, 64, radius=inj[0]["radius"])
        assert diff[~flawed].max() <= 1.0  # untouched outside the disks (uint8 rounding only)
        assert diff[flawed].mean() > 2.0  # and changed inside
        rec = EditFHFRecord.from_example(row)
        art, fail = rec.saliency_maps()
        ref = saliency_from_regions([tuple(p) for r in inj if r["kind"] == "artifact" for p in r["disks"]], 64, 64,
                                    radius=inj[0]["radius"])
        np.testing.assert_allclose(art, ref, atol=1e-6)
        assert (fail.max() > 0.99) == any(r["kind"] == "editing_failure" for r in inj)


def test_mos_follow_the_documented_formula(ds):
    for row in ds:
        inj = json.loads(row["injected"])
        unit = math.pi * (64 / 20) ** 2
        b = {"a": 0.0, "f": 0.0, "u": 0.0}
        for r in inj:
            assert r["area"] == int(disk_mask([tuple(p) for p in r["disks"]], 64, 64, radius=r["radius"]).sum())
            key = "a" if r["kind"] == "artifact" else ("u" if r["flaw_type"] == "unintended_edit" else "f")
            b[key] += r["severity"] * r["area"] / unit
        assert row["perceptual_quality"] == pytest.approx(100 * math.exp(-0.35 * b["a"]), rel=1e-5)
        assert row["instruction_following"] == pytest.approx(100 * math.exp(-0.35 * b["f"]), rel=1e-5)
        assert row["visual_consistency"] == pytest.approx(100 * math.exp(-0.35 * (b["u"] + 0.5 * b["a"])), rel=1e-5)
        assert editfhf_mos(inj, 64)["perceptual_quality"] == pytest.approx(row["perceptual_quality"], rel=1e-5)


def test_mos_fall_monotonically_with_injected_severity():
    kw = {"size": 64, "artifacts": (1, 2), "failures": (1, 2), "severity": (0.4, 0.8)}
    runs = [build_editfhf(6, seed=5, severity_scale=s, **kw) for s in (0.0, 0.5, 1.0)]
    for i in range(6):
        rows = [r[i] for r in runs]
        injected = [json.loads(r["injected"]) for r in rows]
        assert [len(x) for x in injected] == [len(injected[0])] * 3  # same regions, only stronger
        assert all(v == pytest.approx(100.0) for v in (rows[0][k] for k in MOS_DIMENSIONS))
        assert np.array_equal(np.asarray(rows[0]["edited"]), np.asarray(rows[0]["intended"]))
        for k in MOS_DIMENSIONS:
            assert rows[0][k] >= rows[1][k] >= rows[2][k]
        assert rows[1]["perceptual_quality"] > rows[2]["perceptual_quality"]  # >= 1 artifact in every item
        change = [np.abs(np.asarray(r["edited"], float) - np.asarray(r["intended"], float)).sum() for r in rows]
        assert change[0] < change[1] < change[2]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n must be"):
        build_editfhf(0)
    with pytest.raises(ValueError, match="severity"):
        build_editfhf(1, severity=(0.8, 0.2))
    with pytest.raises(ValueError, match="artifacts"):
        build_editfhf(1, artifacts=(3, 1))
    with pytest.raises(KeyError, match="unknown photo"):
        build_editfhf(1, photos=["nope"])
    with pytest.raises(ValueError, match="injected\\[0\\]"):
        editfhf_mos([{"kind": "artifact", "flaw_type": "x", "severity": float("nan"), "area": 3}], 64)


def test_radius_scale_grows_the_disks_and_the_mos_count_them_in_disks_of_their_own_radius():
    kw = {"size": 128, "artifacts": (1, 2), "failures": (1, 2)}  # 128 px: disks of radius >= 6.4 px, ~round
    base, big = build_editfhf(6, seed=4, **kw), build_editfhf(6, seed=4, radius_scale=2.0, **kw)
    areas = {}
    for name, ds in (("base", base), ("big", big)):
        r = 128 / 20 * (2.0 if name == "big" else 1.0)
        areas[name] = []
        for row in ds:
            inj = json.loads(row["injected"])
            assert inj and all(reg["radius"] == pytest.approx(r) for reg in inj)
            flawed = disk_mask([tuple(p) for reg in inj for p in reg["disks"]], 128, 128, radius=r)
            diff = np.abs(np.asarray(row["edited"], float) - np.asarray(row["intended"], float)).max(-1)
            assert diff[~flawed].max() <= 1.0 and diff[flawed].mean() > 2.0  # the flaws are the scaled disks
            b = {"a": 0.0, "f": 0.0, "u": 0.0}
            for reg in inj:
                if reg["kind"] == "artifact":  # one disk, kept inside the image: ~ pi r^2 pixels
                    assert reg["area"] == pytest.approx(math.pi * r * r, rel=0.05)
                    areas[name].append(reg["area"])
                key = "a" if reg["kind"] == "artifact" else ("u" if reg["flaw_type"] == "unintended_edit" else "f")
                b[key] += reg["severity"] * reg["area"] / (math.pi * r * r)  # one whole disk at severity 1 = 1
            assert row["perceptual_quality"] == pytest.approx(100 * math.exp(-0.35 * b["a"]), rel=1e-5)
            assert row["instruction_following"] == pytest.approx(100 * math.exp(-0.35 * b["f"]), rel=1e-5)
            assert row["visual_consistency"] == pytest.approx(100 * math.exp(-0.35 * (b["u"] + 0.5 * b["a"])),
                                                              rel=1e-5)
            assert editfhf_mos(inj, 128)["visual_consistency"] == pytest.approx(row["visual_consistency"], rel=1e-5)
    assert np.mean(areas["big"]) / np.mean(areas["base"]) == pytest.approx(4.0, rel=0.05)  # area ~ scale^2


def test_bad_radius_scale_is_named():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="radius_scale"):
            build_editfhf(1, size=64, radius_scale=bad)
    with pytest.raises(ValueError, match="radius_scale 12 leaves no room"):
        build_editfhf(1, size=64, radius_scale=12.0)
    with pytest.raises(ValueError, match="injected\\[0\\]: radius"):
        editfhf_mos([{"kind": "artifact", "flaw_type": "x", "severity": 0.5, "area": 3, "radius": 0.0}], 64)
