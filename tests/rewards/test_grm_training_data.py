"""GRM training pairs: the weak-edit filter, perturbers, annotators (kept only when they rank correctly),
policy pairs, and the saved dataset."""

from __future__ import annotations

import pytest
from PIL import Image

from rlkit.data import RetouchRecord, build_retoucheval, dataset_to_records
from rlkit.metrics import delta_e2000
from rlkit.ops import EditProgram, apply_program, render_program, to_pil, to_tensor
from rlkit.rewards import (
    Annotation,
    AnnotationRequest,
    EndpointAnnotator,
    GRMServer,
    MLLMPerturber,
    OpenAIBackend,
    PairDataError,
    TemplateAnnotator,
    WeakFilter,
    build_perturbed_pairs,
    build_policy_pairs,
    load_pairs,
    pair_sources,
    parse_grm_output,
    save_pairs,
)


@pytest.fixture(scope="module")
def items():
    ds = build_retoucheval(2, 3, size=48)
    return pair_sources([r for sp in ds.values() for r in dataset_to_records(sp, RetouchRecord)])


def test_strong_is_the_expert_program_rendered(items):
    it = items[0]
    want = to_pil(apply_program(to_tensor(it.source), it.program))[0]
    assert it.strong.tobytes() == want.tobytes()


def test_every_kept_weak_edit_passes_the_filter_measured_independently(items):
    wf = WeakFilter("delta_e2000", 3.0)
    built = build_perturbed_pairs(items, per_record=2, candidates=10, weak_filter=wf, seed=5)
    assert built.kept > 0 and built.criterion == "delta_e2000(weak, strong) >= 3"
    assert sum(built.dropped.values()) > 0  # some proposals are too close to the expert edit at this gap
    for row in built.dataset:
        gap = float(delta_e2000(to_tensor(row["weak"]), to_tensor(row["strong"]))[0])
        assert gap >= 3.0 and gap == pytest.approx(row["gap"], rel=1e-5)
        assert row["weak_kind"] == "perturbed" and row["weak_note"]  # what the perturbation changed
        assert row["strong_position"] in (1, 2)
    assert set(built.dataset["strong_position"]) == {1, 2}
    again = build_perturbed_pairs(items, per_record=2, candidates=10, weak_filter=wf, seed=5)
    assert again.dataset["weak_program"] == built.dataset["weak_program"]  # seeded
    assert again.dataset["strong_position"] == built.dataset["strong_position"]


def test_template_annotator_scores_by_gap():
    ann = TemplateAnnotator(strong_score=8, min_weak=2, full_gap=6)
    prog = EditProgram({"exposure": 0.5, "temperature": -20.0})
    img = Image.new("RGB", (8, 8))

    def weak(gap):
        return ann(AnnotationRequest("x", img, img, img, prog, None, gap, 1)).score_weak

    # 8 - 6 * min(1, gap / 6), rounded, within [2, 7]
    assert [weak(g) for g in (0.0, 2.0, 3.0, 4.6, 6.0, 50.0)] == [7.0, 6.0, 5.0, 3.0, 2.0, 2.0]
    a = ann(AnnotationRequest("x", img, img, img, prog, None, 3.0, 2))
    # ranked by offset / range: temperature 20 / 200 = 0.1 before exposure 0.5 / 10 = 0.05
    assert a.score_strong == 8.0 and a.metrics == ["temperature lowered", "exposure raised"]


def test_only_annotations_that_rank_correctly_are_kept(items):
    calls = []

    def flaky(req):  # ranks every other pair the wrong way round, and refuses one
        calls.append(req)
        k = len(calls)
        if k == 3:
            return None
        return Annotation(["m"], 5.0, 7.0) if k % 2 == 0 else Annotation(["m"], 9.0, 1.0)

    built = build_perturbed_pairs(items, per_record=1, candidates=10, annotator=flaky, seed=1)
    n = len(calls)
    wrong = sum(1 for k in range(1, n + 1) if k % 2 == 0 and k != 3)
    assert built.kept == n - wrong - 1
    assert built.dropped["annotation ranks the weak edit at or above the strong one"] == wrong
    assert built.dropped["annotator gave no annotation"] == 1
    assert set(built.dataset["score_strong"]) == {9.0} and set(built.dataset["score_weak"]) == {1.0}


def _images(messages):
    return [b["image"] for m in messages if isinstance(m["content"], list) for b in m["content"]
            if b.get("type") == "image"]


def test_endpoint_annotator_maps_the_shown_order_back(items):
    """A served judge that scores the image closer to the expert rendering higher; the annotator shows the
    pair in its recorded order and must map the two scores back to strong and weak."""
    strongs = {it.strong.tobytes() for it in items}

    def judge(messages):
        shown = _images(messages)[1:]
        s = [9 if im.tobytes() in strongs else 3 for im in shown]
        return f"<metrics>\n1. follows the request\n</metrics>\n<scores>Image 1: {s[0]}; Image 2: {s[1]}</scores>"

    with GRMServer(judge) as srv:
        ann = EndpointAnnotator(OpenAIBackend(srv.base_url, "judge", timeout=30, max_retries=0))
        built = build_perturbed_pairs(items, per_record=1, candidates=10, annotator=ann, seed=2)
    assert built.kept > 0 and set(built.dataset["strong_position"]) == {1, 2}
    assert set(built.dataset["score_strong"]) == {9.0} and set(built.dataset["score_weak"]) == {3.0}
    assert built.dataset[0]["metrics"] == ["follows the request"]


def test_endpoint_annotator_failures_are_counted(items):
    with GRMServer(lambda m: "no scores here") as srv:
        ann = EndpointAnnotator(OpenAIBackend(srv.base_url, "judge", timeout=30, max_retries=0))
        built = build_perturbed_pairs(items[:2], per_record=1, candidates=10, annotator=ann, seed=2)
    assert built.kept == 0 and built.dataset.num_rows == 0
    assert any(k.startswith("annotator answer unparseable: no <metrics>") for k in built.dropped)


def test_mllm_perturber_through_an_endpoint(items):
    answers = iter(["{exposure=-0.9}", "I would rather not.", "{exposure=-0.9; temperature=+40}"] * 10)
    seen = []

    def perturber(messages):
        seen.append(messages)
        return next(answers)

    with GRMServer(perturber) as srv:
        p = MLLMPerturber(OpenAIBackend(srv.base_url, "glm", timeout=30, max_retries=0, max_concurrency=1))
        built = build_perturbed_pairs(items[:1], per_record=2, candidates=3, perturber=p,
                                      weak_filter=WeakFilter("delta_e2000", 0.5), seed=0)
    text = " ".join(b.get("text", "") for b in seen[0][1]["content"] if b.get("type") == "text")
    assert items[0].instruction in text and render_program(items[0].program, "retouchiq") in text
    assert len(_images(seen[0])) == 2  # the photo and the expert edit
    assert built.kept == 2
    assert sorted(built.dataset["weak_note"]) == ["{exposure=-0.9; temperature=+40}", "{exposure=-0.9}"]
    assert sum(v for k, v in built.dropped.items() if k.startswith("perturber answer did not parse")) == 1


def test_policy_pairs_execute_parse_and_filter(items):
    it = items[0]
    expert_text = "{" + "; ".join(f"{k}={v:+g}" for k, v in it.program.params.items()) + "}" if it.program.params \
        else None
    texts = ["{exposure=-1.5; saturation=-60}", "not a program at all"] + ([expert_text] if expert_text else [])
    built = build_policy_pairs([it], [texts], fmt="auto")
    rows = list(built.dataset)
    assert rows[0]["weak_kind"] == "policy" and rows[0]["weak_note"].startswith("{exposure=-1.5")
    want = to_pil(apply_program(to_tensor(it.source), EditProgram({"exposure": -1.5, "saturation": -60.0})))[0]
    assert rows[0]["weak"].tobytes() == want.tobytes()
    # the unparseable completion executes nothing: its result is the unedited photo
    assert rows[1]["weak"].tobytes() == it.source.tobytes() and "did not parse" in rows[1]["weak_note"]
    if expert_text:  # the expert edit itself is not weaker than itself: dropped by the filter
        assert built.kept == 2 and any("filter gap" in k for k in built.dropped)
    dropped = build_policy_pairs([it], [texts[:2]], unparsed="drop")
    assert dropped.kept == 1 and dropped.dropped == {"policy edit did not parse": 1}


def test_saved_pairs_reload_and_damage_is_named(items, tmp_path):
    built = build_perturbed_pairs(items[:3], per_record=1, candidates=10, annotator=TemplateAnnotator(), seed=0)
    path = save_pairs(built.dataset, tmp_path / "pairs")
    back = load_pairs(path)
    assert back.num_rows == built.kept and back.features == built.dataset.features
    row = back[0]
    assert row["metrics"] and row["score_strong"] > row["score_weak"]
    text = "<metrics>\n" + "\n".join(row["metrics"]) + "\n</metrics><score>8</score>"
    assert parse_grm_output(text).ok
    with pytest.raises(PairDataError, match="does not exist"):
        load_pairs(tmp_path / "nope")
    for f in path.glob("*.arrow"):
        f.write_bytes(b"\x00garbage")
    with pytest.raises(PairDataError, match=str(path)):
        load_pairs(path)


def test_sources_need_a_program():
    img = Image.new("RGB", (16, 16))
    with pytest.raises(PairDataError, match=r"row 1 \(b\): no expert program"):
        pair_sources([{"image": img, "instruction": "x", "program": "{exposure=+1}", "id": "a"},
                      {"image": img, "instruction": "y", "id": "b"}])
    with pytest.raises(PairDataError, match="identity"):
        pair_sources([{"image": img, "program": EditProgram()}])
