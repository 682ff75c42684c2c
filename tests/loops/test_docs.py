"""The examples in docs/agents.md stay true: each python block runs and prints what the doc says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def _blocks() -> list[tuple[int, str]]:
    text = DOC.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        before = text[: m.start()].rstrip().splitlines()[-1:] or [""]
        if "docs-test: skip" in before[0]:
            continue
        out.append((text[: m.start()].count("\n") + 1, m.group(1)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("line, code", _blocks(), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_doc_example_runs(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, f"{DOC.name}:{line}", "exec"), {"__name__": "__doc_example__"})  # our own docs
    printed = [ln.strip() for ln in buf.getvalue().splitlines()]
    expected = [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s+#\s*->\s*(.+)$", code, flags=re.M)]
    assert expected or "print(" not in code, f"{DOC.name}:{line}: a print without '# -> output'"
    for e in expected:
        assert e in printed, f"{DOC.name}:{line}: expected output {e!r}, got {printed}"
