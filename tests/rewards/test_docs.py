"""Every ```python block of docs/rewards.md runs as written (the docs stay true)."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "rewards.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_docs_have_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_block_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[index].replace("/tmp/rlkit-rewards-doc", str(tmp_path / "out"))
    exec(compile(code, f"{DOC.name}[block {index}]", "exec"), {"__name__": f"doc_block_{index}"})
    out = capsys.readouterr().out
    if "brevity.score" in code:
        assert "[1.0, 0.5]" in out
    if "log_history" in code:
        assert "rewards/format/mean" in out and "rewards/description_similarity/mean" in out
