"""Does the evaluator's training path learn? On a score the tiny backbone can see (the edited image's mean
brightness, x100, as all three MOS of EditFHF-style rows), the trained head's held-out SRCC beats the same agent
untrained by more than the seeds' spread. (On the injected-flaw MOS themselves the tiny random backbone does
not learn, not even with flaw disks 3-4x larger, ``build_editfhf(radius_scale=...)``: ``python
benchmarks/loops.py --learning [--radius-scale 3]`` measures it; docs/agents.md has the numbers.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlkit.data import build_editfhf, default_photos
from rlkit.metrics import srcc
from rlkit.policies import EvaluationAgent
from rlkit.testing import one_torch_thread, tiny_model_path
from rlkit.train.evaluator import EvaluatorConfig, train_evaluator

DIMS = ("perceptual_quality", "instruction_following", "visual_consistency")


@pytest.mark.slow
def test_the_trained_head_ranks_a_visible_score_better_than_untrained(tmp_path):
    with one_torch_thread():
        photos = [p for p in default_photos() if p not in ("coffee", "motorcycle")]
        bright = lambda r: {d: 100.0 * float(np.asarray(r["edited"], np.float32).mean() / 255) for d in DIMS}  # noqa: E731
        train = build_editfhf(96, 0, size=64, photos=photos).map(bright)
        test = build_editfhf(32, 1, size=64, photos=["coffee", "motorcycle"]).map(bright)
        y = np.array(test["perceptual_quality"])
        trained, untrained = [], []
        for seed in (0, 1):
            torch.manual_seed(seed)
            agent = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), image_size=64, head_dims=(32,),
                                                  head_dropout=(0.0,), backbone_training="full", plcc_memory=32)
            untrained.append(srcc(agent.score(test["source"], test["edited"], test["instruction"])[:, 0], y))
            args = EvaluatorConfig(output_dir=str(tmp_path / str(seed)), stage="scores", max_steps=90,
                                   per_device_train_batch_size=16, learning_rate=1e-3, lr_scheduler_type="constant",
                                   use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True, seed=seed)
            train_evaluator(agent, train, args, summary=False)
            trained.append(srcc(agent.score(test["source"], test["edited"], test["instruction"])[:, 0], y))
    margin, spread = min(trained) - max(untrained), max(trained) - min(trained)
    assert margin > spread and margin > 0.1, (trained, untrained)
