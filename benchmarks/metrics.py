"""Speed of rlkit.metrics against reference implementations, measured side by side in one run.

1. The five saliency metrics (AUC-Judd, NSS, CC, SIM, KLD) on 64 maps of 512x512: rlkit (batched torch)
   vs pysaliency (per image, its numpy/numba code). Prints the speed-up and the largest difference
   (target: >= 10x, equal to 1e-5). NSS is compared with ddof=0 (pysaliency's convention) and maps have
   a zero minimum so SIM's min-max step (MIT) and pysaliency's agree.
2. Sentence similarity pairs/s on CPU, batched (target >= 500 pairs/s), with the offline MiniLM model.

Run: ``python benchmarks/metrics.py [--n 64] [--size 512] [--pairs 2000]``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
import types

import numpy as np
import torch


def _pysaliency():
    try:
        import pysaliency.metrics as m
        import pysaliency.numba_utils as nu

        return m, nu
    except ImportError:  # its __init__ needs pkg_resources (gone in setuptools >= 81); metric modules don't
        spec = importlib.util.find_spec("pysaliency")
        if spec is None:
            sys.exit("pysaliency is not installed: pip install -e '.[dev]'")
        for name in [n for n in sys.modules if n == "pysaliency" or n.startswith("pysaliency.")]:
            del sys.modules[name]
        pkg = types.ModuleType("pysaliency")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["pysaliency"] = pkg
        return importlib.import_module("pysaliency.metrics"), importlib.import_module("pysaliency.numba_utils")


def _judd_auc(nu, positives, negatives):
    if hasattr(np, "trapz"):
        return nu.general_roc_numba(positives, negatives, judd=1)[0]
    sp, sn = np.sort(positives)[::-1], np.sort(negatives)[::-1]  # same steps as general_roc_numba(judd=1)
    allv = np.sort(np.hstack((max(sp[0], sn[0]) + 1, positives, min(sp[-1], sn[-1]))))[::-1]
    fpr, hr = np.zeros(len(allv) + 1), np.zeros(len(allv) + 1)
    hr, fpr = nu._general_roc_numba(allv, sp, sn, fpr, hr)
    return np.trapezoid(hr, fpr)


def _reference(pm, nu, pred, gt, fix):
    out = {k: [] for k in ("auc_judd", "nss", "cc", "sim", "kld")}
    for i in range(pred.shape[0]):
        p, g, f = pred[i], gt[i], fix[i]
        ys, xs = np.nonzero(f)
        out["auc_judd"].append(_judd_auc(nu, p[f], p[~f]))
        out["nss"].append(float(np.mean(pm.NSS(p, xs, ys))))
        out["cc"].append(pm.CC(p, g))
        out["sim"].append(pm.SIM(p, g))
        out["kld"].append(pm.MIT_KLDiv(p, g))
    return {k: np.asarray(v) for k, v in out.items()}


def _ours(pred, gt, fix):
    from rlkit.metrics import saliency_metrics

    return saliency_metrics(pred, gt, fixations=fix, ddof=0)  # all five per image, shared statistics


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
    _ours(pred[:1], gt[:1], fix[:1])
    t_ref, ref = _best(lambda: _reference(pm, nu, pred, gt, fix), repeats)
    t_ours, ours = _best(lambda: _ours(pred, gt, fix), repeats)
    t_sep, _ = _best(lambda: _ours_separate(pred, gt, fix), repeats)
    p32, g32, f_t = (torch.from_numpy(pred).float(), torch.from_numpy(gt).float(), torch.from_numpy(fix))
    t_32, ours32 = _best(lambda: _ours(p32, g32, f_t), repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"saliency metrics, {n} maps of {size}x{size}, {os.cpu_count()} CPUs, load average {load:.1f} "
          f"(best of {repeats})")
    print(f"  pysaliency, five calls per image            {t_ref:8.3f} s")
    print(f"  rlkit saliency_metrics, float64 input       {t_ours:8.3f} s   speed-up x{t_ref / t_ours:6.1f}")
    print(f"  rlkit five separate calls, float64 input    {t_sep:8.3f} s   speed-up x{t_ref / t_sep:6.1f}")
    print(f"  rlkit saliency_metrics, float32 input       {t_32:8.3f} s   speed-up x{t_ref / t_32:6.1f}")
    for k in ref:
        d64 = np.abs(ours[k] - ref[k]).max()
        d32 = np.abs(ours32[k] - ref[k]).max()
        ok = "ok" if max(d64, d32) <= 1e-5 else "DIFFERENT"
        print(f"    {k:9s} max |diff| float64 {d64:.2e}  float32 {d32:.2e}  {ok}")


def bench_sentences(pairs: int) -> None:
    from rlkit.metrics import SentenceSimilarity

    rng = np.random.default_rng(0)
    parts = ["the left hand", "a face", "the sky", "the text on the sign", "a cup", "the fur", "the wheel"]
    flaws = ["has six fingers", "is blurred", "is warped", "shows a colour blotch", "is duplicated", "melts"]
    # nearly every sentence distinct (coordinates), so the de-duplication in SentenceSimilarity does not help
    a = [f"{rng.choice(parts)} {rng.choice(flaws)} near ({rng.integers(1000)}, {rng.integers(1000)})"
         for _ in range(pairs)]
    b = [f"{rng.choice(parts)} {rng.choice(flaws)} at x={rng.integers(1000)}" for _ in range(pairs)]
    sim = SentenceSimilarity()
    sim(a[:8], b[:8])  # load the model, not timed
    n_unique = len(set(a) | set(b))
    t, _ = _best(lambda: sim(a, b), 2)
    t1 = time.perf_counter()
    for i in range(min(64, pairs)):
        sim([a[i]], [b[i]])
    per_pair = (time.perf_counter() - t1) / min(64, pairs)
    print(f"sentence similarity (all-MiniLM-L6-v2, CPU, {torch.get_num_threads()} torch threads, "
          f"{n_unique} distinct sentences): {pairs} pairs batched in {t:.2f} s = "
          f"{pairs / t:.0f} pairs/s; one pair per call: {1 / per_pair:.0f} pairs/s "
          f"(batching x{(pairs / t) * per_pair:.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    bench_saliency(args.n, args.size, args.repeats)
    bench_sentences(args.pairs)


if __name__ == "__main__":
    main()
