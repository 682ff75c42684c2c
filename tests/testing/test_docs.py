"""The python examples in docs/testing.md run, in order, and print what their `# -> output` says."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlkit.testing.docs import python_blocks, run_block

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


@pytest.mark.slow
def test_doc_examples_run_and_print_what_they_claim(tmp_path, monkeypatch):
    blocks = python_blocks(DOC)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}  # later blocks continue earlier ones, as a reader would
    for line, code in blocks:
        printed, expected = run_block(code, f"{DOC.name}:{line}", namespace)
        assert len(expected) == code.count("print("), f"{DOC.name}:{line}: a print without '# -> output'"
        assert printed == expected, f"{DOC.name}:{line}: expected {expected}, printed {printed}"


def test_doc_runner_skips_marked_blocks_and_reads_the_claimed_output(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text("# t\n\n```python\nprint(1 + 1)  # -> 2\n```\n\ndocs-test: skip\n```python\nraise SystemExit\n```\n"
                   "\n```python\nprint('a')\n```\n", encoding="utf-8")
    blocks = python_blocks(doc)
    assert [line for line, _ in blocks] == [3, 12]
    assert run_block(blocks[0][1], "page.md:3") == (["2"], ["2"])
    assert run_block(blocks[1][1], "page.md:12") == (["a"], [])
