"""Build time of each tiny model (cold, into a fresh cache) and the warm-cache lookup time.

Run: ``python benchmarks/tiny_models.py``. Targets: all kinds built from scratch together < 15 s
on 2 CPU cores; ``tiny_model_path`` for every kind on a warm cache < 1 s. The baseline measured in
the same run is loading each built model back with its ordinary ``from_pretrained`` call: the ratio
build/load says how much a cold cache costs over a warm one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _load(kind: str, path: Path) -> None:
    if kind in ("sd_inpaint", "flux_fill"):
        from diffusers import DiffusionPipeline

        DiffusionPipeline.from_pretrained(path)
    elif kind.startswith("saliency_"):
        from rlkit.policies import load_saliency_net

        load_saliency_net(path)
    elif kind == "text":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        AutoModelForCausalLM.from_pretrained(path)
        AutoTokenizer.from_pretrained(path)
    else:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        AutoModelForImageTextToText.from_pretrained(path)
        AutoProcessor.from_pretrained(path)


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    start = time.perf_counter()
    import diffusers  # noqa: F401  (import cost reported separately: paid once per process)
    import torch

    import rlkit.testing as rt

    torch.set_num_threads(int(os.environ.get("RLKIT_BENCH_THREADS", min(2, torch.get_num_threads()))))
    from diffusers.utils import logging as df_logging
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    df_logging.disable_progress_bar()
    imports = time.perf_counter() - start
    table = Table(title=f"tiny models (torch threads={torch.get_num_threads()})")
    for col in ("kind", "build s", "load s", "build/load", "size MB"):
        table.add_column(col, justify="right" if col != "kind" else "left")
    total_build = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for kind in rt.TINY_KINDS:
            t0 = time.perf_counter()
            path = rt.tiny_model_path(kind, tmp)
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            _load(kind, path)
            load = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
            total_build += build
            paths[kind] = path
            table.add_row(kind, f"{build:.2f}", f"{load:.2f}", f"{build / load:.1f}x", f"{size:.1f}")
        t0 = time.perf_counter()
        for kind in rt.TINY_KINDS:
            assert rt.tiny_model_path(kind, tmp) == paths[kind]
        warm = time.perf_counter() - t0
    console = Console()
    console.print(table)
    console.print(f"imports (torch, transformers, diffusers; once per process): {imports:.2f} s")
    console.print(
        f"all kinds built from scratch: {total_build:.2f} s (target < 15 s: "
        f"{'OK' if total_build < 15 else 'MISSED'}; {total_build / 15:.2f}x of target)"
    )
    console.print(
        f"warm cache, all kinds: {warm * 1e3:.2f} ms (target < 1 s: {'OK' if warm < 1 else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
