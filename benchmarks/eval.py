"""Speed of the evaluation harness, with its baselines measured in the same run.

1. Harness share: the synthetic RetouchEval suite with the tiny VLM policy (transformers generation); the
   harness's own time (parsing, rendering, metrics, records, report) as a share of the total (target <= 10%).
2. Metric images/s at 512x512: L1, L2, PSNR, SSIM (and LPIPS when its weights are present) per image pair.
3. Saliency metrics (the agent suites'): rlkit vs pysaliency on 64 maps of 512^2, float32, threaded and
   threads=1; with ``--saliency-ref COMMIT`` also rlkit's saliency module as of that git commit, loaded beside
   the working tree's, timed interleaved in this process (is a change a regression, or the machine?).
4. With ``--vllm MODEL`` on a CUDA machine with vLLM: samples/s of vLLM generation on the same suite.

Timings are best-of-N wall clock; on a shared machine compare the ratios. The load average is printed.
Run: ``python benchmarks/eval.py [--n 8] [--size 96] [--saliency-ref e45f61c] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


class _Timed:
    """Wraps a system; accumulates the seconds spent in its generate()."""

    def __init__(self, inner):
        self.inner, self.name, self.seconds = inner, inner.name, 0.0

    def generate(self, tasks):
        t = time.perf_counter()
        try:
            return self.inner.generate(tasks)
        finally:
            self.seconds += time.perf_counter() - t


def bench_harness(n: int, size: int, max_new_tokens: int) -> None:
    from rlkit.data import build_retoucheval
    from rlkit.eval import TransformersPolicy, load_retouch_samples, run_retouch
    from rlkit.testing import tiny_model_path

    tmp = Path(tempfile.mkdtemp(prefix="rlkit-bench-eval-"))
    build_retoucheval(n, 0, size=size).save_to_disk(str(tmp / "data"))
    samples = load_retouch_samples(tmp / "data")
    pol = _Timed(TransformersPolicy(tiny_model_path("qwen2_5_vl"), name="tiny", max_new_tokens=max_new_tokens,
                                    batch_size=8))
    t = time.perf_counter()
    run_retouch(samples, [pol], tmp / "out", batch_size=8, progress=False)
    total = time.perf_counter() - t
    own = total - pol.seconds
    print(f"harness on {len(samples)} samples of {size}px, tiny VLM, {max_new_tokens} new tokens ({_load()}):")
    print(f"  total {total:.2f} s, generation {pol.seconds:.2f} s, harness {own:.2f} s = {own / total:.1%} of the "
          f"total (target <= 10%); {len(samples) / total:.1f} samples/s")


def bench_metrics(pairs: int, size: int, repeats: int) -> None:
    import torch

    from rlkit.metrics import l1, l2, psnr, ssim
    from rlkit.metrics.lpips import LPIPSUnavailable, load_lpips

    g = torch.Generator().manual_seed(0)
    x = torch.rand(pairs, 3, size, size, generator=g)
    y = (x + 0.05 * torch.randn(pairs, 3, size, size, generator=g)).clamp(0, 1)
    fns = {"l1": l1, "l2": l2, "psnr": psnr, "ssim": ssim}
    try:
        lp = load_lpips("alex")
        fns["lpips (alex)"] = lambda a, b: lp(a, b)
    except LPIPSUnavailable as exc:
        print(f"  lpips: {exc}")
    print(f"metric images/s at {size}x{size}, batches of {pairs} ({_load()}):")
    for name, fn in fns.items():
        best = min(_time(lambda fn=fn: fn(x, y)) for _ in range(repeats))
        print(f"  {name:14s} {pairs / best:9.1f} images/s")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _saliency_at(commit: str, name: str):
    """rlkit.metrics as of ``commit`` imported as a separate package ``name`` (its internal imports renamed)."""
    dest = Path(tempfile.mkdtemp(prefix="rlkit-ab-")) / name
    dest.mkdir()
    data = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "rlkit/metrics"], capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            if m.isfile() and m.name.endswith(".py"):
                text = tf.extractfile(m).read().decode().replace("rlkit.metrics", name)
                (dest / Path(m.name).name).write_text(text)
    sys.path.insert(0, str(dest.parent))
    return importlib.import_module(f"{name}.saliency")


def bench_saliency(n: int, size: int, repeats: int, ref: str | None) -> None:
    from scipy.ndimage import gaussian_filter

    from benchmarks.metrics import _reference
    from rlkit.metrics import saliency
    from rlkit.testing.references import load_pysaliency

    rng = np.random.default_rng(0)
    pred = gaussian_filter(rng.random((n, size, size)), sigma=(0, 8, 8))
    gt = gaussian_filter((rng.random((n, size, size)) > 0.999).astype(float), sigma=(0, 12, 12))
    pred -= pred.min(axis=(1, 2), keepdims=True)
    gt -= gt.min(axis=(1, 2), keepdims=True)
    fix = rng.random((n, size, size)) > 0.998
    p32, g32 = pred.astype(np.float32), gt.astype(np.float32)
    pm, nu = load_pysaliency()
    mods = {"rlkit (this tree)": saliency}
    if ref:
        mods[f"rlkit at {ref}"] = _saliency_at(ref, "rlkit_metrics_ref")
    _reference(pm, nu, pred[:1], gt[:1], fix[:1])  # numba warm-up
    for m in mods.values():
        m.saliency_metrics(p32[:2], g32[:2], fixations=fix[:2], ddof=0)
    times: dict[str, list[float]] = {"pysaliency": []}
    runs = [(f"{k}, float32, {mode}", m, th) for k, m in mods.items() for mode, th in (("threaded", None),
                                                                                      ("threads=1", 1))]
    for name, *_ in runs:
        times[name] = []
    load0 = _load()
    for r in range(repeats):  # interleaved: every variant sees the same machine state
        times["pysaliency"].append(_time(lambda: _reference(pm, nu, pred, gt, fix)))
        for name, m, th in (runs if r % 2 == 0 else runs[::-1]):
            times[name].append(_time(lambda m=m, th=th: m.saliency_metrics(p32, g32, fixations=fix, ddof=0,
                                                                           threads=th)))
    ref_t = min(times["pysaliency"])
    print(f"saliency metrics, {n} maps of {size}^2, {os.cpu_count()} CPUs, {load0} -> {_load()} (best of {repeats}):")
    for name, ts in times.items():
        print(f"  {name:42s} {min(ts):7.3f} s  (median {np.median(ts):.3f})  x{ref_t / min(ts):5.1f} pysaliency")
    base = mods["rlkit (this tree)"].saliency_metrics(p32, g32, fixations=fix, ddof=0)
    ref_vals = _reference(pm, nu, pred, gt, fix)
    print("  largest |rlkit float32 - pysaliency float64|: " + ", ".join(
        f"{k} {float(np.abs(base[k] - ref_vals[k]).max()):.1e}" for k in ref_vals))
    for k, m in mods.items():
        if m is not saliency:
            other = m.saliency_metrics(p32, g32, fixations=fix, ddof=0)
            print(f"  largest |this tree - {k}|: " + ", ".join(
                f"{x} {float(np.abs(base[x] - other[x]).max()):.1e}" for x in ref_vals))
    sort_t = min(_time(lambda: np.sort(p32[0].ravel())) for _ in range(5))
    print(f"  numpy sort of one {size}^2 float32 map: {sort_t * 1e3:.2f} ms (~0.85 ms where numpy dispatches to "
          "x86-simd-sort; the numba AUC-Judd path does not sort)")


def bench_vllm(model: str, n: int, size: int) -> None:
    from rlkit.data import build_retoucheval
    from rlkit.eval import load_retouch_samples
    from rlkit.eval.policy import VLLMPolicy, vllm_usable

    ok, why = vllm_usable()
    if not ok:
        print(f"vLLM: skipped ({why})")
        return
    tmp = Path(tempfile.mkdtemp(prefix="rlkit-bench-vllm-"))
    build_retoucheval(n, 0, size=size).save_to_disk(str(tmp / "data"))
    tasks = [s.task() for s in load_retouch_samples(tmp / "data")]
    pol = VLLMPolicy(model, max_new_tokens=256)
    pol.generate(tasks[:2])
    t = _time(lambda: pol.generate(tasks))
    print(f"vLLM {model}: {len(tasks)} samples in {t:.2f} s = {len(tasks) / t:.1f} samples/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="samples per split for the harness share")
    ap.add_argument("--size", type=int, default=96, help="photo size for the harness share")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--pairs", type=int, default=8, help="image pairs per metric batch (512^2)")
    ap.add_argument("--maps", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--saliency-ref", default=None, help="git commit whose saliency module to time beside this tree")
    ap.add_argument("--vllm", default=None, help="model for the vLLM samples/s row (CUDA + vllm only)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: harness,metrics,saliency")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    skip = set(a.skip.split(","))
    if "harness" not in skip:
        bench_harness(a.n, a.size, a.max_new_tokens)
    if "metrics" not in skip:
        bench_metrics(a.pairs, 512, a.repeats)
    if "saliency" not in skip:
        bench_saliency(a.maps, 512, a.repeats, a.saliency_ref)
    if a.vllm:
        bench_vllm(a.vllm, a.n, 512)


if __name__ == "__main__":
    main()
