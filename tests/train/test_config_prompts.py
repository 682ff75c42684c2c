"""Recipe configuration (TrlParser, YAML + CLI), dataset formatting and dataset loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from rlkit.policies import DatasetColumnError, reasoner_rows, retoucher_rows
from rlkit.train.config import (
    ReasonerArguments,
    RecipeConfigError,
    RetoucherArguments,
    parse_recipe_args,
    parse_stages,
    sft_config_from,
)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_every_yaml_field_is_also_a_cli_flag(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output_dir: {tmp_path}\nuse_cpu: true\nlearning_rate: 0.001\nrewards: [format]\n"
                   "sft_learning_rate: 0.5\nlora_r: 8\nreport_to: none\n")
    s, g, m = parse_recipe_args(RetoucherArguments, ["--config", str(cfg), "--learning_rate", "0.002",
                                                     "--rewards", "format", "image", "--lora_alpha", "4"])
    assert g.learning_rate == 0.002            # CLI beats YAML
    assert s.rewards == ["format", "image"]
    assert s.sft_learning_rate == 0.5          # YAML beats the default
    assert (m.lora_r, m.lora_alpha) == (8, 4)
    assert g.use_cpu is True


def test_recipe_defaults_lora_r64_alpha32(tmp_path):
    _, _, m = parse_recipe_args(ReasonerArguments, ["--output_dir", str(tmp_path), "--report_to", "none",
                                                    "--use_cpu", "true"])
    assert (m.use_peft, m.lora_r, m.lora_alpha) == (True, 64, 32)


@pytest.mark.parametrize("name", ["retoucher/config_tiny.yaml", "retoucher/config_qwen2.5-vl-7b.yaml",
                                  "reasoner/config_tiny.yaml", "reasoner/config_qwen2.5-vl-7b.yaml"])
def test_shipped_configs_parse(name):
    cls = RetoucherArguments if name.startswith("retoucher") else ReasonerArguments
    s, g, m = parse_recipe_args(cls, ["--config", str(RECIPES / name), "--use_cpu", "true", "--bf16", "false"])
    assert parse_stages(s.stages) == ["sft", "grpo"]
    assert m.model_name_or_path


def test_stages_parse_and_errors():
    assert parse_stages("grpo, sft") == ["sft", "grpo"]
    assert parse_stages("grpo") == ["grpo"]
    with pytest.raises(RecipeConfigError, match="rl"):
        parse_stages("sft,rl")
    with pytest.raises(RecipeConfigError, match="repeats"):
        parse_stages("sft,sft")


def test_sft_config_inherits_run_settings_and_takes_sft_overrides(tmp_path):
    s, g, _ = parse_recipe_args(RetoucherArguments, [
        "--output_dir", str(tmp_path), "--use_cpu", "true", "--seed", "7", "--learning_rate", "0.001",
        "--per_device_train_batch_size", "3", "--num_generations", "3", "--sft_learning_rate", "0.25", "--sft_max_steps", "11",
        "--report_to", "none"])
    c = sft_config_from(g, s, output_dir=str(tmp_path / "sft"))
    assert (c.learning_rate, c.max_steps, c.seed, c.use_cpu) == (0.25, 11, 7, True)
    assert c.per_device_train_batch_size == 3
    assert c.output_dir == str(tmp_path / "sft")


def test_unknown_reward_is_named():
    from rlkit.train.recipes import retoucher_recipe_reward

    with pytest.raises(RecipeConfigError, match="'aesthetic'"):
        retoucher_recipe_reward(RetoucherArguments(rewards=["format", "aesthetic"]))
    with pytest.raises(RecipeConfigError, match="1 reward weights for 2 reward parts"):
        retoucher_recipe_reward(RetoucherArguments(rewards=["format", "image"]), [1.0])


def test_each_reasoner_paper_gets_its_own_reward():
    """Agentic Retoucher: type accuracy + description similarity (equal weights, no format term); EditRefiner:
    0.2 format + 0.4 type + 0.4 description (its public code's weights)."""
    from rlkit.train.config import ReasonerArguments
    from rlkit.train.recipes import reasoner_recipe_reward

    ar = reasoner_recipe_reward(ReasonerArguments(paper="agentic_retoucher", description_method="rouge"))
    assert [r.name for r in ar.rewards] == ["type_accuracy", "description_similarity"] and ar.weights == [1.0, 1.0]
    er = reasoner_recipe_reward(ReasonerArguments(paper="editrefiner", description_method="rouge"))
    assert [r.name for r in er.rewards] == ["format", "type_accuracy", "description_similarity"]
    assert er.weights == [0.2, 0.4, 0.4]
    with pytest.raises(RecipeConfigError, match="no format term"):
        reasoner_recipe_reward(ReasonerArguments(paper="agentic_retoucher", format_weight=0.2))
    with pytest.raises(RecipeConfigError, match="paper='richhf'"):
        reasoner_recipe_reward(ReasonerArguments(paper="richhf"))


def _img(c=(90, 120, 150), size=(40, 30)):
    return Image.new("RGB", size, c)


def test_retoucher_sft_completion_parses_back_to_the_expert_program():
    from rlkit.ops import parse_program

    rows = retoucher_rows([{"image": _img(), "instruction": "Brighten it.", "reasoning": "Too dark.",
                            "program": {"Exposure2012": 0.7, "contrast": -20}}], stage="sft")
    r = rows[0]
    assert r["prompt"][-1]["content"][0] == {"type": "image"}
    assert r["prompt"][-1]["content"][1]["text"] == "Brighten it."
    text = r["completion"][0]["content"][0]["text"]
    assert text.startswith("Too dark.")
    parsed = parse_program(text, "retouchiq")
    assert parsed.ok and parsed.program.params == {"exposure": 0.7, "contrast": -20.0}


def test_retoucher_grpo_rows_keep_reward_columns_and_drop_targets_text():
    tgt = _img((10, 10, 10))
    rows = retoucher_rows([{"image": _img(), "instruction": "x", "target_image": tgt, "program": "{}",
                            "reasoning": "r"}], stage="grpo")
    assert set(rows[0]) == {"prompt", "image", "instruction", "target_image", "program"}
    assert rows[0]["target_image"] is tgt


def test_missing_column_names_row_and_columns():
    with pytest.raises(DatasetColumnError, match=r"row 1: no instruction column .*'image'"):
        retoucher_rows([{"image": _img(), "instruction": "a", "program": {}}, {"image": _img()}], stage="grpo")
    with pytest.raises(ValueError, match="row 0: expert program text does not parse"):
        retoucher_rows([{"image": _img(), "instruction": "a", "program": "not a program"}], stage="sft")


def test_reasoner_rows_boxes_in_prompt_and_reference_json():
    from rlkit.policies.diagnosis import parse_diagnosis

    ref = [{"flaw_type": "extra finger", "description": "six fingers on the left hand"},
           {"flaw_type": "text", "description": "garbled letters"}]
    sft = reasoner_rows([{"image": _img(), "boxes": [[1, 2, 10.4, 20.6], [0, 0, 5, 5]],
                          "reference_diagnosis": ref, "prompt_text": "a hand"}], stage="sft")[0]
    text = sft["prompt"][-1]["content"][1]["text"]
    assert "<box>[1, 2, 10, 21]</box> <box>[0, 0, 5, 5]</box>" in text and "a hand" in text
    parsed = parse_diagnosis(sft["completion"][0]["content"][0]["text"])
    assert parsed.ok and [d.flaw_type for d in parsed.items] == ["extra finger", "text"]
    grpo = reasoner_rows([{"image": _img(), "reference_diagnosis": ref}], stage="grpo")[0]
    assert json.loads(grpo["reference_diagnosis"]) == ref
    with pytest.raises(ValueError, match="region box 0"):
        reasoner_rows([{"image": _img(), "boxes": [[1, 2, 3]], "reference_diagnosis": ref}], stage="sft")


def test_blemish_regions_become_scaled_boxes():
    from rlkit.train.recipe_data import reasoner_row

    row = {"image": _img(size=(200, 100)), "prompt": "p",
           "regions": [{"x": 50.0, "y": 40.0, "radius": 5.0, "category": "hand", "description": "d"}]}
    out = reasoner_row(row, image_size=100)  # scale 0.5
    assert out["boxes"] == [[22, 18, 28, 22]]  # (45, 35, 55, 45) * 0.5, rounded half to even
    assert out["reference_diagnosis"] == [{"flaw_type": "hand", "description": "d"}]
    with pytest.raises(ValueError, match="region 0"):
        reasoner_row({"image": _img(), "regions": [{"x": 1}]}, image_size=10)


def test_load_rows_from_a_jsonl_file_is_cut_into_train_and_test(tmp_path):
    from rlkit.train.recipe_data import load_rows

    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"instruction": f"i{k}", "v": k}) + "\n" for k in range(20)))
    train, test = load_rows(str(p), task="retoucher", image_size=32)
    assert (len(train), len(test)) == (18, 2)
    assert {r["v"] for r in train} | {r["v"] for r in test} == set(range(20))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_rows(str(tmp_path / "missing.jsonl"), task="retoucher")


def test_docs_recipes_python_examples_run():
    """The Python snippets of docs/recipes.md run as written (the quickstart's full run is the slow test)."""
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks
    for code in blocks:
        ns: dict = {}
        exec(compile(code, "docs/recipes.md", "exec"), ns)  # our own documentation, not model text
    assert callable(ns["reward_fn"])
