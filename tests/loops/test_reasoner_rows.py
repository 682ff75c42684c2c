"""EditRefiner's reasoning agent on EditFHF rows: two-image prompts per map kind, SFT/GRPO rows that the tiny
VLM's processor renders and trl's SFTTrainer trains on, and the paper's reward scoring the reference as 1."""

from __future__ import annotations

import json

import pytest

from rlkit.data import build_editfhf
from rlkit.policies import (
    editrefiner_reasoner_prompt,
    editrefiner_reasoner_rows,
    load_processor,
    parse_diagnosis,
)
from rlkit.rewards import RewardBatch, TypeAccuracyReward
from rlkit.testing import one_torch_thread


@pytest.fixture(scope="module")
def rows():
    with one_torch_thread():
        return build_editfhf(6, 11, size=64, artifacts=(1, 2), failures=(0, 1))


def test_prompt_holds_source_then_edited_image_instruction_kind_and_boxes():
    msgs = editrefiner_reasoner_prompt("Warm it up.", [[1.2, 2, 30.6, 40]], kind="failure")
    assert msgs[0]["role"] == "system"
    content = msgs[1]["content"]
    assert [b["type"] for b in content] == ["text", "image", "text", "image", "text"]
    assert content[0]["text"] == "Source image:" and content[2]["text"] == "Edited image:"
    assert content[4]["text"] == ("Instruction: Warm it up.\nLook for editing failures (the edit is missing, wrong, or "
                                  "changed what it should not).\nRegions: <box>[1, 2, 31, 40]</box>\n"
                                  "Diagnose the flaws.")
    with pytest.raises(ValueError, match="kind must be one of"):
        editrefiner_reasoner_prompt("x", kind="blur")
    with pytest.raises(ValueError, match="region box 0"):
        editrefiner_reasoner_prompt("x", [[1, 2, 3]])


def test_rows_one_per_item_and_kind_with_the_references(rows):
    sft = editrefiner_reasoner_rows(rows, stage="sft")
    grpo = editrefiner_reasoner_rows(rows, stage="grpo")
    n_art = sum(bool(r["artifact_regions"]) for r in rows)
    n_fail = sum(bool(r["failure_regions"]) for r in rows)
    assert len(sft) == len(grpo) == n_art + n_fail
    first = rows[0]
    row = next(r for r in sft if r["kind"] == "artifact")
    assert row["images"][0] is not None and len(row["images"]) == 2
    answer = row["completion"][0]["content"][0]["text"]
    parsed = parse_diagnosis(answer)
    assert parsed.ok and parsed.flaw_types == [r["flaw_type"] for r in first["artifact_regions"]]
    g = next(r for r in grpo if r["kind"] == "artifact")
    ref = json.loads(g["reference_diagnosis"])
    assert [r["bbox"] for r in ref] == [pytest.approx(r["box"]) for r in first["artifact_regions"]]
    assert all(f"<box>[{', '.join(str(int(round(c))) for c in r['bbox'])}]</box>" in g["prompt"][1]["content"][4]["text"]
               for r in ref)
    every = editrefiner_reasoner_rows(rows, stage="grpo", include_empty=True)
    assert len(every) == 2 * len(rows)
    # the reference answer is a perfect answer for the paper's flaw-type reward
    batch = RewardBatch([r["completion"] for r in sft], None,
                        {"reference_diagnosis": [g["reference_diagnosis"] for g in grpo]})
    assert TypeAccuracyReward()(batch).scores == pytest.approx([1.0] * len(sft))
    with pytest.raises(KeyError, match=r"row 0: no \['edited'"):
        editrefiner_reasoner_rows([{"source": 1, "instruction": "x"}], stage="sft")


def test_tiny_vlm_renders_and_trains_on_the_rows(rows, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig

    from rlkit.testing import tiny_model_path  # noqa: I001 - with the other deferred training imports
    from rlkit.train import train_sft

    path = tiny_model_path("qwen3_vl")
    proc = load_processor(path)
    sft = editrefiner_reasoner_rows(rows, stage="sft")
    text = proc.apply_chat_template(sft[0]["prompt"] + sft[0]["completion"], tokenize=False)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    model = AutoModelForImageTextToText.from_pretrained(path)
    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=2, use_cpu=True,
                     bf16=False, report_to=[], save_strategy="no", logging_steps=1, learning_rate=1e-3,
                     disable_tqdm=True)
    trainer = train_sft(model, Dataset.from_list(sft), args, processing_class=proc, progress=None)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(v == v and v > 0 for v in losses)


@pytest.mark.slow
def test_grpo_runs_on_the_rows_with_editrefiners_reward(rows, tmp_path):
    """trl's GRPOTrainer takes the two-image rows and the paper's reward preset (what the recipe will wire)."""
    import os

    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig

    from rlkit.rewards import editrefiner_reasoning_reward, to_trl_reward_funcs
    from rlkit.testing import tiny_model_path
    from rlkit.train import train_grpo

    ds = Dataset.from_list(editrefiner_reasoner_rows(rows, stage="grpo")[:4])
    funcs, weights = to_trl_reward_funcs(editrefiner_reasoning_reward(description_method="rouge_l"), dataset=ds)
    path = tiny_model_path("qwen3_vl")
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=16, max_steps=1, learning_rate=1e-3, logging_steps=1, report_to=[],
                      use_cpu=True, bf16=False, save_strategy="no", reward_weights=weights)
    with one_torch_thread():
        trainer = train_grpo(AutoModelForImageTextToText.from_pretrained(path), funcs, ds, args,
                             processing_class=load_processor(path), progress=None)
    assert trainer.state.global_step == 1
    logged = trainer.state.log_history[0]
    assert {"rewards/format/mean", "rewards/type_accuracy/mean", "rewards/description_similarity/mean"} <= set(logged)
