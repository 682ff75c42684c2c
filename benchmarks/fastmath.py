"""Compiled cost of rlkit.ops.fastmath vs the pow-based originals and kornia, in elementwise passes.

Run: ``python benchmarks/fastmath.py [--sizes 1024 512] [--batch 8] [--reps 5]``. One "pass" is the best
time of an eager ``x * 1.0`` over the same (N,3,S,S) float32 batch (the memory floor, as in
benchmarks/engine.py); every row is best-of-N time / pass time, all measured in this run. Each function is
compiled once per shape with ``torch.compile(dynamic=False)`` (compile time not counted). kornia runs eager
(it is the peer as users call it); a compiled kornia row is added for reference.
"""

from __future__ import annotations

import argparse
import time

import torch

from rlkit.ops.color import linear_to_srgb, srgb_to_linear
from rlkit.ops.fastmath import (
    gain_map,
    gain_map_reference,
    linear_to_srgb_fast,
    srgb_to_linear_fast,
)


def best_time(fn, reps: int) -> float:
    """Best-of-``reps`` wall time of ``fn()`` after one warm-up call (other load only ever adds time)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def rows(x: torch.Tensor, g: torch.Tensor) -> list[tuple[str, str, object, bool]]:
    """(group, label, fn(x), compile?) for every measured variant."""
    return [
        ("floor", "x * 1.0 (compiled)", lambda x: x * 1.0, True),
        ("pow", "torch.pow(x, 2.4)", lambda x: x ** 2.4, True),
        ("pow", "exp2(2.4 * log2(x)) [inexact]", lambda x: torch.exp2(torch.log2(x) * 2.4), True),
        ("decode", "srgb_to_linear", srgb_to_linear, True),
        ("decode", "srgb_to_linear_fast", srgb_to_linear_fast, True),
        ("encode", "linear_to_srgb", linear_to_srgb, True),
        ("encode", "linear_to_srgb_fast", linear_to_srgb_fast, True),
        ("round trip", "encode(decode(x).clamp(0,1))", lambda x: linear_to_srgb(srgb_to_linear(x).clamp(0, 1)),
         True),
        ("round trip", "fast encode(fast decode)",
         lambda x: linear_to_srgb_fast(srgb_to_linear_fast(x).clamp(0, 1)), True),
        ("gain", "decode * g -> encode", lambda x: gain_map_reference(x, g), True),
        ("gain", "gain_map(x, g)", lambda x: gain_map(x, g), True),
    ]


def bench_size(n: int, size: int, reps: int) -> None:
    torch.manual_seed(0)
    x = torch.rand(n, 3, size, size)
    g = torch.exp2(torch.empty(n, 3, 1, 1).uniform_(-2, 2))  # +-2 EV with white-balance spread
    t_pass = min(best_time(lambda: x * 1.0, reps) for _ in range(3))
    print(f"\n== {n} x 3 x {size}^2 float32 (one pass = eager x * 1.0 = {t_pass * 1e3:.1f} ms)")
    cost: dict[str, float] = {}
    print(f"{'':<34} {'passes':>7}")
    for group, label, fn, comp in rows(x, g):
        f = torch.compile(fn, dynamic=False) if comp else fn
        t0 = time.perf_counter()
        f(x)
        t_compile = time.perf_counter() - t0
        cost[label] = best_time(lambda f=f: f(x), reps) / t_pass
        print(f"{group + ': ' + label:<34} {cost[label]:7.2f}   (compile {t_compile:4.1f} s)", flush=True)
    try:
        import kornia.enhance as K
    except ImportError:
        print("kornia not installed: skipping the peer")
        k_eager = k_comp = None
    else:
        k_eager = best_time(lambda: K.adjust_brightness(x, 0.1), reps) / t_pass
        kc = torch.compile(lambda x: K.adjust_brightness(x, 0.1), dynamic=False)
        kc(x)
        k_comp = best_time(lambda: kc(x), reps) / t_pass
        print(f"{'peer: kornia adjust_brightness':<34} {k_eager:7.2f}   (eager)")
        print(f"{'peer: kornia adjust_brightness':<34} {k_comp:7.2f}   (compiled)")
    print("ratios (> 1 means the first is slower):")
    print(f"  srgb_to_linear / _fast               {cost['srgb_to_linear'] / cost['srgb_to_linear_fast']:5.2f}")
    print(f"  linear_to_srgb / _fast               {cost['linear_to_srgb'] / cost['linear_to_srgb_fast']:5.2f}")
    rt_plain, rt_fast = cost["encode(decode(x).clamp(0,1))"], cost["fast encode(fast decode)"]
    print(f"  round trip plain / fast              {rt_plain / rt_fast:5.2f}")
    gm_plain, gm_fast = cost["decode * g -> encode"], cost["gain_map(x, g)"]
    print(f"  decode*g->encode / gain_map          {gm_plain / gm_fast:5.2f}")
    if k_eager is not None:
        print(f"  kornia eager / gain_map              {k_eager / gm_fast:5.2f}   (>= 1: gain_map no slower)")
        print(f"  kornia compiled / gain_map           {k_comp / gm_fast:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 512])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    print(f"threads={torch.get_num_threads()} torch={torch.__version__} batch={args.batch}")
    for size in args.sizes:
        bench_size(args.batch, size, args.reps)


if __name__ == "__main__":
    main()
