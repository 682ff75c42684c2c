import json

import datasets
import pytest
from PIL import Image

from rlkit.data import (
    BlemishRecord,
    EditFHFRecord,
    RetouchRecord,
    RewardPairRecord,
    dataset_to_records,
    load_blemish,
    load_editfhf,
    load_records,
    load_retouch,
    load_reward_pairs,
    records_to_dataset,
)


def _folder(tmp_path, lines):
    for name, colour in (("a.png", (200, 10, 10)), ("b.png", (10, 200, 10))):
        Image.new("RGB", (80, 60), colour).save(tmp_path / name)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    jl = tmp_path / "metadata.jsonl"
    jl.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return jl


def test_blemish_loader_reports_bad_lines_and_keeps_going(tmp_path):
    good = {"id": "g", "image": "a.png", "prompt": "a red square",
            "regions": [{"center": [10, 20], "category": "Hand Distortion", "description": "six fingers"}]}
    jl = _folder(tmp_path, [
        good,
        {"image": "missing.png", "prompt": "p", "regions": []},
        {"image": "a.png", "prompt": "p", "regions": [{"center": [95, 20], "category": "hand_distortion"}]},
        {"image": "a.png", "prompt": "p", "regions": [{"center": [5, 5], "category": "sixth finger"}]},
        "{not json",
        {"image": "bad.png", "prompt": "p"},
        {**good, "id": ""},
    ])
    res = load_blemish(tmp_path)  # a folder: finds metadata.jsonl
    assert [r.id for r in res.records] == ["g", "metadata-7"]
    assert res.records[0].regions[0].category == "hand_distortion"  # canonical spelling
    by_line = {p.line: p.reason for p in res.problems}
    assert set(by_line) == {2, 3, 4, 5, 6}
    assert "not found" in by_line[2]
    assert "outside the 80x60 image" in by_line[3] and "regions[0]" in by_line[3]
    assert "unknown category 'sixth finger'" in by_line[4]
    assert "invalid JSON" in by_line[5]
    assert "cannot read image" in by_line[6]
    assert str(res.problems[0]).startswith(f"{jl}:2: ")
    assert res.records[0].mask().sum() > 0  # radius 60/20 = 3


def test_editfhf_loader_and_saliency_maps(tmp_path):
    region = {"box": [5, 5, 40, 40], "disks": [[20, 20]], "description": "melted hand", "flaw_type": "artifact"}
    _folder(tmp_path, [
        {"source": "a.png", "edited": "b.png", "instruction": "make it green",
         "artifact_regions": [region], "failure_regions": [], "perceptual_quality": 61.5},
        {"source": "a.png", "edited": "b.png", "instruction": "x",
         "artifact_regions": [{**region, "box": [5, 5, 90, 40]}]},
        {"source": "a.png", "edited": "b.png", "instruction": "x", "artifact_regions": [{"box": [1, 1, 2, 2]}]},
        {"source": "a.png", "edited": "b.png", "instruction": "x", "visual_consistency": "high"},
    ])
    res = load_editfhf(tmp_path)
    assert len(res.records) == 1
    rec = res.records[0]
    assert rec.scores == {"perceptual_quality": 61.5}
    art, fail = rec.saliency_maps()
    assert art.shape == (60, 80) and art.max() == pytest.approx(1.0) and not fail.any()
    reasons = {p.line: p.reason for p in res.problems}
    assert "outside the 80x60 image" in reasons[2]
    assert "missing 'disks'" in reasons[3]
    assert "must be a number" in reasons[4]


def test_retouch_loader_programs(tmp_path):
    _folder(tmp_path, [
        {"before": "a.png", "after": "b.png", "instructions": ["brighten", "raise exposure", "brighter"],
         "program": {"Exposure2012": 0.5, "Contrast2012": 20}, "reasoning": "dark", "split": "quality"},
        {"before": "a.png", "instruction": "warmer", "program": "The photo is cold, so warm it. {temperature=+20}"},
        {"before": "a.png", "instruction": "x", "program": {"exposure": 9.0}},
        {"before": "a.png", "instruction": "x", "program": "make it nice"},
        {"before": "a.png", "instructions": ["a", "b", "c", "d"], "program": {"exposure": 1}},
    ])
    res = load_retouch(tmp_path)
    assert [r.program.params for r in res.records] == [{"contrast": 20.0, "exposure": 0.5}, {"temperature": 20.0}]
    assert res.records[1].after is None and res.records[1].instruction == "warmer"
    reasons = {p.line: p.reason for p in res.problems}
    assert set(reasons) == {3, 4, 5}
    assert "exposure" in reasons[3] and "[-5, 5]" in reasons[3]
    assert reasons[4].startswith("program:") and "does not parse as a program" in reasons[4]
    assert "1 to 3" in reasons[5]


def test_reward_pair_loader(tmp_path):
    _folder(tmp_path, [
        {"source": "a.png", "strong": "b.png", "weak": "a.png", "instruction": "i", "metrics": ["exposure"],
         "score_strong": 8, "score_weak": 3},
        {"source": "a.png", "strong": "b.png", "instruction": "i"},
    ])
    res = load_reward_pairs(tmp_path / "metadata.jsonl")
    assert len(res.records) == 1 and res.records[0].score_strong == 8.0
    assert "missing image field 'weak'" in res.problems[0].reason
    with pytest.raises(ValueError, match="unknown kind"):
        load_records("coco", tmp_path)


def test_round_trip_through_save_to_disk(tmp_path):
    from rlkit.data import FlawRegion, Region
    from rlkit.ops import EditProgram, LocalAdjustment, RadialMask

    img = Image.new("RGB", (40, 30), (1, 2, 3))
    prog = EditProgram({"exposure": 0.5}, {}, [LocalAdjustment(RadialMask(0.5, 0.5, 0.2, 0.2), {"shadows": 20.0})])
    cases = [
        (BlemishRecord, BlemishRecord(img, "p", [Region((3, 4), "face_distortion", "d")], "b1")),
        (EditFHFRecord, EditFHFRecord(img, img, "i", [FlawRegion((1, 1, 9, 9), [(4, 4)], "d", "blur")], [],
                                      {"visual_consistency": 55.0}, "e1")),
        (RetouchRecord, RetouchRecord(img, img, ["a", "b"], prog, "r", "local", "r1")),
        (RewardPairRecord, RewardPairRecord(img, img, img, "i", ["m"], 7.0, None, prog, EditProgram(), "w1")),
    ]
    for cls, rec in cases:
        ds = records_to_dataset([rec])
        assert ds.features == cls.features()
        ds.save_to_disk(str(tmp_path / cls.__name__))
        back = dataset_to_records(datasets.load_from_disk(str(tmp_path / cls.__name__)), cls)[0]
        assert back.id == rec.id
        if cls is BlemishRecord:
            assert back.regions == rec.regions and back.image.size == (40, 30)
            assert ds[0]["regions"][0]["dimension"] == "human_anatomical_distortion"
        elif cls is EditFHFRecord:
            assert back.artifact_regions[0].disks == ((4.0, 4.0),) and back.scores == {"visual_consistency": 55.0}
        elif cls is RetouchRecord:
            assert back.program.to_dict() == prog.to_dict() and back.instructions == ["a", "b"]
        else:
            assert back.score_weak is None and back.strong_program.to_dict() == prog.to_dict()
    with pytest.raises(TypeError, match="mixed"):
        records_to_dataset([cases[0][1], cases[2][1]])
