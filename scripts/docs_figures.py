"""Rerun the runs the docs quote and rewrite their figure blocks, stamped with the date and the versions.

    python scripts/docs_figures.py            # every block
    python scripts/docs_figures.py quickstart # one block

A page holds a block between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->``; everything between the
markers is replaced, so the numbers a page quotes are always ones this script measured.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from rlkit.info import stack_versions
from rlkit.train.quickstart import QuickstartConfig, run_quickstart

ROOT = Path(__file__).resolve().parents[1]


def _stamp() -> str:
    v = stack_versions()
    return (f"Measured on {datetime.date.today().isoformat()} by `python scripts/docs_figures.py` with torch "
            f"{v['torch']}, transformers {v['transformers']}, trl {v['trl']}, peft {v['peft']} (Python "
            f"{platform.python_version()}, {torch.get_num_threads()} CPU threads).")


def quickstart_block(seeds: tuple[int, ...] = (0, 1, 2, 3)) -> str:
    """The quickstart's summary table with the default settings (seed 0), then the same run over ``seeds``."""
    results = {}
    for seed in seeds:
        with tempfile.TemporaryDirectory() as out:
            results[seed] = run_quickstart(QuickstartConfig(output_dir=out, seed=seed))
    r = results[seeds[0]]
    rows = [("expert program", 0.0, "100%"), ("identity (no edit)", r.heldout_l1_identity, "-"),
            ("after SFT", r.heldout_l1_sft, f"{r.heldout_valid_sft:.0%}"),
            ("after GRPO", r.heldout_l1_grpo, f"{r.heldout_valid_grpo:.0%}")]
    lines = [_stamp(), "", f"Seed {seeds[0]}:", "",
             "| edit | L1 to target (0-255) | vs identity | valid programs |", "|---|---|---|---|"]
    lines += [f"| {name} | {l1:.2f} | {l1 / r.heldout_l1_identity:.2f} | {valid} |" for name, l1, valid in rows]
    lines += ["", f"Held-out reward (format + improvement) after SFT {r.heldout_reward_sft:.3f}, after GRPO "
                  f"{r.heldout_reward_grpo:.3f}; the run took {r.seconds:.0f} s. "
                  f"Target met: {'yes' if r.target_met else 'NO'}.", "",
              "Every seed (held-out L1 to the expert target, 0-255):", "",
              "| seed | identity | SFT | GRPO | GRPO / identity | GRPO valid | target met |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {s} | {x.heldout_l1_identity:.2f} | {x.heldout_l1_sft:.2f} | {x.heldout_l1_grpo:.2f} | "
              f"{x.heldout_l1_grpo / x.heldout_l1_identity:.2f} | {x.heldout_valid_grpo:.0%} | "
              f"{'yes' if x.target_met else 'NO'} |" for s, x in results.items()]
    return "\n".join(lines)


BLOCKS: dict[str, tuple[Path, Callable[[], str]]] = {
    "quickstart": (ROOT / "docs" / "quickstart.md", quickstart_block),
}


def rewrite(page: Path, name: str, body: str) -> None:
    """Replace the text between the block's markers on ``page`` (which must have them)."""
    text = page.read_text(encoding="utf-8")
    pattern = re.compile(rf"(<!-- figures:{name} -->\n).*?(<!-- /figures:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{page}: no <!-- figures:{name} --> ... <!-- /figures:{name} --> block")
    page.write_text(pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"blocks to rerun, of {sorted(BLOCKS)} (default: all)")
    names = ap.parse_args().names or list(BLOCKS)
    unknown = sorted(set(names) - set(BLOCKS))
    if unknown:
        ap.error(f"unknown blocks {unknown}; choose from {sorted(BLOCKS)}")
    for name in names:
        page, make = BLOCKS[name]
        rewrite(page, name, make())
        print(f"rewrote {name} in {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
