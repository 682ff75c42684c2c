"""``rlkit refine``: both loops from the command line on saved tiny agents, traces written, names refused."""

from __future__ import annotations

import json

import pytest
import torch

from rlkit.cli import main
from rlkit.data import build_editfhf, load_photo
from rlkit.policies import EvaluationAgent
from rlkit.testing import tiny_model_path


@pytest.fixture(scope="module")
def evaluator_dir(tmp_path_factory):
    torch.manual_seed(0)
    agent = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), image_size=64, head_dims=(8,),
                                          head_dropout=(0.0,), lora_r=2)
    out = tmp_path_factory.mktemp("evaluator")
    agent.save_pretrained(out)
    return out


def test_editrefiner_command_writes_traces(tmp_path, evaluator_dir, capsys):
    row = build_editfhf(1, 4, size=64)[0]
    row["edited"].save(tmp_path / "edited.png")
    row["source"].save(tmp_path / "source.png")
    code = main(["refine", "editrefiner", "--image", str(tmp_path / "edited.png"), "--source",
                 str(tmp_path / "source.png"), "--instruction", row["instruction"], "--perception",
                 str(tiny_model_path("saliency_vlm")), "--reasoner", str(tiny_model_path("qwen3_vl")),
                 "--max-new-tokens", "8", "--evaluator", str(evaluator_dir), "--inpaint",
                 str(tiny_model_path("sd_inpaint")), "--steps", "2", "--tau", "0.3", "--out", str(tmp_path / "out")])
    assert code == 0
    trace = json.loads((tmp_path / "out" / "edited" / "trace.json").read_text())
    assert trace["loop"] == "editrefiner" and trace["instruction"] == row["instruction"]
    for name in ("strip.png", "best.png", "maps.npz"):
        assert (tmp_path / "out" / "edited" / name).is_file()
    # the untrained tiny VLM does not answer in the diagnosis format: a failed turn, recorded, input returned
    if trace["turns"]:
        assert trace["turns"][0]["status"] == "failed" and "does not parse" in trace["turns"][0]["reason"]
        assert trace["best_turn"] == 0
    assert "editrefiner: 1 image(s)" in capsys.readouterr().out


def test_agentic_retoucher_command_on_a_photo(tmp_path):
    load_photo("coffee", size=64).save(tmp_path / "coffee.png")
    code = main(["refine", "agentic-retoucher", "--image", str(tmp_path / "coffee.png"), "--prompt", "a cup of coffee",
                 "--perception", str(tiny_model_path("saliency_text")), "--reasoner", str(tiny_model_path("qwen3_vl")),
                 "--max-new-tokens", "8", "--inpaint", str(tiny_model_path("sd_inpaint")), "--steps", "2",
                 "--tau-s", "0.0", "--out", str(tmp_path / "out")])
    assert code == 0
    trace = json.loads((tmp_path / "out" / "coffee" / "trace.json").read_text())
    assert trace["loop"] == "agentic_retoucher" and trace["prompt"] == "a cup of coffee"
    assert trace["input_scores"] is not None and len(trace["input_scores"]) == 1


def test_tiny_names_and_missing_pieces_are_refused(tmp_path, evaluator_dir):
    with pytest.raises(SystemExit, match="rlkit make-tiny DIR --kind saliency_vlm"):
        main(["refine", "editrefiner", "--image", "x.png", "--perception", "tiny:saliency_vlm", "--evaluator",
              str(evaluator_dir), "--reasoner", "r", "--inpaint", "i"])
    load_photo("coffee", size=64).save(tmp_path / "c.png")
    with pytest.raises(SystemExit, match="give at least one repair tool"):
        main(["refine", "editrefiner", "--image", str(tmp_path / "c.png"), "--perception",
              str(tiny_model_path("saliency_vlm")), "--evaluator", str(evaluator_dir), "--reasoner",
              str(tiny_model_path("qwen3_vl"))])
    with pytest.raises(SystemExit, match="--image 'missing.png' is not a file"):
        main(["refine", "editrefiner", "--image", "missing.png", "--perception", str(tiny_model_path("saliency_vlm")),
              "--evaluator", str(evaluator_dir), "--reasoner", str(tiny_model_path("qwen3_vl")), "--inpaint",
              str(tiny_model_path("sd_inpaint"))])
    with pytest.raises(SystemExit, match="served model's name"):
        main(["refine", "editrefiner", "--image", str(tmp_path / "c.png"), "--perception",
              str(tiny_model_path("saliency_vlm")), "--evaluator", str(evaluator_dir), "--reasoner-url",
              "http://127.0.0.1:9/v1", "--inpaint", str(tiny_model_path("sd_inpaint"))])
