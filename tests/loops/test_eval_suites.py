"""The eval harness's evaluator suite (EditRefiner Table 4) and loop suite (Table 5) run on the tiny trained
evaluation agent and the EditRefiner loop, as ``rlkit eval`` will after the merge."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlkit.data import EditFHFRecord, build_editfhf, dataset_to_records
from rlkit.eval import FullReferenceEvaluator, LoopSample, run_evaluator, run_loop
from rlkit.eval.evaluator import samples_from_editfhf
from rlkit.loops import EditRefiner
from rlkit.policies import ActionAgent, EvaluationAgent, ToolSpec
from rlkit.testing import one_torch_thread, tiny_model_path
from rlkit.train.evaluator import EvaluatorConfig, train_evaluator


@pytest.fixture(scope="module")
def data():
    with one_torch_thread():
        return build_editfhf(12, 21, size=64)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    with one_torch_thread():
        torch.manual_seed(0)
        agent = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), image_size=64, head_dims=(16,),
                                              head_dropout=(0.0,), backbone_training="full", plcc_memory=16)
        args = EvaluatorConfig(output_dir=str(tmp_path_factory.mktemp("ev")), stage="scores", max_steps=4,
                               per_device_train_batch_size=6, learning_rate=1e-3, use_cpu=True, report_to=[],
                               save_strategy="no", disable_tqdm=True)
        train_evaluator(agent, data, args, summary=False)
    agent.name = "evaluation agent (tiny, trained)"
    return agent.eval()


def test_evaluator_suite_reads_the_agent(data, trained, tmp_path):
    samples = samples_from_editfhf(dataset_to_records(data, EditFHFRecord))
    torch.manual_seed(1)
    untrained = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), image_size=64, head_dims=(16,),
                                              head_dropout=(0.0,), lora_r=2).eval()
    untrained.name = "untrained head"
    summary = run_evaluator(samples, [trained, untrained, FullReferenceEvaluator("ssim"), FullReferenceEvaluator("psnr")],
                            tmp_path / "ev", batch_size=4, progress=False)
    assert set(summary) == {trained.name, "untrained head", "SSIM", "PSNR"}
    assert set(summary[trained.name]) == {"pq", "if", "vc", "overall"}
    report = (tmp_path / "ev" / "report.md").read_text()
    assert trained.name in report and "SRCC" in report
    # the suite's numbers are the agent's: its scores of the same samples, correlated the same way
    from rlkit.metrics import srcc

    pred = trained.score([s.source for s in samples], [s.edited for s in samples], [s.instruction for s in samples])
    mos = np.array([s.mos for s in samples])
    got = summary[trained.name]["pq"]["srcc"]
    assert got == pytest.approx(srcc(pred[:, 0], mos[:, 0]), abs=1e-6) if got is not None else np.ptp(pred[:, 0]) == 0


def test_loop_suite_reads_the_trace(data, trained, tmp_path):
    class Reasoner:
        def generate(self, requests):
            return ['[{"flaw_type": "missing_edit", "description": "not applied here"}]'] * len(requests)

    def brighten(image, mask, prompt, *, seed=None):
        out = image.clone()
        out[:, torch.as_tensor(np.asarray(mask, bool))] *= 0.9
        return out

    from rlkit.policies import load_saliency_net

    loop = EditRefiner(perception=load_saliency_net(tiny_model_path("saliency_vlm")), reasoner=Reasoner(),
                       action=ActionAgent([ToolSpec("dim", "inpaint")]), tools={"dim": brighten}, evaluator=trained,
                       tau=0.3, min_area=1, run_all_turns=True)
    samples = [LoopSample(r["id"], r["edited"], r["source"], r["instruction"]) for r in (data[i] for i in range(4))]
    records = run_loop(samples, [loop], tmp_path / "loop", max_turns=4, batch_size=2, progress=False)
    report = (tmp_path / "loop" / "report.md").read_text()
    for row in ("Turn 0", "Turn 4", "Auto Stop", "mean stop turn"):
        assert row in report
    for rec, s in zip(sorted(records, key=lambda r: r["id"]), sorted(samples, key=lambda s: s.id)):
        trace = loop.run(s.image, source=s.source, instruction=s.instruction)
        o = trace.overalls
        assert rec["turn0"] == pytest.approx(o[0], abs=1e-4) and rec["stop_turn"] == trace.stop_turn
        assert rec["auto_stop"] == pytest.approx(o[trace.stop_turn], abs=1e-4) and rec["auto_stop"] >= rec["turn0"]
    # the paper's protocol: the evaluation agent re-scores every turn's image itself
    scored = run_loop(samples, [loop], tmp_path / "loop2", max_turns=4, scorer=trained, progress=False)
    assert all(r["auto_stop"] >= r["turn0"] - 1.0 for r in scored)  # PNG rounding of the images: within a point
    assert json.loads((tmp_path / "loop" / "results.json").read_text())
