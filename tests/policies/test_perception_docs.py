"""The python examples in docs/perception.md run, in order, and print what their `# -> output` says."""

from __future__ import annotations

import builtins
import io
import re
from pathlib import Path

from rlkit.testing import one_torch_thread

DOC = Path(__file__).resolve().parents[2] / "docs" / "perception.md"


def test_doc_examples_run_and_print_what_they_claim(tmp_path, monkeypatch):
    text = DOC.read_text(encoding="utf-8")
    blocks = [(text[: m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}  # later blocks continue earlier ones, as a reader would
    with one_torch_thread():  # tiny models: no thread contention on a loaded machine
        for line, code in blocks:
            buf = io.StringIO()  # the examples' own prints only (trainer logs go to stdout as usual)
            namespace["print"] = lambda *a, _buf=buf, **k: builtins.print(*a, **{**k, "file": _buf})
            exec(compile(code, f"{DOC.name}:{line}", "exec"), namespace)  # our own docs, not model output
            printed = [ln.strip() for ln in buf.getvalue().splitlines() if ln.strip()]
            expected = [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s+#\s*->\s*(.+)$", code, re.M)]
            assert len(expected) == code.count("print("), f"{DOC.name}:{line}: a print without '# -> output'"
            assert printed == expected, f"{DOC.name}:{line}: expected {expected}, printed {printed}"
