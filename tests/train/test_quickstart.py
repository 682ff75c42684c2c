"""`rlkit quickstart` end to end: files written, and GRPO really improves on SFT on held-out photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    from rlkit.train.quickstart import QuickstartConfig, run_quickstart

    out = tmp_path_factory.mktemp("qs")
    cfg = QuickstartConfig(output_dir=str(out))
    return out, run_quickstart(cfg)


def test_writes_pngs_metrics_and_policy(quickstart):
    out, result = quickstart
    curve = Image.open(out / "reward_curve.png")
    grid = Image.open(out / "before_after.png")
    assert curve.size[0] > 300 and grid.size[0] > 300
    assert np.asarray(grid.convert("L")).std() > 10        # real pictures, not a blank canvas
    m = json.loads((out / "metrics.json").read_text())
    assert m["heldout_l1"]["grpo"] == pytest.approx(result.heldout_l1_grpo)
    assert m["heldout_l1"]["identity"] == pytest.approx(result.heldout_l1_identity)
    assert len(m["train_reward_curve"]["reward"]) == result.config["grpo_steps"]
    from rlkit.train import load_policy, load_processing_class

    assert load_processing_class(out / "grpo").image_processor is not None
    assert load_policy(out / "grpo").config.model_type == "qwen2_5_vl"


def test_grpo_edits_closer_to_the_expert_than_identity_and_sft(quickstart):
    """Learning is real retouching: on photos never trained on, GRPO's edits are closer to the expert target
    than the unedited photo (a null edit) and than the SFT policy's, with valid programs."""
    _, r = quickstart
    assert r.heldout_valid_grpo >= 0.8
    assert r.heldout_l1_grpo <= 0.8 * r.heldout_l1_identity
    assert r.heldout_l1_grpo < r.heldout_l1_sft


def test_cli_registers_quickstart_with_help():
    import argparse

    from rlkit.train.cli import register

    parser = argparse.ArgumentParser(prog="rlkit")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["quickstart", "--output-dir", "x", "--grpo-steps", "5", "--lora"])
    assert (args.output_dir, args.grpo_steps, args.lora, args.sft_steps) == ("x", 5, True, None)
    assert callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["quickstart", "--grpo-steps", "0"])
