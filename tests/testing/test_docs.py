"""The python examples in docs/testing.md run, in order, and print what their `# -> output` says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


@pytest.mark.slow
def test_doc_examples_run_and_print_what_they_claim(tmp_path, monkeypatch):
    text = DOC.read_text(encoding="utf-8")
    blocks = [
        (text[: m.start()].count("\n") + 1, m.group(1))
        for m in re.finditer(r"```python\n(.*?)```", text, re.S)
    ]
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}  # later blocks continue earlier ones, as a reader would
    for line, code in blocks:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"{DOC.name}:{line}", "exec"), namespace)  # our own docs, not model output
        printed = [ln.strip() for ln in buf.getvalue().splitlines()]
        expected = [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s+#\s*->\s*(.+)$", code, re.M)]
        assert len(expected) == code.count("print("), f"{DOC.name}:{line}: a print without '# -> output'"
        assert printed == expected, f"{DOC.name}:{line}: expected {expected}, printed {printed}"
