"""`rlkit make-tiny DIR --kind K` through the registered argparse subcommand."""

from __future__ import annotations

import argparse
import json

import pytest

from rlkit.testing import cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlkit")
    cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_make_tiny_writes_a_loadable_model(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    args = _parser().parse_args(["make-tiny", str(tmp_path / "lm"), "--kind", "text", "--seed", "3"])
    assert args.func(args) == 0
    assert "wrote tiny text" in capsys.readouterr().out
    AutoModelForCausalLM.from_pretrained(tmp_path / "lm")
    AutoTokenizer.from_pretrained(tmp_path / "lm")
    assert json.loads((tmp_path / "lm" / "rlkit_tiny.json").read_text())["seed"] == 3


def test_make_tiny_refuses_non_empty_dir_and_unknown_kind(tmp_path, capsys):
    (tmp_path / "f.txt").write_text("keep me")
    args = _parser().parse_args(["make-tiny", str(tmp_path), "--kind", "text"])
    assert args.func(args) == 1
    assert "not an empty directory" in capsys.readouterr().err
    assert (tmp_path / "f.txt").read_text() == "keep me"
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["make-tiny", str(tmp_path / "x"), "--kind", "llama"])
    assert exc.value.code == 2
    assert "invalid choice: 'llama'" in capsys.readouterr().err


def test_help_lists_every_kind(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["make-tiny", "--help"])
    out = capsys.readouterr().out
    for kind in ("qwen2_5_vl", "qwen2_vl", "qwen3_vl", "text", "sd_inpaint", "flux_fill"):
        assert kind in out
