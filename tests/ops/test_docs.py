"""The Python examples in docs/engine.md run as written."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S) if DOC.exists() else []


@pytest.mark.skipif(not BLOCKS, reason="docs/engine.md not found")
@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_doc_example_runs(i, tmp_path, monkeypatch):
    if "load_photo" in BLOCKS[i]:
        pytest.importorskip("skimage")
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[i], f"{DOC}:block{i}", "exec"), {"__name__": "__doc_example__"})  # trusted repo docs
