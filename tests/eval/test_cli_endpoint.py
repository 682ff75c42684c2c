"""`rlkit eval` from the command line; a policy behind an OpenAI-compatible endpoint (deadline); the
`evaluate` metric modules give rlkit's numbers."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from rlkit.cli import main
from rlkit.eval import OpenAIPolicy
from rlkit.rewards.grm import GRMServer, transformers_answer_fn


def test_cli_retoucheval_and_compare(retoucheval_dir, tmp_path, capsys):
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    assert main(["eval", "retoucheval", "--data", str(retoucheval_dir), "--out", str(out_a), "--baselines",
                 "identity,random,expert", "--limit", "2"]) == 0
    assert main(["eval", "retoucheval", "--data", str(retoucheval_dir), "--out", str(out_b), "--baselines",
                 "identity,expert", "--policy", "tiny=tiny:qwen2_5_vl", "--max-new-tokens", "8", "--limit", "2"]) == 0
    recs = json.loads((out_b / "results.json").read_text())["records"]
    assert {r["system"] for r in recs} == {"identity", "expert", "tiny"} and len(recs) == 3 * 6
    capsys.readouterr()
    assert main(["eval", "compare", str(out_a), str(out_b), "--resamples", "500"]) == 0
    assert "identity" in capsys.readouterr().out


def test_cli_fivek_synthetic_reports_lpips_unavailable(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no trunk checkpoint here
    assert main(["eval", "fivek", "--synthetic", "3", "--out", str(tmp_path / "o")]) == 0
    report = (tmp_path / "o" / "report.md").read_text()
    assert "LPIPS unavailable" in report and "PSNR ↑" in report and "| expert |" in report


def test_python_dash_m_rlkit_eval_help():
    out = subprocess.run([sys.executable, "-m", "rlkit.eval", "--help"], capture_output=True, text=True, check=True)
    assert "retoucheval" in out.stdout and "compare" in out.stdout


def test_openai_endpoint_policy_and_deadline(retouch_samples):
    from rlkit.testing import tiny_model_path

    tasks = [s.task() for s in retouch_samples[:2]]
    with GRMServer(transformers_answer_fn(str(tiny_model_path("qwen2_5_vl")), max_new_tokens=6), port=0) as srv:
        pol = OpenAIPolicy(srv.base_url, "tiny", deadline=60)
        texts = pol.generate(tasks)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts) and not pol.errors

    def slow(messages):
        time.sleep(5)
        return "{}"

    with GRMServer(slow, port=0) as srv:
        pol = OpenAIPolicy(srv.base_url, "slow", deadline=1.0)
        t0 = time.monotonic()
        assert pol.generate(tasks[:1]) == [""]
        assert time.monotonic() - t0 < 3.0 and "deadline" in pol.errors[tasks[0].id]


def test_evaluate_modules_match_rlkit():
    import evaluate
    import torch

    from rlkit.eval.evaluate_metrics import metric_path
    from rlkit.metrics import l1, plcc, saliency_scores, srcc, ssim

    rng = np.random.default_rng(0)
    x, y = rng.random(20), rng.random(20)
    m = evaluate.load(metric_path("rlkit_correlation"))
    got = m.compute(predictions=x.tolist(), references=y.tolist())
    assert got["srcc"] == pytest.approx(srcc(x, y)) and got["plcc"] == pytest.approx(plcc(x, y))
    p, g = rng.random((2, 24, 24)).astype(np.float32), rng.random((2, 24, 24)).astype(np.float32) ** 4
    sal = evaluate.load(metric_path("rlkit_saliency")).compute(predictions=p.tolist(), references=g.tolist())
    ref = saliency_scores(p, g)
    assert all(sal[k] == pytest.approx(ref[k], rel=1e-6) for k in ref)
    a, b = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8), rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    img = evaluate.load(metric_path("rlkit_image")).compute(predictions=a.tolist(), references=b.tolist())
    ta, tb = torch.from_numpy(a).permute(0, 3, 1, 2) / 255.0, torch.from_numpy(b).permute(0, 3, 1, 2) / 255.0
    assert img["l1"] == pytest.approx(float(l1(ta, tb).mean()) * 255, rel=1e-5)
    assert img["ssim"] == pytest.approx(float(ssim(ta, tb).mean()), rel=1e-5)
    txt = evaluate.load(metric_path("rlkit_text")).compute(predictions=["a warped hand"], references=["a warped hand"])
    assert txt["rouge_l"] == pytest.approx(1.0)
