"""Throughput of the paper reward presets (GRM excluded) on 1024 completions, CPU.

Run: ``python benchmarks/rewards.py [--n 1024] [--group 8] [--size 128] [--threads 2]``

Prints samples/s for each preset:
* cold: a fresh reward object and no sentence-embedding model loaded in the process (includes loading);
* warm model: model loaded, new texts (a typical GRPO step);
* warm cache: the same batch again (embeddings of repeated texts are cached).
Baselines measured in the same run: a naive per-completion reward function (one embedding call per
completion, the way a hand-written trl reward would do it) for EditRefiner, and the 500 samples/s target
(a 7B GRPO step of 512 completions takes ~120 s on 8xH100; rewards should stay under 1% of it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import torch

WORDS = ("face hand finger sky tree text sign shadow edge colour texture blur noise eye arm leg wall window "
         "car road water cloud hair skin light dark smeared warped duplicated missing extra bent melted "
         "inconsistent unnatural blotchy jagged").split()
TYPES = ["limb deformation", "face distortion", "text error", "object duplication", "colour shift",
         "texture artifact", "blur", "lighting mismatch"]


def sentence(rng: random.Random, k: int = 10) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + "."


def diagnosis_batch(n: int, group: int, seed: int, regions: bool):
    from rlkit.rewards import RewardBatch

    rng = random.Random(seed)
    refs, comps, prompts = [], [], []
    for p in range(n // group):
        m = rng.randint(1, 2)
        ref = [{"flaw_type": rng.choice(TYPES), "description": sentence(rng)} for _ in range(m)]
        if regions:
            for k, r in enumerate(ref):
                r["region"] = k + 1
        for _ in range(group):
            pred = [{"flaw_type": rng.choice(TYPES) if rng.random() < 0.5 else r["flaw_type"],
                     "description": sentence(rng), **({"region": r["region"]} if regions else {})} for r in ref]
            text = f"<think>{sentence(rng, 20)}</think><answer>{json.dumps(pred)}</answer>"
            comps.append(text if rng.random() > 0.05 else text[: len(text) // 2])  # 5% broken
            refs.append(json.dumps(ref))
            prompts.append(f"prompt {p}")
    return RewardBatch(comps, prompts, {"reference_diagnosis": refs})


def retouch_batch(n: int, group: int, seed: int, size: int):
    from rlkit.rewards import RewardBatch

    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    srcs = [torch.rand(3, size, size, generator=g) for _ in range(n // group)]
    comps, sources, targets, prompts = [], [], [], []
    for p, src in enumerate(srcs):
        tgt = (src * 1.2).clamp(0, 1)
        for _ in range(group):
            ops = f"exposure={rng.uniform(-1, 1):+.2f}; contrast={rng.randint(-40, 40)}; saturation={rng.randint(-30, 30)}"
            comps.append(f"{sentence(rng, 20)} {{{ops}}}" if rng.random() > 0.05 else sentence(rng))
            sources.append(src)
            targets.append(tgt)
            prompts.append(f"prompt {p}")
    return RewardBatch(comps, prompts, {"image": sources, "target_image": targets})


CPU_SECONDS: list[float] = []


def timed(fn):
    """Wall seconds of ``fn()`` (process CPU seconds are kept in CPU_SECONDS: the machine may be shared)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    CPU_SECONDS.append(time.process_time() - c)
    return time.perf_counter() - t, out


def clear_embedding_models() -> None:
    import rlkit.metrics.text as mt

    mt._MODELS.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--group", type=int, default=8, help="completions per prompt (GRPO G)")
    ap.add_argument("--size", type=int, default=128, help="image side for the RetouchIQ preset")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--naive", type=int, default=128, help="completions for the (slow) naive baseline")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from rlkit.rewards import (
        agentic_retoucher_reasoning_reward,
        editrefiner_reasoning_reward,
        retouchiq_policy_reward,
    )

    n = args.n
    target = 500.0
    print(f"{n} completions, G={args.group}, {args.threads} threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows = []

    # -- EditRefiner: cold (model load), warm model (new texts), warm cache (same batch again)
    clear_embedding_models()
    er = editrefiner_reasoning_reward()
    t_cold, _ = timed(lambda: er(diagnosis_batch(n, args.group, 0, False)))
    t_warm, _ = timed(lambda: editrefiner_reasoning_reward()(diagnosis_batch(n, args.group, 1, False)))
    b2 = diagnosis_batch(n, args.group, 2, False)
    er(b2)
    t_cache, _ = timed(lambda: er(diagnosis_batch(n, args.group, 2, False)))
    rows.append((f"editrefiner ({er.rewards[2].resolved_dtype})", t_cold, t_warm, t_cache))
    exact = editrefiner_reasoning_reward(dtype="float32")
    exact(diagnosis_batch(64, args.group, 8, False))  # load the float32 model
    t_warm32, _ = timed(lambda: exact(diagnosis_batch(n, args.group, 9, False)))
    rows.append(("editrefiner (float32)", float("nan"), t_warm32, float("nan")))

    # naive baseline: one SentenceSimilarity call per completion (a hand-written per-sample trl reward)
    from rlkit.metrics import SentenceSimilarity, normalize_label
    from rlkit.policies import parse_diagnosis

    sim = SentenceSimilarity()
    n_naive = min(n, args.naive)
    nb = diagnosis_batch(n_naive, args.group, 3, False)

    def naive():
        out = []
        for text, ref in zip(nb.completions, nb.column("reference_diagnosis")):
            p, r = parse_diagnosis(text), json.loads(ref)
            if not p.ok or not p.items:
                out.append(0.0)
                continue
            fmt = 1.0
            typ = float(normalize_label(p.items[0].flaw_type) == normalize_label(r[0]["flaw_type"]))
            cos = float(sim([p.items[0].description], [r[0]["description"]])[0])
            out.append(0.2 * fmt + 0.4 * typ + 0.4 * max(0.0, cos))
        return out

    t_naive, _ = timed(naive)

    # -- Agentic Retoucher (per-region diagnoses)
    clear_embedding_models()
    t_cold, _ = timed(lambda: agentic_retoucher_reasoning_reward()(diagnosis_batch(n, args.group, 4, True)))
    ar = agentic_retoucher_reasoning_reward()
    t_warm, _ = timed(lambda: ar(diagnosis_batch(n, args.group, 5, True)))
    t_cache, _ = timed(lambda: ar(diagnosis_batch(n, args.group, 5, True)))
    rows.append(("agentic_retoucher", t_cold, t_warm, t_cache))

    # -- RetouchIQ policy with the rule reward in place of the GRM (format + L1 to target after rendering)
    rq = retouchiq_policy_reward()
    t_cold, _ = timed(lambda: rq(retouch_batch(n, args.group, 6, args.size)))
    t_warm, _ = timed(lambda: rq(retouch_batch(n, args.group, 7, args.size)))
    rows.append((f"retouchiq_rule ({args.size}px)", t_cold, t_warm, float("nan")))

    def cell(t: float) -> str:
        return f"{n / t:10.0f}" if t == t else f"{'-':>10s}"

    print(f"{'preset':30s} {'cold/s':>10s} {'warm/s':>10s} {'cached/s':>10s} {'warm vs target':>15s}")
    for name, c, w, k in rows:
        print(f"{name:30s} {cell(c)} {cell(w)} {cell(k)} {n / w / target:14.2f}x")
    er_warm = rows[0][2]
    naive_rate = n_naive / t_naive
    print(f"baseline naive per-completion EditRefiner reward (float32, {n_naive} completions): {naive_rate:.0f} "
          f"samples/s; preset (warm) is {n / er_warm / naive_rate:.1f}x faster")
    print(f"load average at the end {os.getloadavg()[0]:.1f}; process CPU seconds per measurement: "
          + ", ".join(f"{c:.1f}" for c in CPU_SECONDS))
    print(f"EditRefiner target {target:.0f} samples/s: warm {n / er_warm:.0f} "
          f"({'OK' if n / er_warm >= target else 'BELOW TARGET'})")


if __name__ == "__main__":
    main()
