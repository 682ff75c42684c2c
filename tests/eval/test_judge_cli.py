"""`rlkit rewards judge` says why a judge answer is unusable and shows it; --no-metrics accepts a bare score."""

import json

from rlkit.cli import main
from rlkit.data import load_photo
from rlkit.rewards.grm import GRMServer


def _images(tmp_path):
    src, ed = tmp_path / "s.png", tmp_path / "e.png"
    load_photo("astronaut", size=32).save(src)
    load_photo("coffee", size=32).save(ed)
    return str(src), str(ed)


def test_tiny_model_judge_fails_with_the_answer_and_a_hint(tmp_path, capsys):
    from rlkit.testing import tiny_model_path

    src, ed = _images(tmp_path)
    code = main(["rewards", "judge", "--model", str(tiny_model_path("qwen2_5_vl")), "--instruction", "warmer",
                 "--source", src, "--edited", ed, "--max-new-tokens", "8"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and not out["ok"] and "<metrics>" in out["reason"]
    assert isinstance(out["answer"], str) and "random-weight tiny models" in out["hint"]


def test_no_metrics_accepts_a_score_only_answer(tmp_path, capsys):
    src, ed = _images(tmp_path)
    with GRMServer(lambda messages: "Looks fine. <score>7</score>") as srv:
        args = ["rewards", "judge", "--base-url", srv.base_url, "--model", "j", "--instruction", "warmer",
                "--source", src, "--edited", ed]
        assert main(args) == 1 and "hint" in json.loads(capsys.readouterr().out)
        assert main([*args, "--no-metrics"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"] == [7.0]
