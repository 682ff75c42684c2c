"""`rlkit quickstart` end to end: files written, and GRPO really retouches (closer to the expert than both the
unedited photo and the SFT policy) on held-out photos, over two seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from rlkit.train.quickstart import QuickstartConfig, run_quickstart

    out = {}
    for seed in SEEDS:
        folder = tmp_path_factory.mktemp(f"qs{seed}")
        out[seed] = folder, run_quickstart(QuickstartConfig(output_dir=str(folder), seed=seed))
    return out


def test_writes_pngs_metrics_and_policy(runs):
    out, result = runs[0]
    curve = Image.open(out / "reward_curve.png")
    grid = Image.open(out / "before_after.png")
    assert curve.size[0] > 300 and grid.size[0] > 600 and grid.size[1] > 900  # big enough to see the change
    assert np.asarray(grid.convert("L")).std() > 10        # real pictures, not a blank canvas
    m = json.loads((out / "metrics.json").read_text())
    assert m["heldout_l1"] == pytest.approx({"expert": 0.0, "identity": result.heldout_l1_identity,
                                             "sft": result.heldout_l1_sft, "grpo": result.heldout_l1_grpo})
    assert m["target_met"] == result.target_met
    assert len(m["train_reward_curve"]["reward"]) == result.config["grpo_steps"]
    assert all("grpo" in s and "expert" in s for s in m["heldout_samples"])
    from rlkit.policies import load_policy, load_processing_class

    assert load_processing_class(out / "grpo").image_processor is not None
    assert load_policy(out / "grpo").config.model_type == "qwen2_5_vl"


def test_grpo_retouches_closer_to_the_expert_than_identity_and_sft(runs):
    """Learning is real retouching, not format or null edits, on photos never trained on.

    Measured (2026-12-04, seeds 0-3, transformers 5.25, GRPO 80 steps at 5e-4): GRPO / identity 0.27-0.36,
    SFT - GRPO 2.4-4.2 L1 (0-255), relative gain 0.32-0.44, every program valid (at 1e-3 for 60 steps seed 2
    drifted to 69% valid and identity-level L1). The bounds below leave room for that spread: a policy that learnt only
    the format (null edits) sits at GRPO / identity = 1.0 and fails; one that stops improving on SFT fails
    the second bound.
    """
    for seed, (_, r) in runs.items():
        assert r.heldout_valid_grpo >= 0.8, f"seed {seed}: {r.heldout_valid_grpo:.0%} valid programs"
        assert r.heldout_l1_grpo <= 0.6 * r.heldout_l1_identity, f"seed {seed}: GRPO barely edits"
        assert r.heldout_l1_sft - r.heldout_l1_grpo >= 1.0, f"seed {seed}: GRPO no better than SFT"
        assert r.heldout_reward_grpo > r.heldout_reward_sft, f"seed {seed}: the held-out reward did not rise"
    mean_gain = np.mean([(r.heldout_l1_sft - r.heldout_l1_grpo) / r.heldout_l1_sft for _, r in runs.values()])
    assert mean_gain >= 0.2


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
