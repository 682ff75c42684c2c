"""Run the python examples of a markdown page as a reader would, and read what each one says it prints.

Used by the docs tests (``tests/*/test_docs.py``): a block preceded by a ``docs-test: skip`` line is left out,
and a ``print(...)  # -> text`` line says that ``text`` is printed.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

__all__ = ["python_blocks", "run_block"]

_EXPECTED = re.compile(r"^print\(.*\)\s+#\s*->\s*(.+)$", re.M)


def python_blocks(doc: str | Path) -> list[tuple[int, str]]:
    """(line number, code) of every python block of ``doc``."""
    text = Path(doc).read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        before = text[: m.start()].rstrip().splitlines()[-1:] or [""]
        if "docs-test: skip" in before[0]:
            continue
        out.append((text[: m.start()].count("\n") + 1, m.group(1)))
    return out


def run_block(code: str, where: str, namespace: dict | None = None) -> tuple[list[str], list[str]]:
    """Execute one block (our own docs, never model output) and return (lines it printed, lines its
    ``# -> text`` comments say it prints), both stripped."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, where, "exec"), namespace if namespace is not None else {"__name__": "__doc_example__"})
    printed = [ln.strip() for ln in buf.getvalue().splitlines()]
    return printed, [m.group(1).strip() for m in _EXPECTED.finditer(code)]
