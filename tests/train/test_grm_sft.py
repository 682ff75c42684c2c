"""GRM SFT rows (multi-image prompt, shown order, targets the parser reads back), the prompt the trained model
is asked at inference, pair accuracy against judges with known answers, and a short SFT run on the tiny VLM."""

from __future__ import annotations

import pytest
from PIL import Image

from rlkit.rewards import (
    DEFAULT_TEMPLATE,
    TemplateAnnotator,
    TransformersBackend,
    build_perturbed_pairs,
    pair_sources,
    parse_grm_output,
)
from rlkit.rewards.grm import GRMBackend, Reply
from rlkit.train.grm import GRMSFTConfig, grm_prompt, grm_rl_rows, grm_sft_rows, pair_accuracy, train_grm_sft


def _img(v):
    return Image.new("RGB", (32, 32), (v, v // 2, 255 - v))


@pytest.fixture(scope="module")
def pairs():
    from rlkit.data import RetouchRecord, build_retoucheval, dataset_to_records

    ds = build_retoucheval(2, 4, size=40)
    items = pair_sources([r for sp in ds.values() for r in dataset_to_records(sp, RetouchRecord)])
    built = build_perturbed_pairs(items, per_record=1, candidates=10, annotator=TemplateAnnotator(), seed=0)
    assert set(built.dataset["strong_position"]) == {1, 2}
    return built.dataset


def test_sft_rows_show_source_then_the_pair_in_order_and_score_it(pairs):
    rows = grm_sft_rows(pairs, pointwise=False, both_orders=False)
    assert len(rows) == pairs.num_rows
    for row, rec in zip(rows, pairs):
        placeholders = [b for m in row["prompt"] for b in m["content"] if b["type"] == "image"]
        assert len(placeholders) == len(row["images"]) == 3
        src, first, second = row["images"]
        assert src.tobytes() == rec["source"].tobytes()
        strong_first = rec["strong_position"] == 1
        assert (first if strong_first else second).tobytes() == rec["strong"].tobytes()
        assert (second if strong_first else first).tobytes() == rec["weak"].tobytes()
        p = parse_grm_output(row["completion"][0]["content"][0]["text"], 2)
        assert p.ok and p.metrics == rec["metrics"]
        want = [rec["score_strong"], rec["score_weak"]]
        assert p.scores == (want if strong_first else want[::-1])
        text = " ".join(b["text"] for m in row["prompt"] for b in m["content"] if b["type"] == "text")
        assert rec["instruction"] in text and "Image 2" in text


def test_both_orders_and_pointwise_rows(pairs):
    rows = grm_sft_rows(pairs, pointwise=True, both_orders=True)
    assert len(rows) == 4 * pairs.num_rows  # two orders + two single-image rows per pair
    per = rows[:4]
    rec = pairs[0]
    a, b = (parse_grm_output(r["completion"][0]["content"][0]["text"], 2).scores for r in per[:2])
    assert a == b[::-1]  # the same pair, each order scored in its own order
    singles = [parse_grm_output(r["completion"][0]["content"][0]["text"], 1).score for r in per[2:]]
    assert singles == [rec["score_strong"], rec["score_weak"]] and [len(r["images"]) for r in per[2:]] == [2, 2]
    with pytest.raises(ValueError, match="not annotated"):
        grm_sft_rows([{**rec, "metrics": []}])


def test_rl_rows_keep_the_order_for_the_reward(pairs):
    rows = grm_rl_rows(pairs)
    assert [r["strong_position"] for r in rows] == list(pairs["strong_position"])
    assert all(len(r["images"]) == 3 and "completion" not in r for r in rows)


def test_training_prompt_is_the_inference_prompt(pairs):
    """The chat text the SFT trainer renders for a row equals what TransformersBackend sends the trained model."""
    from rlkit.policies import load_processing_class
    from rlkit.testing import tiny_model_path

    proc = load_processing_class(tiny_model_path("qwen2_5_vl"))
    rec = pairs[0]
    shown = [rec["strong"], rec["weak"]]
    prompt, images = grm_prompt(rec["instruction"], rec["source"], shown)
    from trl.data_utils import prepare_multimodal_messages

    train_text = proc.apply_chat_template(prepare_multimodal_messages(prompt, images=images), tokenize=False,
                                          add_generation_prompt=True)
    from rlkit.rewards.grm.backends import _flatten_system

    infer_text = proc.apply_chat_template(_flatten_system(DEFAULT_TEMPLATE.messages(rec["instruction"], rec["source"],
                                                                                     shown)),
                                          tokenize=False, add_generation_prompt=True)
    assert train_text == infer_text and train_text.count("<|image_pad|>") == 3


class Judge(GRMBackend):
    """Scores each shown image with ``fn(image)``; counts requests."""

    def __init__(self, fn):
        self.fn, self.n = fn, 0

    def generate(self, requests):
        out = []
        for m in requests:
            self.n += 1
            imgs = [b["image"] for msg in m if isinstance(msg["content"], list) for b in msg["content"]
                    if b.get("type") == "image"][1:]
            s = [self.fn(im) for im in imgs]
            if s[0] is None:
                out.append(Reply(None, "server down"))
            elif len(s) == 1:
                out.append(Reply(f"<metrics>1. m</metrics><score>{s[0]}</score>"))
            else:
                out.append(Reply(f"<metrics>1. m</metrics><scores>Image 1: {s[0]}; Image 2: {s[1]}</scores>"))
        return out


def test_pair_accuracy_against_known_judges(pairs):
    strong = {r["strong"].tobytes() for r in pairs}
    perfect = pair_accuracy(Judge(lambda im: 9 if im.tobytes() in strong else 2), pairs)
    assert perfect["accuracy"] == 1.0 and perfect["parsed"] == 1.0 and perfect["answers"] == 2 * pairs.num_rows
    inverted = pair_accuracy(Judge(lambda im: 2 if im.tobytes() in strong else 9), pairs)
    assert inverted["accuracy"] == 0.0
    counter = iter(range(10**6))
    first_wins = Judge(lambda im: 9 if next(counter) % 2 == 0 else 1)  # prefers whatever is shown first
    assert pair_accuracy(first_wins, pairs)["accuracy"] == 0.5
    tie = pair_accuracy(Judge(lambda im: 5), pairs)
    assert tie["accuracy"] == 0.0 and tie["ties"] == 1.0
    down = pair_accuracy(Judge(lambda im: None), pairs)
    assert down["accuracy"] == 0.0 and down["parsed"] == 0.0 and down["first_failure"] == "server down"
    one = pair_accuracy(Judge(lambda im: 9 if im.tobytes() in strong else 2), pairs, both_orders=False)
    assert one["answers"] == pairs.num_rows


def test_pointwise_accuracy_scores_each_edit_alone(pairs):
    strong = {r["strong"].tobytes() for r in pairs}
    judge = Judge(lambda im: 9 if im.tobytes() in strong else 2)
    res = pair_accuracy(judge, pairs, mode="pointwise")
    assert res["accuracy"] == 1.0 and res["pairs"] == pairs.num_rows and judge.n == 2 * pairs.num_rows
    # a judge that scores by position cannot exist here; one that scores everything alike ties
    assert pair_accuracy(Judge(lambda im: 5), pairs, mode="pointwise")["ties"] == 1.0
    weak_higher = pair_accuracy(Judge(lambda im: 1 if im.tobytes() in strong else 6), pairs, mode="pointwise")
    assert weak_higher["accuracy"] == 0.0 and weak_higher["parsed"] == 1.0
    with pytest.raises(ValueError, match="mode"):
        pair_accuracy(judge, pairs, mode="both")


def test_short_sft_run_on_the_tiny_vlm(pairs, tmp_path):
    """Multi-image rows go through trl's SFTTrainer; the saved GRM loads as a judge and the loss fell."""
    from rlkit.policies import load_processing_class
    from rlkit.testing import tiny_model_path

    path = str(tiny_model_path("qwen2_5_vl"))
    proc = load_processing_class(path)
    args = GRMSFTConfig(output_dir=str(tmp_path), max_steps=8, learning_rate=1e-2, per_device_train_batch_size=4,
                        lr_scheduler_type="constant", use_cpu=True, bf16=False, report_to="none", logging_steps=1,
                        save_strategy="no", seed=0, pointwise_rows=False)
    trainer = train_grm_sft(path, pairs, args, processing_class=proc)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 8 and sum(losses[-2:]) < sum(losses[:2])
    judge = TransformersBackend(str(tmp_path), max_new_tokens=8)
    assert judge.generate([DEFAULT_TEMPLATE.messages("x", _img(10), [_img(20), _img(30)])])[0].text is not None
