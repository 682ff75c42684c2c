"""Saliency-map metrics with the MIT Saliency Benchmark definitions (Bylinskii et al., TPAMI 2019).

All functions take batches: ``pred`` and ``gt`` of shape (H, W), (N, H, W) or (N, 1, H, W) as numpy
arrays or torch tensors, and return a float64 numpy array of shape (N,) with one value per image.
They run per image in numpy with reused buffers, images in parallel threads (``threads=``; see the
implementation note).

Conventions where the MIT MATLAB code is undefined (documented, tested):

- an image whose ground truth is empty (no fixation, all-zero map) gets NaN;
- a constant prediction carries no information: NSS = 0, CC = 0, and it is a uniform density for
  SIM/KLD (as in ``pysaliency``);
- negative predictions are shifted to a minimum of 0 before SIM/KLD (as in ``pysaliency``);
- AUC-Judd breaks ties exactly as MIT's ``AUC_Judd.m`` with ``jitter=0`` (deterministic).

Deliberate differences from ``pysaliency``: NSS uses the sample standard deviation (ddof=1, MATLAB's
``std``) where pysaliency uses ddof=0 (pass ``ddof=0`` to match it); SIM min-max-normalises each map
before normalising to unit sum, as MIT's ``similarity.m`` does, where pysaliency only shifts negative maps.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rlkit.metrics._checks import as_map_array, same_shape

__all__ = ["auc_judd", "nss", "cc", "sim", "kld", "saliency_metrics", "saliency_scores", "SALIENCY_METRICS",
           "KLD_EPS"]

KLD_EPS = 2.2204e-16  # MATLAB's eps, as in MIT's KLdiv.m
SALIENCY_METRICS = ("auc_judd", "nss", "cc", "sim", "kld")
_NAN = float("nan")

# Implementation note (speed; benchmarks/metrics.py measures it against pysaliency): the metrics are
# memory-bound, so each image is processed on its flattened map with as few passes as possible.
# - A cache-blocked statistics pass per image: sum/min/max of each map (NaN/inf show in the min/max, and make
#   the sum non-finite for the checks), and for float64 maps p.p, g.g, p.g for CC/NSS (a centred recomputation
#   guards against cancellation when the mean dwarfs the spread); float32 maps use pivoted values for CC/NSS.
# - SIM and KLD are evaluated together in cache-sized chunks with in-place ufuncs and the normalisations
#   folded into scalars: SIM = sum(min((p - lo_p) * T_g / T_p, g - lo_g)) / T_g, and
#   KLD = log(k) + sum(g * log(eps / k + g / (p - s_p + eps * T_p))) / T_g with k = T_p / T_g (T = map total).
# - AUC-Judd needs, per fixation threshold, the number of pixels >= it. With numba, one pass counts them without
#   a sort (``count_at_least``: pixels and thresholds go to ~64 buckets per threshold by the same monotone
#   arithmetic, only a pixel sharing a bucket with thresholds is compared with them, exact with ties): ~0.7-1 ms
#   per 512^2 map. numpy's own sort is ~0.85 ms where it dispatches to its AVX-512 x86-simd-sort, but ~7 ms
#   where it does not (the AMD EPYC VM of 2026-12: numpy 2.4.6 sorted 262k float32 at 26 ns each, quicksort as
#   slow as heapsort, with AVX-512 present), which had made the sort 85% of the metrics' time. Without numba:
#   sort once and count by binary search; float64 maps sort 4-byte monotone keys instead of 8-byte values
#   (~1.5x faster), exact via a tie check. (numpy searchsorted of the pixels into the thresholds: 8 ms.)
# - Images run in parallel threads (numpy releases the GIL in these loops), each with its own buffers, with
#   numpy's BLAS held single-threaded meanwhile. Each image's metrics follow its statistics pass at once, while
#   the map is still in cache (the checks that name bad images run after the batch).
# - With numba installed (the ``metrics`` extra), maps of >= 4096 pixels take the statistics pass's sums (of
#   values minus a pivot, the mean of ~1024 evenly spaced pixels, for CC/NSS in both dtypes) and SIM's sum of
#   minima from fused single-pass kernels (``_saliency_jit``) instead of ~10 numpy calls: fewer passes over
#   each map, one GIL release per map instead of one per call, so threads scale (float32, 64 maps of 512^2,
#   2 threads: 88 -> 68 ms). numba's loops with a division or min/max did not vectorise, so KLD and the
#   min/max stay in numpy. ``RLKIT_NUMBA=0`` turns the kernels off; tests run both paths.
# torch is not used here: its multi-threaded elementwise kernels were slower on a loaded 2-core machine.

_BLAS: list = []  # [threadpoolctl controller or None], resolved on first use


def _blas_single_threaded():
    """Context making numpy's BLAS single-threaded while we run (our own threads split the images instead).

    OpenBLAS threads dot products of > 10k elements and its threads spin-wait: on a busy CPU one 262k dot
    took 8 ms instead of 0.05 ms. Uses threadpoolctl when installed; otherwise dot products use einsum.
    """
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController  # deferred: optional dependency (metrics extra)

            _BLAS.append(ThreadpoolController())
        except Exception:  # noqa: BLE001 - optional accelerator; einsum fallback below
            _BLAS.append(None)
    ctl = _BLAS[0]
    return ctl.limit(limits=1, user_api="blas") if ctl is not None else contextlib.nullcontext()


_JIT: list = []  # [module of numba kernels or None], resolved on first use


_JIT_MIN_PIXELS = 4096  # smaller maps take the numpy path (cheap anyway; no numba import or compile for them)


def _jit(npix: int | None = None):
    """The numba kernels (:mod:`rlkit.metrics._saliency_jit`), or None without numba, with ``RLKIT_NUMBA=0``, or
    for maps of fewer than ``_JIT_MIN_PIXELS`` pixels (``npix``)."""
    if npix is not None and npix < _JIT_MIN_PIXELS:
        return None
    if not _JIT:
        mod = None
        if os.environ.get("RLKIT_NUMBA", "1").strip().lower() not in ("0", "false", "no", "off"):
            try:
                from rlkit.metrics import (
                    _saliency_jit as mod,  # deferred: needs numba (optional, metrics extra)
                )
            except Exception:  # noqa: BLE001 - optional accelerator (missing, or numba broken for this numpy)
                mod = None
        _JIT.append(mod)
    return _JIT[0]


def _pivot(x: np.ndarray):
    """The value subtracted before summing (squares): the float64 mean of ~1024 pixels spread over the map, in
    the map's dtype. (A float32 mean of huge finite values could overflow.) The stride is one more than an even
    split, so on square maps the pixels walk across the columns instead of sitting in one or two of them."""
    return x.dtype.type(x[:: x.size // 1024 + 1].mean(dtype=np.float64))


_DOT_BLOCK = 4096  # float32 dot products are summed in blocks of this many elements, then in float64


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    if a.dtype == np.float32 and a.size > _DOT_BLOCK:
        # float32 BLAS / einsum dots accumulate along the whole vector (error grows with its length; 2.8e-7
        # relative over 262k products): one einsum call gives per-block sums of 4096 products, added up in
        # float64 (1.7e-9; ~20 us more per 262k)
        k = a.size - a.size % _DOT_BLOCK
        blocks = np.einsum("ij,ij->i", a[:k].reshape(-1, _DOT_BLOCK), b[:k].reshape(-1, _DOT_BLOCK))
        return float(blocks.sum(dtype=np.float64)) + (_dot(a[k:], b[k:]) if k < a.size else 0.0)
    if _BLAS and _BLAS[0] is not None:
        return float(np.dot(a, b))
    return float(np.einsum("i,i->", a, b))


# Elements per chunk (by itemsize) of the SIM/KLD pass and of the statistics pass. Chunks of 0.5-1 MB: smaller
# (L2-sized) chunks were ~5% faster on one thread, but each numpy call takes and releases the GIL, and two
# threads making ~10 us calls serialise on it (64 maps of 512^2, 2 cores, threaded: float32 113 -> 84 ms,
# float64 143 -> 130 ms). Fixed per dtype, so results do not depend on the number of threads.
_CHUNK = {8: 65536, 4: 262144}
_STAT_CHUNK = {8: 131072, 4: 262144}
_WANT_ALL = frozenset(SALIENCY_METRICS)


class _Work:
    """Reusable per-thread buffers for rows of one length and dtype."""

    def __init__(self, n: int, dtype: np.dtype) -> None:
        self.chunk = _CHUNK[np.dtype(dtype).itemsize]  # elements per chunk of the SIM/KLD pass
        self.a = np.empty(n, dtype)
        self.b = np.empty(n, dtype)
        self.c = np.empty(n, dtype)
        self.keys = np.empty(n, np.uint32) if dtype == np.float64 else None
        self.lo = self.hi = 0.0


class _Row:
    """One flattened map: mean, min, max and centred sum of squares (computed once, shared by metrics)."""

    __slots__ = ("x", "n", "mean", "lo", "hi", "_ss")

    def __init__(self, x: np.ndarray, stats: tuple[float, float, float] | None = None) -> None:
        self.x = x
        self.n = x.size
        if stats is None:
            stats = (float(x.sum()), float(x.min()), float(x.max()))
        self.mean = stats[0] / self.n
        self.lo = stats[1]
        self.hi = stats[2]
        self._ss: float | None = None

    def centred(self, out: np.ndarray) -> np.ndarray:
        return np.subtract(self.x, self.x.dtype.type(self.mean), out=out)

    def ss(self, buf: np.ndarray) -> float:
        if self.lo == self.hi:
            return 0.0  # constant map: exactly 0 (sums of its values need not reproduce the constant exactly)
        if self._ss is None:
            c = self.centred(buf)
            self._ss = _dot(c, c)
        return self._ss

    def density(self, out: np.ndarray, *, minmax: bool) -> np.ndarray:
        """Normalised to sum 1 (after min-max, or after shifting negative maps); constant/zero maps -> uniform."""
        shift = self.lo if (minmax or self.lo < 0) else 0.0
        total = (self.mean - shift) * self.n
        if not total > 0 or (minmax and self.hi == self.lo):
            out.fill(1.0 / self.n)
            return out
        np.subtract(self.x, self.x.dtype.type(shift), out=out)
        out *= self.x.dtype.type(1.0 / total)
        return out

    def total(self, *, minmax: bool) -> float:
        """Sum of the map after the shift :meth:`density` applies; <= 0 (or a constant map) means uniform."""
        shift = self.lo if (minmax or self.lo < 0) else 0.0
        if minmax and self.hi == self.lo:
            return 0.0
        return (self.mean - shift) * self.n


def _second_moments(rp: _Row, rg: _Row | None, w: _Work,
                    moments: tuple[float, float | None, float | None] | None = None) -> float | None:
    """Fill the centred sums of squares; return the centred cross product (None without ``rg``).

    ``moments``: (ss_p, ss_g, cross) from the statistics pass; None -> computed here from centred values.
    """
    if moments is not None:
        rp._ss = moments[0]
        if rg is None:
            return None
        rg._ss = moments[1]
        return moments[2]
    cp = rp.centred(w.a)
    rp._ss = _dot(cp, cp)
    if rg is None:
        return None
    cg = rg.centred(w.b)
    rg._ss = _dot(cg, cg)
    return _dot(cp, cg)


_KEY_SCALE = 4294967040.0  # 2**32 - 256: keys of the largest pixel stay below 2**32 after rounding


def _key_spec(p: np.ndarray, fi: np.ndarray | None, lo: float, hi: float) -> tuple[float, float] | None:
    """(scale, shift) of the uint32 sort keys ``trunc((p - shift) * scale)`` for AUC-Judd, or None (no keys)."""
    if p.dtype != np.float64 or p.size < 4096 or fi is None or not 0 < fi.size < p.size or not hi > lo:
        return None
    s = _KEY_SCALE / (hi - lo)
    return (s, 0.0) if lo >= 0.0 and hi * s < 4294967295.0 else (s, lo)


def _fill_keys(xc: np.ndarray, keys: np.ndarray, spec: tuple[float, float], scratch: np.ndarray) -> None:
    s, shift = spec
    if shift != 0.0:
        np.subtract(xc, shift, out=scratch)
        scratch *= s
    else:
        np.multiply(xc, s, out=scratch)
    np.copyto(keys, scratch, casting="unsafe")


def _above_from_keys(keys: np.ndarray, thr: np.ndarray, spec: tuple[float, float]) -> np.ndarray | None:
    """#pixels >= each threshold (ascending ``thr`` = the fixated values) of a float64 map, from its keys.

    Keys are monotone in p, so a key above/below a threshold's key decides the comparison exactly; only
    pixels sharing a threshold's key are ambiguous. When every such pixel is itself fixated (its float64
    value is in ``thr``) the count is exact; otherwise None (the caller sorts the float64 map).
    Sorting 4-byte keys is ~2x faster than sorting the 8-byte map.
    """
    s, shift = spec
    tk = ((thr - shift) * s if shift != 0.0 else thr * s).astype(np.uint32)  # same arithmetic as the pixels
    keys.sort()
    left = np.searchsorted(keys, tk, side="left")
    right = np.searchsorted(keys, tk, side="right")
    f_left = np.searchsorted(tk, tk, side="left")  # fixated pixels per key (thr sorted, so tk sorted)
    f_right = np.searchsorted(tk, tk, side="right")
    if not np.array_equal(right - left, f_right - f_left):
        return None  # a non-fixated pixel shares a key with a threshold: ambiguous
    # pixels >= t_j: keys above t_j's key, plus the fixated pixels with the same key and value >= t_j
    same_ge = f_right - np.searchsorted(thr, thr, side="left")
    return (keys.size - right) + same_ge


def _above_by_buckets(jit, p: np.ndarray, thr: np.ndarray, lo: float, hi: float) -> np.ndarray | None:
    """#pixels >= each ascending threshold from the numba bucket count (one pass, no sort), or None when the
    map's range gives no finite bucket scale (a constant map, or a spread too small for float64)."""
    u, inv = np.unique(thr, return_inverse=True)
    nb = 1 << max(8, min(16, int(64 * u.size - 1).bit_length()))  # ~64 buckets per distinct threshold, <= 2**16
    scale = nb / (hi - lo) if hi > lo else float("inf")
    if not np.isfinite(scale):
        return None
    return jit.count_at_least(p, u, float(lo), scale, nb)[inv]


def _auc_row(p: np.ndarray, fidx: np.ndarray, w: _Work, spec: tuple[float, float] | None = None,
             keys_ready: bool = False, lohi: tuple[float, float] | None = None) -> float:
    k, npix = fidx.size, p.size
    if k == 0 or k == npix:
        return _NAN
    thr = np.sort(p[fidx])  # ascending thresholds: the predicted values at fixations
    above = None
    jit = _jit(npix) if lohi is not None else None
    if jit is not None:
        above = _above_by_buckets(jit, p, thr, *lohi)
    if above is None and spec is not None:
        if not keys_ready:
            _fill_keys(p, w.keys, spec, w.a)
        above = _above_from_keys(w.keys, thr, spec)
    if above is None:
        w.a[:] = p
        w.a.sort()
        above = npix - np.searchsorted(w.a, thr, side="left")  # #pixels >= each threshold
    above = above[::-1]  # descending thresholds
    i = np.arange(1, k + 1, dtype=np.float64)
    tp = np.concatenate([[0.0], i / k, [1.0]])
    fp = np.concatenate([[0.0], (above - i) / (npix - k), [1.0]])
    return float(np.sum((fp[1:] - fp[:-1]) * (tp[1:] + tp[:-1])) * 0.5)


def _nss_row(r: _Row, fidx: np.ndarray, ddof: int, w: _Work) -> float:
    if fidx.size == 0:
        return _NAN
    ss = r.ss(w.a)
    if not ss > 0:
        return 0.0  # a constant map carries no information
    return (float(r.x[fidx].mean(dtype=np.float64)) - r.mean) / (ss / (r.n - ddof)) ** 0.5


def _cc_row(rp: _Row, rg: _Row, w: _Work, cross: float | None = None) -> float:
    if cross is None:
        cross = _second_moments(rp, rg, w)
    sp, sg = rp.ss(w.a), rg.ss(w.b)
    if not sg > 0:
        return _NAN  # constant ground truth: undefined
    if not sp > 0:
        return 0.0  # constant prediction
    return cross / (sp * sg) ** 0.5


def _sim_row(rp: _Row, rg: _Row, w: _Work) -> float:
    if not rg.hi > 0:
        return _NAN
    d = np.minimum(rp.density(w.a, minmax=True), rg.density(w.b, minmax=True), out=w.c)
    return float(d.sum(dtype=np.float64))


def _kld_row(rp: _Row, rg: _Row, eps: float, w: _Work) -> float:
    if not rg.hi > 0:
        return _NAN
    gd = rg.density(w.a, minmax=False)
    q = rp.density(w.b, minmax=False)
    e = q.dtype.type(eps)
    q += e
    np.divide(gd, q, out=q)
    q += e
    np.log(q, out=q)
    return _dot(gd, q)


def _sim_kld_fast(rp: _Row, rg: _Row, eps: float, w: _Work, want_sim: bool, want_kld: bool,
                  key_spec: tuple[float, float] | None = None):
    """SIM and KLD in one chunked pass with the normalisations folded into scalars (see the note above);
    with ``key_spec`` the AUC-Judd sort keys are filled in the same pass (``w.keys``).

    Returns None when a map is constant/zero (uniform density): the caller then uses the plain path.
    """
    n, x, y, x_type = rp.n, rp.x, rg.x, rp.x.dtype.type
    tp_sim, tg_sim = rp.total(minmax=True), rg.total(minmax=True)
    tp_kld, tg_kld = rp.total(minmax=False), rg.total(minmax=False)
    if not (tp_sim > 0 and tg_sim > 0 and tp_kld > 0 and tg_kld > 0) or rg.lo < 0:
        return None
    s_p = rp.lo if rp.lo < 0 else 0.0  # KLD shifts only negative predictions
    ratio = x_type(tg_sim / tp_sim)  # (p - lo_p) / T_p compared with (g - lo_g) / T_g, scaled by T_g
    lo_p, lo_g = x_type(rp.lo), x_type(rg.lo)
    k_add = x_type(eps * tp_kld)
    log_k = float(np.log(tp_kld / tg_kld))
    e_over_k = x_type(eps * tg_kld / tp_kld)
    s_sum = 0.0
    k_sum = 0.0
    jit = _jit(n)
    if want_sim and jit is not None:
        s_sum = jit.sum_of_minima(x, y, lo_p, ratio, lo_g)
        want_sim = False
        if not want_kld and key_spec is None:
            return s_sum / tg_sim, _NAN
    ch = w.chunk
    for start in range(0, n, ch):
        xc, yc = x[start:start + ch], y[start:start + ch]
        m = xc.size
        u, v = w.a[:m], w.b[:m]
        if key_spec is not None:
            _fill_keys(xc, w.keys[start:start + m], key_spec, w.c[:m])
        if want_sim:
            if rp.lo != 0.0:
                np.subtract(xc, lo_p, out=u)
                u *= ratio
            else:
                np.multiply(xc, ratio, out=u)
            if rg.lo != 0.0:
                np.subtract(yc, lo_g, out=v)
                np.minimum(u, v, out=u)
            else:
                np.minimum(u, yc, out=u)
            s_sum += float(u.sum())
        if want_kld:
            if s_p != 0.0:  # shift first: adding eps * T_p to (p - s_p) keeps the zero pixels positive
                np.subtract(xc, x_type(s_p), out=u)
                u += k_add
            else:
                np.add(xc, k_add, out=u)
            np.divide(yc, u, out=u)
            u += e_over_k  # log(eps + k g/u) = log(k) + log(eps/k + g/u), and sum(g) / T_g = 1
            np.log(u, out=u)
            k_sum += _dot(yc, u)
    return s_sum / tg_sim, k_sum / tg_kld + log_k


def _stats_pass(p: np.ndarray, g: np.ndarray | None, moments: bool,
                bufs: tuple[np.ndarray, np.ndarray] | None = None):
    """Sum, min, max of each map and, when ``moments``, the centred sums of squares and cross product
    ((p-mean_p)^2, (g-mean_g)^2, (p-mean_p)(g-mean_g) summed; None where cancellation could spoil them),
    in one cache-blocked pass over the data. NaN/inf in a map show in its min/max (NaN propagates).

    float64 maps use plain dot products (guarded: relative error <= 1e-10). float32 maps subtract a pivot
    (see :func:`_pivot`) in cache first, so their sums and dot products do not cancel; the guard requires the
    pivot to sit within ~one standard deviation of the mean. With numba: :func:`_stats_pass_jit`.
    """
    jit = _jit(p.size)
    if jit is not None:
        return _stats_pass_jit(jit, p, g, moments)
    n, chunk = p.size, _STAT_CHUNK[p.dtype.itemsize]
    sp = sg = pp = gg = pg = 0.0
    dsp = dsg = 0.0  # sums of the pivoted values (float32)
    lo_p, hi_p, lo_g, hi_g = [], [], [], []  # per-chunk min/max (np.min of these propagates NaN)
    pivoted = p.dtype == np.float32
    if pivoted:
        cp = _pivot(p)
        cg = _pivot(g) if g is not None else 0
        u, v = bufs if bufs is not None else (np.empty(min(n, chunk), p.dtype), np.empty(min(n, chunk), p.dtype))
    for s in range(0, n, chunk):
        xc = p[s:s + chunk]
        m = xc.size
        lo_p.append(xc.min())
        hi_p.append(xc.max())
        yc = g[s:s + chunk] if g is not None else None
        if yc is not None:
            lo_g.append(yc.min())
            hi_g.append(yc.max())
        if pivoted:
            # sums from the pivoted values (sum(x) = sum(x - c) + m c: fewer passes, and the float32 sum of
            # the small pivoted values is the more accurate one); NaN/inf still make the sums non-finite
            xd = np.subtract(xc, cp, out=u[:m])
            d = float(xd.sum())
            dsp += d
            sp += d + m * float(cp)
            if moments:
                pp += _dot(xd, xd)
            if yc is not None:
                yd = np.subtract(yc, cg, out=v[:m])
                d = float(yd.sum())
                dsg += d
                sg += d + m * float(cg)
                if moments:
                    gg += _dot(yd, yd)
                    pg += _dot(xd, yd)
            continue
        sp += float(xc.sum())  # NaN/inf anywhere make the sum non-finite: that is the finiteness check
        if yc is not None:
            sg += float(yc.sum())
        if moments:
            pp += _dot(xc, xc)
            if yc is not None:
                gg += _dot(yc, yc)
                pg += _dot(xc, yc)
    if not pivoted:
        dsp, dsg = sp, sg
    mom = _centred_moments(n, dsp, pp, dsg if g is not None else None, gg, pg, 0.5 if pivoted else 1e-6) \
        if moments else None
    ps = (sp, float(np.min(lo_p)), float(np.max(hi_p)))
    return ps, ((sg, float(np.min(lo_g)), float(np.max(hi_g))) if g is not None else None), mom


def _centred_moments(n: int, ds_p: float, pp: float, ds_g: float | None, gg: float, pg: float, tol: float):
    """(ss_p, ss_g, cross) centred from sums of (pivoted) values and their products, or None when cancellation
    could spoil them (a centred sum of squares below ``tol`` times the uncentred one)."""
    ssp = pp - ds_p * ds_p / n
    if not ssp > tol * pp:
        return None
    if ds_g is None:
        return ssp, None, None
    ssg = gg - ds_g * ds_g / n
    if not ssg > tol * gg:
        return None
    return ssp, ssg, pg - ds_p * ds_g / n


def _stats_pass_jit(jit, p: np.ndarray, g: np.ndarray | None, moments: bool):
    """:func:`_stats_pass` with the numba kernels: min/max from numpy (NaN and inf propagate to them; such a map
    gets a NaN sum, for the checks, without running the kernel), the sums of pivoted values in one fused pass.
    """
    n = p.size
    lop, hip = float(p.min()), float(p.max())
    ok_p = np.isfinite(lop) and np.isfinite(hip)
    log = hig = 0.0
    ok_g = True
    if g is not None:
        log, hig = float(g.min()), float(g.max())
        ok_g = np.isfinite(log) and np.isfinite(hig)
    if not (ok_p and ok_g):  # the batch raises: a NaN sum marks the bad map (the other sum is not used)
        return (0.0 if ok_p else _NAN, lop, hip), ((0.0 if ok_g else _NAN, log, hig) if g is not None else None), None
    cp = _pivot(p)
    dsg = gg = pg = 0.0
    if g is not None and moments:
        cg = _pivot(g)
        dsp, dsg, pp, gg, pg = jit.moments2(p, g, cp, cg)
    else:  # one map at a time (moments2 of a map with itself)
        dsp, _, pp, _, _ = jit.moments2(p, p, cp, cp)
        if g is not None:
            cg = _pivot(g)
            dsg = jit.moments2(g, g, cg, cg)[0]
    sp = dsp + n * float(cp)
    sg = dsg + n * float(cg) if g is not None else 0.0
    mom = _centred_moments(n, dsp, pp, dsg if g is not None else None, gg, pg, 0.5) if moments else None
    return (sp, lop, hip), ((sg, log, hig) if g is not None else None), mom


def _image(p: np.ndarray, g: np.ndarray | None, fi: np.ndarray | None, want: frozenset, ddof: int,
           eps: float, w: _Work, st) -> dict[str, float]:
    """All wanted metrics of one image, sharing its statistics ``st`` (from :func:`_stats_pass`)."""
    ps, gs, mom = st
    out: dict[str, float] = {}
    rp = _Row(p, ps)
    rg = _Row(g, gs) if g is not None else None
    bucket_auc = _jit(p.size) is not None  # AUC-Judd counts by buckets (numba), no sort keys needed
    key_spec = _key_spec(p, fi, ps[1], ps[2]) if "auc_judd" in want and not bucket_auc else None
    keys_ready = False
    if "cc" in want or "nss" in want:
        cross = _second_moments(rp, rg if "cc" in want else None, w, mom)
        if "nss" in want:
            out["nss"] = _nss_row(rp, fi, ddof, w)
        if "cc" in want:
            out["cc"] = _cc_row(rp, rg, w, cross)
    want_sim, want_kld = "sim" in want, "kld" in want
    if want_sim or want_kld:
        sk = (_NAN, _NAN) if not rg.hi > 0 else _sim_kld_fast(rp, rg, eps, w, want_sim, want_kld, key_spec)
        if sk is None:
            sk = (_sim_row(rp, rg, w) if want_sim else _NAN, _kld_row(rp, rg, eps, w) if want_kld else _NAN)
        else:
            keys_ready = key_spec is not None and rg.hi > 0
        if want_sim:
            out["sim"] = sk[0]
        if want_kld:
            out["kld"] = sk[1]
    if "auc_judd" in want:
        out["auc_judd"] = _auc_row(p, fi, w, key_spec, keys_ready, (ps[1], ps[2]) if bucket_auc else None)
    return out


def _resolve_threads(threads: int | None, n_images: int, n_pixels: int) -> int:
    if threads is None:
        if n_images < 2 or n_pixels < 16384:
            return 1  # thread start-up costs more than small maps take
        return max(1, min(n_images, os.cpu_count() or 1, 8))
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"saliency metrics: threads must be a positive int or None, got {threads!r}")
    return min(threads, n_images)


def _check_stats(m: _Maps, st: list) -> None:
    """Raise on NaN/inf maps and negative ground truth, naming the images (after the statistics pass)."""
    for j, (name, a) in enumerate((("pred", m.p), ("gt", m.g))):
        if a is None:
            continue
        bad = [i for i, s in enumerate(st) if not np.isfinite(s[j][0])]
        bad = [i for i in bad if not np.isfinite(a[i]).all()]  # (a finite map whose sum overflows is fine)
        if bad:
            raise ValueError(f"{name}: contains NaN or inf (image indices {bad[:10]})")
    if m.g is not None:
        bad = [i for i, s in enumerate(st) if s[1][1] < 0]
        if bad:
            raise ValueError(f"gt: ground-truth saliency must be non-negative (negative values in images {bad[:10]})")


def _evaluable(st, f32: bool, n: int) -> bool:
    """Whether an image's metrics are worth computing: False when the checks after the batch will raise (NaN or
    inf in a map, negative ground truth) or when a float32 map lies outside the range its sums (of squares)
    survive in float32, so the batch is re-run in float64: |x| sqrt(n) > 1e18 (overflow) or a spread below 1e-15
    (squares underflow)."""
    ps, gs, _ = st
    for s in (ps, gs):
        if s is None:
            continue
        if not (np.isfinite(s[1]) and np.isfinite(s[2])):
            return False
        if f32 and not (np.isfinite(s[0]) and max(abs(s[1]), abs(s[2])) * n ** 0.5 <= 1e18
                        and (s[2] == s[1] or s[2] - s[1] >= 1e-15)):
            return False
    return gs is None or gs[1] >= 0


def _run(m: _Maps, want: frozenset, *, ddof: int = 1, eps: float = KLD_EPS, threads: int | None = None,
         fixation_threshold: float | None = None) -> tuple[dict[str, np.ndarray], list]:
    """Per-image metrics over a batch, images in parallel threads: each image's statistics pass, then its metrics
    while the map is still in cache; the checks (naming every bad image) run after the batch."""
    p, g = m.p, m.g
    n, npix = p.shape
    nt = _resolve_threads(threads, n, npix)
    moments = "cc" in want or "nss" in want
    f32 = p.dtype == np.float32
    st: list = [None] * n
    rows: list[dict[str, float] | None] = [None] * n
    fidx: list = list(m.fidx) if m.fidx is not None else [None] * n
    derive_fix = m.fidx is None and fixation_threshold is not None

    def work(indices: range) -> None:
        w = _Work(npix, p.dtype)  # per thread; the statistics pass borrows its buffers before the metrics
        for i in indices:
            gi = g[i] if g is not None else None
            st[i] = _stats_pass(p[i], gi, moments, (w.a, w.b))
            if not _evaluable(st[i], f32, npix):
                continue  # reported (or re-run) after the batch
            if derive_fix:  # fixations: gt >= threshold * max(gt)
                hi = st[i][1][2]
                fidx[i] = (np.flatnonzero(gi >= g.dtype.type(fixation_threshold * hi)) if hi > 0
                           else np.zeros(0, np.int64))
            rows[i] = _image(p[i], gi, fidx[i], want, ddof, eps, w, st[i])

    with _blas_single_threaded():
        if nt == 1:
            work(range(n))
        else:
            with ThreadPoolExecutor(max_workers=nt) as ex:
                list(ex.map(work, [range(t, n, nt) for t in range(nt)]))  # strided split: equal work per thread
    _check_stats(m, st)
    if any(r is None for r in rows):  # after the checks, only float32 images can be left out (see _evaluable)
        if not f32:
            raise RuntimeError("saliency metrics: an image was skipped without a reason (please report this)")
        # finite float32 maps outside float32's safe range (see _evaluable): evaluate in float64
        m.p, m.g = p.astype(np.float64), (g.astype(np.float64) if g is not None else None)
        return _run(m, want, ddof=ddof, eps=eps, threads=threads, fixation_threshold=fixation_threshold)
    if derive_fix:
        m.fidx = fidx
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in want}, st


def _fixation_indices(fixations: object, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Flat indices of fixated (non-zero) pixels per image; bool maps skip the float conversion."""
    raw = fixations.detach().cpu().numpy() if hasattr(fixations, "detach") else fixations
    if isinstance(raw, np.ndarray) and raw.dtype == bool and raw.ndim in (2, 3, 4):
        f = raw[None] if raw.ndim == 2 else (raw[:, 0] if raw.ndim == 4 and raw.shape[1] == 1 else raw)
        if f.ndim == 3:
            same_shape(f, np.empty(shape, dtype=bool), "fixations", "pred")
            return [np.flatnonzero(f[i]) for i in range(f.shape[0])]
    f = as_map_array(fixations, "fixations")
    same_shape(f, np.empty(shape, dtype=bool), "fixations", "pred")
    if f.min() < 0:
        raise ValueError("fixations: must be a binary (or non-negative count) map; found negative values")
    return [np.flatnonzero(f[i]) for i in range(f.shape[0])]


def _as_maps(x: object, name: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``x`` as a C-contiguous (N, H*W) float32/float64 array and its (N, H, W) shape (as ``as_map_array``;
    finiteness is checked later, from the per-image sums, saving a pass over the data)."""
    if isinstance(x, np.ndarray) and x.ndim in (2, 3) and x.dtype in (np.float32, np.float64) and x.size:
        a = np.ascontiguousarray(x[None] if x.ndim == 2 else x)
    else:
        a = as_map_array(x, name)
    return a.reshape(a.shape[0], -1), a.shape


class _Maps:
    """Validated, flattened inputs and their per-image statistics."""

    def __init__(self, pred: object, gt: object | None, fixations: object | None) -> None:
        p, shape = _as_maps(pred, "pred")
        g = None
        if gt is not None:
            g, gshape = _as_maps(gt, "gt")
            same_shape(np.empty(shape, bool), np.empty(gshape, bool), "pred", "gt")
            if g.dtype != p.dtype:
                g = g.astype(np.float64)
                p = p.astype(np.float64)
        self.p, self.g = p, g
        self.fidx = _fixation_indices(fixations, shape) if fixations is not None else None


def auc_judd(pred: object, fixations: object, *, threads: int | None = None) -> np.ndarray:
    """AUC-Judd per image (MIT benchmark ``AUC_Judd.m``): thresholds at the predicted values of fixated pixels.

    TP rate = i / N_fix, FP rate = (#pixels >= threshold - i) / (N_pix - N_fix), trapezoid area with the
    (0, 0) and (1, 1) end points. ``fixations`` is a binary map (non-zero = fixated). NaN without fixations.
    """
    return _run(_Maps(pred, None, fixations), frozenset({"auc_judd"}), threads=threads)[0]["auc_judd"]


def nss(pred: object, fixations: object, *, ddof: int = 1, threads: int | None = None) -> np.ndarray:
    """Normalized Scanpath Saliency per image (MIT ``NSS.m``): mean of the standardised prediction at fixations.

    ``ddof=1`` is MATLAB's sample std as in the benchmark; ``ddof=0`` reproduces ``pysaliency``.
    """
    _check_ddof(ddof, "nss")
    return _run(_Maps(pred, None, fixations), frozenset({"nss"}), ddof=ddof, threads=threads)[0]["nss"]


def _check_ddof(ddof: object, fn: str) -> None:
    if isinstance(ddof, bool) or ddof not in (0, 1):
        raise ValueError(f"{fn}: ddof must be 1 (MATLAB's sample std, the MIT benchmark) or 0 (pysaliency), "
                         f"got {ddof!r}")


def _pairwise(name: str, pred: object, gt: object, threads: int | None, eps: float = KLD_EPS) -> np.ndarray:
    return _run(_Maps(pred, gt, None), frozenset({name}), eps=eps, threads=threads)[0][name]


def cc(pred: object, gt: object, *, threads: int | None = None) -> np.ndarray:
    """Pearson linear correlation coefficient between prediction and ground-truth maps (MIT ``CC.m``).

    NaN when the ground truth is constant (e.g. empty); 0 for a constant prediction.
    """
    return _pairwise("cc", pred, gt, threads)


def sim(pred: object, gt: object, *, threads: int | None = None) -> np.ndarray:
    """Similarity (histogram intersection) per image (MIT ``similarity.m``).

    Each map is min-max normalised, then normalised to sum 1; SIM = sum of element-wise minima.
    """
    return _pairwise("sim", pred, gt, threads)


def kld(pred: object, gt: object, *, eps: float = KLD_EPS, threads: int | None = None) -> np.ndarray:
    """KL divergence of the prediction from the ground truth (MIT ``KLdiv.m``).

    Both maps normalised to sum 1; KLD = sum g * log(eps + g / (p + eps)), eps = 2.2204e-16. Lower is better.
    """
    return _pairwise("kld", pred, gt, threads, eps)


def saliency_metrics(
    pred: object,
    gt: object,
    *,
    fixations: object | None = None,
    fixation_threshold: float = 0.5,
    ddof: int = 1,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-image AUC-Judd, NSS, CC, SIM and KLD in one pass (shared statistics); NaN where undefined.

    Returns ``{"auc_judd": (N,), ..., "kld": (N,), "nonempty": (N,) bool}``. ``fixations``: binary maps for
    AUC-Judd/NSS; when omitted they are ``gt >= fixation_threshold * max(gt)`` per image (our convention for
    continuous ground-truth heatmaps such as GenBlemish/EditFHF maps). ``threads``: images processed in
    parallel (default: up to 8, one per CPU, for batches of maps with >= 16384 pixels; 1 = sequential).
    """
    if not 0.0 <= fixation_threshold <= 1.0:
        raise ValueError(f"saliency_metrics: fixation_threshold must be in [0, 1], got {fixation_threshold}")
    _check_ddof(ddof, "saliency_metrics")
    m = _Maps(pred, gt, fixations)
    out, st = _run(m, _WANT_ALL, ddof=ddof, threads=threads, fixation_threshold=fixation_threshold)
    his = np.array([s[1][2] for s in st])
    out["nonempty"] = (his > 0) & np.array([f.size > 0 for f in m.fidx], dtype=bool)
    return out


def saliency_scores(
    pred: object,
    gt: object,
    *,
    fixations: object | None = None,
    protocol: str = "mit",
    fixation_threshold: float = 0.5,
    ddof: int = 1,
    threads: int | None = None,
) -> dict[str, float]:
    """Mean AUC-Judd, NSS, CC, SIM and KLD over a batch, under the ``"mit"`` or ``"richhf"`` protocol.

    ``protocol="mit"`` averages over every image and raises if a metric is undefined for one (empty ground
    truth or no fixations); ``protocol="richhf"`` averages only over images whose ground truth is non-empty
    (RichHF-18K). ``fixations`` / ``fixation_threshold`` / ``threads``: see :func:`saliency_metrics`.
    """
    if protocol not in ("mit", "richhf"):
        raise ValueError(f"saliency_scores: protocol must be 'mit' or 'richhf', got {protocol!r}")
    per = saliency_metrics(pred, gt, fixations=fixations, fixation_threshold=fixation_threshold, ddof=ddof,
                           threads=threads)
    nonempty = per["nonempty"]
    out: dict[str, float] = {}
    for name in SALIENCY_METRICS:
        vals = per[name]
        if protocol == "richhf":
            vals = vals[nonempty]
            out[name] = float(vals.mean()) if vals.size else float("nan")
        else:
            bad = np.flatnonzero(np.isnan(vals)).tolist()
            if bad:
                raise ValueError(
                    f"saliency_scores: {name} is undefined for images {bad[:10]} (empty ground truth or no "
                    "fixations); use protocol='richhf' to average over non-empty images only"
                )
            out[name] = float(vals.mean())
    return out
