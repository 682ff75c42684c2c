"""The evaluation agent's trainer: what each stage's batches hold, both stages through transformers.Trainer
with their loss terms logged, the recipe end to end on the tiny config, and rows that do not fit are named."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from rlkit.data import EditFHFRecord, build_editfhf
from rlkit.policies import EvaluationAgent
from rlkit.testing import one_torch_thread, tiny_model_path
from rlkit.train.evaluator import EvaluatorCollator, EvaluatorConfig, heldout_correlations, train_evaluator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def rows():
    with one_torch_thread():
        return build_editfhf(8, 3, size=64)


def _agent(**kw):
    torch.manual_seed(0)
    cfg = dict(image_size=64, head_dims=(16,), head_dropout=(0.0,), lora_r=4, lora_alpha=8, lora_dropout=0.0,
               plcc_memory=8)
    cfg.update(kw)
    return EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), **cfg)


def _args(tmp_path, **kw) -> EvaluatorConfig:
    base = dict(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3,
                logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0, disable_tqdm=True)
    base.update(kw)
    return EvaluatorConfig(**base)


def test_each_stage_collates_its_targets(rows):
    agent = _agent()
    batch = [rows[i] for i in range(3)]
    mos = np.array([[r[d] for d in ("perceptual_quality", "instruction_following", "visual_consistency")]
                    for r in batch])
    levels = EvaluatorCollator(agent, "levels")(batch)
    assert "scores" not in levels and "level_slots" not in levels
    tok = agent.get_tokenizer()
    words = [tok.decode(lab[lab != -100]).split() for lab in levels["level_labels"]]
    names = ["bad", "poor", "fair", "good", "excellent"]
    assert words == [[names[min(4, int(s // 20))] for s in row] for row in mos]
    scores = EvaluatorCollator(agent, "scores")(batch)
    assert "level_labels" not in scores
    torch.testing.assert_close(scores["scores"], torch.tensor(mos, dtype=torch.float32))
    both = EvaluatorCollator(agent, "both")(batch)
    assert {"scores", "level_labels"} <= set(both)


def test_rows_that_do_not_fit_are_named(rows):
    agent = _agent()
    col = EvaluatorCollator(agent, "scores")
    bad = dict(rows[0])
    bad["instruction_following"] = None
    with pytest.raises(ValueError, match=r"row 1 .* has no MOS for \['instruction_following'\]"):
        col([rows[1], bad])
    with pytest.raises(ValueError, match=r"lacks \['edited'\]"):
        col([{"source": rows[0]["source"], "instruction": "x"}])
    with pytest.raises(ValueError, match="stage must be one of"):
        EvaluatorConfig(output_dir="x", stage="pretrain")
    img = Image.new("RGB", (64, 64))
    rec = EditFHFRecord(img, img, "x", scores={"perceptual_quality": 50.0, "instruction_following": 40.0,
                                              "visual_consistency": 30.0})
    assert col([rec])["scores"].tolist() == [[50.0, 40.0, 30.0]]


def test_two_stages_train_and_log_their_terms(rows, tmp_path):
    agent = _agent()
    head0 = [p.detach().clone() for p in agent.head.parameters()]
    lora0 = {n: p.detach().clone() for n, p in agent.named_parameters() if "lora_B" in n}
    r1 = train_evaluator(agent, rows, _args(tmp_path, stage="levels", output_dir=str(tmp_path / "levels")),
                         summary=False)
    logs = [h for h in r1.history if "loss" in h]
    assert logs and all("loss/level_ce" in h and not any(k.startswith("loss/mse") for k in h) for h in logs)
    assert any(not torch.equal(lora0[n], p) for n, p in agent.named_parameters() if "lora_B" in n)
    assert all(torch.equal(a, b) for a, b in zip(head0, agent.head.parameters()))  # CE does not reach the head
    stage1 = EvaluationAgent.from_pretrained(tmp_path / "levels")
    r2 = train_evaluator(stage1, rows, _args(tmp_path, stage="scores", eval_strategy="steps", eval_steps=2),
                         eval_dataset=rows, summary=True)
    logs = [h for h in r2.history if "loss" in h]
    assert all("loss/mse/perceptual_quality" in h and "loss/level_ce" not in h for h in logs)
    assert any("eval_loss" in h for h in r2.history)
    assert not all(torch.equal(a, b) for a, b in zip(head0, stage1.head.parameters()))
    back = EvaluationAgent.from_pretrained(tmp_path / "out")
    np.testing.assert_allclose(back.score(rows["source"][:2], rows["edited"][:2], rows["instruction"][:2]),
                               stage1.score(rows["source"][:2], rows["edited"][:2], rows["instruction"][:2]),
                               atol=1e-5)
    corr = heldout_correlations(back, rows, readouts=("head", "levels"))
    assert set(corr) == {"head", "levels"} and set(corr["head"]) == {"perceptual_quality", "instruction_following",
                                                                    "visual_consistency", "overall"}


def test_recipe_tiny_config_runs_both_stages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(ROOT / "recipes"))
    try:
        import train_evaluator as recipe
    finally:
        sys.path.remove(str(ROOT / "recipes"))
    cfg = yaml.safe_load((ROOT / "recipes/evaluator/config_tiny.yaml").read_text())
    cfg["net_config"].update(image_size=64, head_dims=[8], head_dropout=[0.0])  # a dict: set in the YAML
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    code = recipe.main(["--config", str(tmp_path / "cfg.yaml"), "--max_steps", "2", "--levels_max_steps", "1",
                        "--synthetic_size", "4", "--synthetic_test_size", "3", "--synthetic_image_size", "64",
                        "--save_steps", "1", "--per_device_train_batch_size", "2", "--output_dir",
                        str(tmp_path / "o"), "--disable_tqdm", "true"])
    assert code == 0
    assert (tmp_path / "o" / "levels" / "config.json").is_file() and (tmp_path / "o" / "config.json").is_file()
    assert (tmp_path / "o" / "checkpoint-2").is_dir()
    agent = EvaluationAgent.from_pretrained(tmp_path / "o")
    assert agent.config.image_size == 64 and agent.config.backbone_training == "full"
