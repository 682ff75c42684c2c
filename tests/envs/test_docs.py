"""The examples in docs/environments.md stay true: each python block runs and prints what the doc says."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlkit.testing.docs import python_blocks, run_block

DOC = Path(__file__).resolve().parents[2] / "docs" / "environments.md"


@pytest.mark.slow
@pytest.mark.parametrize("line, code", python_blocks(DOC), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_doc_example_runs(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    printed, expected = run_block(code, f"{DOC.name}:{line}")
    assert expected or "print(" not in code, f"{DOC.name}:{line}: a print without '# -> output'"
    for e in expected:
        assert e in printed, f"{DOC.name}:{line}: expected output {e!r}, got {printed}"
