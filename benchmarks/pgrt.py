"""Share of a tiny PGRT alternation's wall time spent outside trl's training loops and generation.

    python benchmarks/pgrt.py [--scale 1] [--output-dir /tmp/pgrt-bench] [--fig5]

Runs ``recipes/pgrt/config_tiny.yaml`` in this process (its step counts times ``--scale``) and reads each
stage's timings from the run manifest: ``train_s`` is the time inside ``trainer.train`` (trl's loops,
including the GRM's judging inside the policy's reward), ``generate_s`` the time in sampling and evaluation
generation; everything else (stage switching, data and pair building, rendering, trainer construction and
model loads, saving) is overhead. The baseline is the work itself: the report prints wall / (train +
generate) and the overhead share (target <= 10%). It also counts ``from_pretrained`` calls per stage and
model folder (each model should be loaded from disk at most once per stage).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections import Counter
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every stage's step count")
    ap.add_argument("--output-dir", default="/tmp/rlkit-pgrt-bench")
    ap.add_argument("--fig5", action="store_true", help="include the Fig. 5 stages")
    opts = ap.parse_args()

    from transformers import PreTrainedModel
    from trl import GRPOConfig, TrlParser

    from rlkit.testing import resolve_model_name
    from rlkit.train.config import RecipeModelConfig
    from rlkit.train.pgrt import PGRTArguments
    from rlkit.train.pgrt_run import PGRTRun

    root = Path(__file__).resolve().parents[1]
    out = Path(opts.output_dir)
    if out.exists():
        shutil.rmtree(out)

    parser = TrlParser((PGRTArguments, GRPOConfig, RecipeModelConfig))
    base = ["--config", str(root / "recipes/pgrt/config_tiny.yaml"), "--output_dir", str(out)]
    s0, g0, _ = parser.parse_args_and_config(args=base)

    def steps(n: int) -> str:
        return str(max(1, round(n * opts.scale)))

    argv = [*base, "--grm_sft_max_steps", steps(s0.grm_sft_max_steps), "--policy_sft_max_steps",
            steps(s0.policy_sft_max_steps), "--max_steps", steps(g0.max_steps), "--grm_pgrt_max_steps",
            steps(s0.grm_pgrt_max_steps), "--save_steps", "1000", "--fig5", str(opts.fig5).lower()]
    script_args, grpo_args, model_args = parser.parse_args_and_config(args=argv)
    model_args.model_name_or_path = resolve_model_name(model_args.model_name_or_path)
    run = PGRTRun(script_args, grpo_args, model_args)

    loads: Counter = Counter()
    original = PreTrainedModel.from_pretrained.__func__
    depth = [0]

    def counted(cls, path, *args, **kwargs):  # count outermost loads only (Auto classes call through)
        if depth[0] == 0:
            loads[(run.current or "-", run.rel(str(path)))] += 1
        depth[0] += 1
        try:
            return original(cls, path, *args, **kwargs)
        finally:
            depth[0] -= 1

    PreTrainedModel.from_pretrained = classmethod(counted)
    t0 = time.perf_counter()
    try:
        manifest = run.run()
    finally:
        PreTrainedModel.from_pretrained = classmethod(original)
    total = time.perf_counter() - t0

    print(f"\n{'stage':24s} {'wall s':>8s} {'train s':>8s} {'gen s':>8s} {'other s':>8s}  loads (folder x n)")
    sums = Counter()
    for st in manifest["stages"]:
        r = st["run"]
        other = r["wall_s"] - r["train_s"] - r["generate_s"]
        sums.update(wall=r["wall_s"], train=r["train_s"], gen=r["generate_s"])
        ld = ", ".join(f"{f} x{n}" for (s, f), n in sorted(loads.items()) if s == st["name"])
        print(f"{st['name']:24s} {r['wall_s']:8.2f} {r['train_s']:8.2f} {r['generate_s']:8.2f} {other:8.2f}  {ld}")
    work = sums["train"] + sums["gen"]
    outside = total - work
    print(f"\nlaunch wall {total:.1f}s (stages {sums['wall']:.1f}s): inside trl training {sums['train']:.1f}s, "
          f"generation {sums['gen']:.1f}s")
    print(f"wall / (train + generate) = {total / work:.3f}; outside share = {outside / total:.1%} (target <= 10%)")
    worst = max(loads.values()) if loads else 0
    print(f"max loads of one model folder in one stage: {worst} (target 1)")
    try:
        print(f"machine load (1/5/15 min): {os.getloadavg()}")
    except OSError:
        pass


if __name__ == "__main__":
    main()
