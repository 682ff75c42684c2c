"""`rlkit env try` / `rlkit env check` through the module's register() (as the lead wires it)."""

from __future__ import annotations

import argparse
import json

from PIL import Image

from rlkit.envs import cli


def _run(argv):
    parser = argparse.ArgumentParser(prog="rlkit")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_env_try_valid_and_malformed(tmp_path, capsys):
    out = tmp_path / "ba.png"
    assert _run(["env", "try", "exposure=+0.5; contrast=20", "--size", "32", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    report = json.loads(text[: text.rindex("}") + 1])
    assert report["valid"] and report["program"] == {"exposure": 0.5, "contrast": 20.0}
    with Image.open(out) as im:
        assert im.size == (32 * 2 + 4, 32)
    assert _run(["env", "try", "exposure=lots", "--size", "32"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["valid"] and report["parse_problems"]
    assert _run(["env", "try", "exposure=+1", "--photo", "nope"]) == 2
    assert "bundled photo" in capsys.readouterr().out


def test_env_check(capsys):
    assert _run(["env", "check", "--size", "32"]) == 0
    assert capsys.readouterr().out.count("ok ") == 3
