"""Speed of rlkit.metrics against reference implementations, measured side by side in one run.

1. The five saliency metrics (AUC-Judd, NSS, CC, SIM, KLD) on 64 maps of 512x512: rlkit vs pysaliency (per
   image, its numpy/numba code). Prints the speed-up and the largest difference (target: >= 10x, equal to
   1e-5), for float64 and float32 maps, sequential (threads=1) and threaded (default). NSS is compared with
   ddof=0 (pysaliency's convention) and maps have a zero minimum so SIM's min-max step (MIT) and
   pysaliency's agree. The fused sums use numba when it is installed; the last row switches that off.
2. Sentence similarity pairs/s on CPU, batched (target >= 500 pairs/s), with the offline MiniLM model:
   unique pairs, and a GRPO-like workload (64 prompts x 8 completions, each reference repeated 8x), against
   the previous implementation (sentence-transformers ``encode`` of the distinct texts) in the same run.

Timings are best-of-N wall clock; on a shared machine they are noisy, so compare the ratios, which are
measured in the same run. Run: ``python benchmarks/metrics.py [--n 64] [--size 512] [--pairs 1000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch


def _pysaliency():
    from rlkit.testing.references import load_pysaliency

    try:
        return load_pysaliency()
    except ImportError as exc:
        sys.exit(str(exc))


def _reference(pm, nu, pred, gt, fix):
    from rlkit.testing.references import pysaliency_auc_judd

    out = {k: [] for k in ("auc_judd", "nss", "cc", "sim", "kld")}
    for i in range(pred.shape[0]):
        p, g, f = pred[i], gt[i], fix[i]
        ys, xs = np.nonzero(f)
        out["auc_judd"].append(pysaliency_auc_judd(nu, p[f], p[~f]))
        out["nss"].append(float(np.mean(pm.NSS(p, xs, ys))))
        out["cc"].append(pm.CC(p, g))
        out["sim"].append(pm.SIM(p, g))
        out["kld"].append(pm.MIT_KLDiv(p, g))
    return {k: np.asarray(v) for k, v in out.items()}


def _ours(pred, gt, fix, threads=None):
    from rlkit.metrics import saliency_metrics

    return saliency_metrics(pred, gt, fixations=fix, ddof=0, threads=threads)  # all five, shared statistics


def _ours_numpy(pred, gt, fix, threads=None):
    """As :func:`_ours` with the numba kernels switched off (the path without numba, or ``RLKIT_NUMBA=0``)."""
    from rlkit.metrics import saliency

    saved = list(saliency._JIT)
    saliency._JIT[:] = [None]
    try:
        return _ours(pred, gt, fix, threads)
    finally:
        saliency._JIT[:] = saved


def _ours_separate(pred, gt, fix):
    from rlkit.metrics import auc_judd, cc, kld, nss, sim

    return {"auc_judd": auc_judd(pred, fix), "nss": nss(pred, fix, ddof=0), "cc": cc(pred, gt),
            "sim": sim(pred, gt), "kld": kld(pred, gt)}


def _best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def bench_saliency(n: int, size: int, repeats: int) -> None:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    pred = gaussian_filter(rng.random((n, size, size)), sigma=(0, 8, 8))
    gt = gaussian_filter((rng.random((n, size, size)) > 0.999).astype(float), sigma=(0, 12, 12))
    pred -= pred.min(axis=(1, 2), keepdims=True)
    gt -= gt.min(axis=(1, 2), keepdims=True)
    fix = rng.random((n, size, size)) > 0.998
    pm, nu = _pysaliency()
    _reference(pm, nu, pred[:1], gt[:1], fix[:1])  # numba JIT warm-up, not timed
    _ours(pred[:2], gt[:2], fix[:2])
    p32, g32 = pred.astype(np.float32), gt.astype(np.float32)
    load0 = _load()
    t_ref, ref = _best(lambda: _reference(pm, nu, pred, gt, fix), repeats)
    runs = [
        ("rlkit saliency_metrics, float64, threads=1", lambda: _ours(pred, gt, fix, threads=1)),
        ("rlkit saliency_metrics, float64, threaded", lambda: _ours(pred, gt, fix)),
        ("rlkit five separate calls, float64", lambda: _ours_separate(pred, gt, fix)),
        ("rlkit saliency_metrics, float32, threads=1", lambda: _ours(p32, g32, fix, threads=1)),
        ("rlkit saliency_metrics, float32, threaded", lambda: _ours(p32, g32, fix)),
        ("  the same without numba (numpy path)", lambda: _ours_numpy(p32, g32, fix)),
    ]
    results = [(name, *_best(fn, repeats)) for name, fn in runs]
    print(f"saliency metrics, {n} maps of {size}x{size}, {os.cpu_count()} CPUs, load average "
          f"{load0:.1f} -> {_load():.1f} (best of {repeats})")
    print(f"  {'pysaliency, five calls per image':45s} {t_ref:8.3f} s")
    for name, t, _ in results:
        print(f"  {name:45s} {t:8.3f} s   speed-up x{t_ref / t:5.1f}")
    print("  largest |rlkit - pysaliency| per metric:")
    for k in ref:
        diffs = [float(np.abs(out[k] - ref[k]).max()) for _, _, out in results]
        ok = "ok" if max(diffs) <= 1e-5 else "DIFFERENT"
        print(f"    {k:9s} float64 {max(diffs[:3]):.1e}  float32 {max(diffs[3:]):.1e}  {ok}")


def _sentences(rng, n, kind):
    parts = ["the left hand", "a face", "the sky", "the text on the sign", "a cup", "the fur", "the wheel"]
    flaws = ["has six fingers", "is blurred", "is warped", "shows a colour blotch", "is duplicated", "melts"]
    if kind == "a":
        return [f"{rng.choice(parts)} {rng.choice(flaws)} near ({rng.integers(1000)}, {rng.integers(1000)})"
                for _ in range(n)]
    return [f"{rng.choice(parts)} {rng.choice(flaws)} at x={rng.integers(1000)}" for _ in range(n)]


def bench_sentences(pairs: int, repeats: int) -> None:
    from rlkit.metrics import SentenceSimilarity

    rng = np.random.default_rng(0)
    # unique pairs: nearly every sentence distinct (coordinates), so de-duplication and caching do not help
    a, b = _sentences(rng, pairs, "a"), _sentences(rng, pairs, "b")
    # GRPO-like: 64 prompts x 8 completions; each prompt's reference repeated for its 8 completions
    refs = _sentences(rng, 64, "b")
    comp = _sentences(rng, 512, "a")
    grpo_b = [refs[i // 8] for i in range(512)]
    st = SentenceSimilarity().model
    st.encode(a[:8])  # load the model, not timed

    def previous(x, y):  # the previous implementation: sentence-transformers encode of the distinct texts
        uniq = list(dict.fromkeys(list(x) + list(y)))
        emb = st.encode(uniq, batch_size=128, convert_to_numpy=True, normalize_embeddings=True,
                        show_progress_bar=False)
        pos = {t: i for i, t in enumerate(uniq)}
        return (emb[[pos[t] for t in x]] * emb[[pos[t] for t in y]]).sum(1)

    variants = [
        ("previous (st.encode), fp32", None),
        ("SentenceSimilarity(), fp32", {}),
        ("SentenceSimilarity(num_threads=1), fp32", {"num_threads": 1}),
        ("SentenceSimilarity(dtype='bfloat16')", {"dtype": "bfloat16"}),
        ("SentenceSimilarity(dtype='bfloat16', num_threads=1)", {"dtype": "bfloat16", "num_threads": 1}),
    ]
    print(f"sentence similarity (all-MiniLM-L6-v2, CPU, torch threads {torch.get_num_threads()}, "
          f"load average {_load():.1f}, best of {repeats}); pairs/s:")
    print(f"  {'':52s} {'unique':>8s} {'GRPO 64x8':>10s} {'GRPO, refs cached':>18s}")
    base = None
    ref_cos = previous(a[:200], b[:200])
    for name, kw in variants:
        if kw is None:
            t_u, _ = _best(lambda: previous(a, b), repeats)
            t_g, _ = _best(lambda: previous(comp, grpo_b), repeats)
            t_c, dev = t_g, 0.0
        else:
            sim = SentenceSimilarity(cache_size=0, **kw)
            sim(a[:8], b[:8])  # warm-up
            t_u, _ = _best(lambda sim=sim: sim(a, b), repeats)
            t_g, _ = _best(lambda sim=sim: sim(comp, grpo_b), repeats)
            cached = SentenceSimilarity(**kw)
            cached.cache.data.clear()  # the cache is shared per model and dtype: start empty
            cached(refs, refs)  # references seen before (e.g. an earlier epoch); completions are new
            new_comp = [[s + f" #{r}" for s in comp] for r in range(repeats)]
            t_c = min(_best(lambda c=c, s=cached: s(c, grpo_b), 1)[0] for c in new_comp)
            dev = float(np.abs(sim(a[:200], b[:200]) - ref_cos).max())
        u, g, c = pairs / t_u, 512 / t_g, 512 / t_c
        base = base or (u, g, c)
        print(f"  {name:52s} {u:8.0f} {g:10.0f} {c:18.0f}   (x{u / base[0]:.1f}, x{g / base[1]:.1f}, "
              f"x{c / base[2]:.1f}; max |cos - fp32| {dev:.4f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", choices=["saliency", "sentences"], default=None, help="skip one part")
    args = ap.parse_args()
    if args.skip != "saliency":
        bench_saliency(args.n, args.size, args.repeats)
    if args.skip != "sentences":
        bench_sentences(args.pairs, args.repeats)


if __name__ == "__main__":
    main()
