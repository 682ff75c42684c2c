"""Resolve MKL VML's kernel dispatch once, single-threaded, before any batched float op runs.

Why: ATen sends contiguous float unary ops (exp, log, sqrt, sin, ...) to MKL VML from each intra-op worker
thread. oneMKL picks each VML function's kernel lazily on its first call, and when that first call runs on
several threads at once one thread can run a low-accuracy kernel for its whole chunk (pytorch/pytorch#188792;
oneMKL 2024.2, as in the torch wheels). Measured here (torch 2.13 CPU, 2 threads): the first ``log_`` of a
process was off by up to 4e-5 in ~1 run of 8, so the first ``apply_program`` of a process differed from every
later one by up to 1e-4. One small call per function and dtype from one thread settles the dispatch: 0 of 60
runs were affected afterwards. The fix proposed upstream (pytorch/pytorch#188791) does the same inside ATen.
"""

from __future__ import annotations

_DONE = False

# the unary ops rlkit (engine, masks, rewards, metrics) runs on float tensors that ATen maps to MKL VML
_OPS = ("exp", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "atan",
        "asin", "acos", "erf", "erfc")


def warm_up_mkl_vml() -> None:
    """Call each VML-backed unary op once on a small float32 and float64 tensor (idempotent, ~1 ms)."""
    global _DONE
    if _DONE:
        return
    import torch  # deferred: every room imports this leaf; torch loads when a warm-up actually runs

    for dtype in (torch.float32, torch.float64):
        x = torch.full((64,), 0.5, dtype=dtype)
        for name in _OPS:
            getattr(torch, name)(x)
            getattr(x.clone(), name + "_")()
    _DONE = True
