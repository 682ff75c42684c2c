"""The `rlkit` console script: every subcommand has --help, `info` reports the stack and optional parts."""

import os
import shutil
import subprocess
import sys

import pytest

from rlkit.cli import build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def _console_script() -> str:
    """The ``rlkit`` script installed beside this interpreter (not whichever one PATH finds first)."""
    here = shutil.which("rlkit", path=os.path.dirname(sys.executable))
    return here or "rlkit"


def test_console_script_runs_and_lists_subcommands():
    out = subprocess.run([_console_script(), "--help"], capture_output=True, text=True, check=True).stdout
    for name in _subcommands():
        assert name in out


@pytest.mark.parametrize("name", _subcommands())
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out.strip()) > 40


def test_info_reports_versions_devices_and_reasons():
    out = subprocess.run(
        [sys.executable, "-m", "rlkit.cli", "info"], capture_output=True, text=True, check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    import torch

    assert torch.__version__ in out
    assert "devices: cpu" in out
    for part in ("deepspeed", "vllm", "wordnet", "sentence embeddings"):
        assert part in out
    if not torch.cuda.is_available():
        assert "vLLM generation is GPU only" in out or "GPU only" in out


def test_info_capabilities_say_why_when_unusable():
    from rlkit.info import capabilities

    for cap in capabilities():
        assert cap.detail, cap.name
        if not cap.usable:
            assert any(w in cap.detail for w in ("install", "no ", "needs", "not", "failed")), cap


def test_photos_command_saves_a_photo(tmp_path):
    out = tmp_path / "astro.png"
    assert main(["photos", "--save", "astronaut", str(out), "--size", "32"]) == 0
    from PIL import Image

    assert Image.open(out).size == (32, 32)


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_top_level_help_imports_no_heavy_library():
    code = (
        "import sys, contextlib, io\n"
        "from rlkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'diffusers', 'trl') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
