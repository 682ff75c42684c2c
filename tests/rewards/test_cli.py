"""`rlkit rewards ...` subcommands, wired through their own argparse parser."""

import argparse
import json

import pytest
from PIL import Image

from rlkit.rewards.cli import register


def run(argv):
    parser = argparse.ArgumentParser(prog="rlkit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_help_for_every_subcommand(capsys):
    for sub in ("list", "score", "serve-grm", "judge"):
        with pytest.raises(SystemExit) as e:
            run(["rewards", sub, "--help"])
        assert e.value.code == 0
    assert "--preset" in capsys.readouterr().out


def test_list(capsys):
    assert run(["rewards", "list"]) == 0
    out = capsys.readouterr().out
    assert "FormatReward" in out and "editrefiner" in out and "retouchiq" in out


def test_score_jsonl_with_image_paths(tmp_path, capsys):
    Image.new("RGB", (16, 16), (100, 100, 100)).save(tmp_path / "src.png")
    rows = [{"completion": "Keep it. {exposure=+0}", "image": "src.png", "target_image": "src.png"},
            {"completion": "no program here", "image": "src.png", "target_image": "src.png"}]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "scores.jsonl"
    assert run(["rewards", "score", "--preset", "retouchiq", "--input", str(tmp_path / "rows.jsonl"),
                "--output", str(out)]) == 0
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["score"] for s in scores] == [2.0, 0.0]
    assert scores[0]["format"] == 1.0 and scores[1]["image_l1"] == 0.0
    assert "retouchiq_policy: mean 1.0" in capsys.readouterr().out


def test_score_reports_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"completion": "x"}\n{oops\n')
    with pytest.raises(SystemExit, match="bad.jsonl:2: invalid JSON"):
        run(["rewards", "score", "--preset", "retouchiq", "--input", str(tmp_path / "bad.jsonl")])


def test_judge_against_a_loopback_server(tmp_path, capsys):
    from rlkit.rewards import GRMServer

    def judge(messages):
        return "<metrics>\n1. brighter\n</metrics><score>6.5</score>"

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    with GRMServer(judge) as srv:
        code = run(["rewards", "judge", "--base-url", srv.base_url, "--model", "j", "--instruction", "brighter",
                    "--source", str(tmp_path / "a.png"), "--edited", str(tmp_path / "a.png")])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert res == {"ok": True, "metrics": ["brighter"], "scores": [6.5], "reason": None}


def test_score_detects_each_stored_program_form_and_keeps_reasons(tmp_path):
    """`rlkit data build retoucheval` stores canonical JSON programs: they score like the RetouchIQ and Jarvis
    forms of the same edit, and a sample that fails says why."""
    from rlkit.ops import EditProgram, render_program

    Image.new("RGB", (16, 16), (100, 100, 100)).save(tmp_path / "src.png")
    program = EditProgram.from_dict({"exposure": 0.0})
    forms = [json.dumps(program.to_dict()), render_program(program, "retouchiq"), render_program(program, "jarvis")]
    rows = [{"completion": c, "image": "src.png", "target_image": "src.png"} for c in forms]
    rows.append({"completion": "{exposure=+99}", "image": "src.png", "target_image": "src.png"})
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "scores.jsonl"
    assert run(["rewards", "score", "--preset", "retouchiq", "--input", str(tmp_path / "rows.jsonl"),
                "--output", str(out)]) == 0
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["score"] for s in scores] == [2.0, 2.0, 2.0, 0.0]
    assert "format: program did not parse" in scores[3]["reason"] and "outside the allowed range" in scores[3]["reason"]
