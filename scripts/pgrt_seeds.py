"""Run the PGRT alternation with Fig. 5 for several seeds and report each measure as mean +- std.

    python scripts/pgrt_seeds.py --config recipes/pgrt/config_tiny.yaml --seeds 0 1 2 --jobs 3 \\
        --output-dir outputs/pgrt-seeds [-- extra recipe flags, e.g. --grm_sft_max_steps 200]

Each seed is one ``recipes/pgrt.py --fig5 true --seed S --synthetic_seed S`` run (in parallel, ``--jobs`` at
a time, one thread each; relaunching resumes unfinished runs). The report (``seeds.md``, ``seeds.json``)
lists per GRM variant its pair accuracy on held-out perturbed and policy pairs and the L1 of the policy
trained with it, plus the shortcut baselines: a judge that always prefers one position (0.5) and the
unedited photo (L1 of source vs expert), and what each stage did to its own objective.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(seed: int, out: Path, config: str, extra: list[str]) -> tuple[int, int, str]:
    cmd = [sys.executable, str(ROOT / "recipes/pgrt.py"), "--config", config, "--fig5", "true", "--seed", str(seed),
           "--synthetic_seed", str(seed), "--output_dir", str(out / f"seed{seed}"), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT),
           "PYTHONWARNINGS": "ignore"}
    log = out / f"seed{seed}.log"
    with open(log, "w") as fh:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    return seed, code, str(log)


def _ms(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} +- {statistics.stdev(vals):.3f}"


def _stat(values: list[float | None]) -> dict:
    vals = [v for v in values if v is not None]
    return {"values": vals, "mean": statistics.mean(vals) if vals else None,
            "std": statistics.stdev(vals) if len(vals) > 1 else None}


def report(out: Path, seeds: list[int]) -> str:
    """Aggregate finished seed runs into seeds.md / seeds.json; returns the markdown."""
    runs = {}
    for s in seeds:
        f = out / f"seed{s}" / "fig5" / "fig5.json"
        m = out / f"seed{s}" / "manifest.json"
        if f.is_file() and m.is_file():
            runs[s] = (json.loads(f.read_text()), json.loads(m.read_text()))
    if not runs:
        raise SystemExit(f"no finished run under {out}")
    variants = [r["grm"] for r in next(iter(runs.values()))[0]["rows"]]
    data: dict = {"seeds": sorted(runs), "variants": {}, "stages": {}}
    lines = [f"Seeds {sorted(runs)} (mean +- sample std over seeds).", "",
             "| GRM | acc. perturbed, pair prompt | acc. perturbed, pointwise | acc. policy, pair prompt | "
             "acc. policy, pointwise | parsed (pert., pair) | policy L1 x100 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]

    def get(r: dict, key: str, mode: str, what: str = "accuracy") -> float | None:
        return ((r.get(key) or {}).get(mode) or {}).get(what)

    for v in variants:
        rows = [next(r for r in fig["rows"] if r["grm"] == v) for fig, _ in runs.values()]
        cols = {f"{k}_{m}": [get(r, f"acc_{k}", m) for r in rows] for k in ("perturbed", "policy")
                for m in ("pair", "pointwise")}
        parsed = [get(r, "acc_perturbed", "pair", "parsed") for r in rows]
        l1 = [None if (r.get("policy") or {}).get("l1") is None else 100 * r["policy"]["l1"] for r in rows]
        data["variants"][v] = {**{k: _stat(c) for k, c in cols.items()}, "parsed": _stat(parsed),
                               "policy_l1_x100": _stat(l1)}
        lines.append(f"| {v} | {_ms(cols['perturbed_pair'])} | {_ms(cols['perturbed_pointwise'])} | "
                     f"{_ms(cols['policy_pair'])} | {_ms(cols['policy_pointwise'])} | {_ms(parsed)} | {_ms(l1)} |")
    ident = [100 * fig["references"]["identity_l1"] for fig, _ in runs.values()]
    sft = [100 * fig["references"]["policy_sft"]["l1"] for fig, _ in runs.values()
           if (fig["references"].get("policy_sft") or {}).get("l1") is not None]
    lines += ["", f"Baselines: a judge preferring one position = 0.500 by construction; unedited photo L1 x100 = "
              f"{_ms(ident)}; SFT policy (no RL) L1 x100 = {_ms(sft)}.", "",
              "Each stage's own objective (first -> last quarter of its logged values, mean over seeds):", "",
              "| stage | measure | first | last |", "| --- | --- | --- | --- |"]
    for st in next(iter(runs.values()))[1]["stages"]:
        for key in ("loss", "reward", "ranking", "format"):
            firsts = [(next(x for x in m["stages"] if x["name"] == st["name"])["metrics"].get(key) or {}).get("first")
                      for _, m in runs.values()]
            lasts = [(next(x for x in m["stages"] if x["name"] == st["name"])["metrics"].get(key) or {}).get("last")
                     for _, m in runs.values()]
            if any(v is not None for v in firsts) and not (key == "loss" and st["name"].startswith(("policy_grpo",
                                                                                                       "grm_pgrt",
                                                                                                       "fig5"))):
                data["stages"].setdefault(st["name"], {})[key] = {"first": _stat(firsts), "last": _stat(lasts)}
                lines.append(f"| {st['name']} | {key} | {_ms(firsts)} | {_ms(lasts)} |")
    md = "\n".join(lines) + "\n"
    (out / "seeds.md").write_text(md)
    (out / "seeds.json").write_text(json.dumps(data, indent=1))
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "recipes/pgrt/config_tiny.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--output-dir", default="outputs/pgrt-seeds")
    ap.add_argument("--report-only", action="store_true")
    opts, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    out = Path(opts.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not opts.report_only:
        with ThreadPoolExecutor(max_workers=opts.jobs) as pool:
            for seed, code, log in pool.map(lambda s: _run(s, out, opts.config, extra), opts.seeds):
                print(f"seed {seed}: exit {code} ({log})", flush=True)
    print(report(out, opts.seeds))


if __name__ == "__main__":
    main()
