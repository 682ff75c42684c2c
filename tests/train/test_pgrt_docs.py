"""The ```python blocks of docs/pgrt.md run as written, in order, in one namespace (the docs stay true)."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "pgrt.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


@pytest.mark.slow
def test_doc_blocks_run(tmp_path, monkeypatch, capsys):
    assert len(BLOCKS) == 2
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "pgrt_doc"}
    for i, block in enumerate(BLOCKS):
        code = block.replace("/tmp/rlkit-pgrt-doc", str(tmp_path / "out"))
        exec(compile(code, f"{DOC.name}[block {i}]", "exec"), ns)
    out = capsys.readouterr().out
    assert "'kept':" in out and "[1.0, 0.0]" in out and "two scores for one image" in out
    assert "'accuracy':" in out
