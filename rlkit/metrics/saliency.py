"""Saliency-map metrics with the MIT Saliency Benchmark definitions (Bylinskii et al., TPAMI 2019).

All functions take batches: ``pred`` and ``gt`` of shape (H, W), (N, H, W) or (N, 1, H, W) as numpy
arrays or torch tensors, and return a float64 numpy array of shape (N,) with one value per image.
They run per image in numpy with reused buffers (see the implementation note).

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

import numpy as np

from rlkit.metrics._checks import as_map_array, same_shape

__all__ = ["auc_judd", "nss", "cc", "sim", "kld", "saliency_metrics", "saliency_scores", "SALIENCY_METRICS",
           "KLD_EPS"]

KLD_EPS = 2.2204e-16  # MATLAB's eps, as in MIT's KLdiv.m
SALIENCY_METRICS = ("auc_judd", "nss", "cc", "sim", "kld")
_NAN = float("nan")

# Implementation note: the metrics are memory-bound, so they run image by image in numpy on flattened maps,
# writing every temporary into a few buffers allocated once per call (no fresh pages per image, and a
# 512x512 float32 map's temporaries stay in the CPU cache); AUC-Judd uses numpy's SIMD sort. torch is not
# used here: its multi-threaded elementwise kernels were slower on a loaded 2-core machine.
# benchmarks/metrics.py measures this against pysaliency.


class _Work:
    """Reusable per-call buffers for rows of one length and dtype."""

    def __init__(self, n: int, dtype: np.dtype) -> None:
        self.a = np.empty(n, dtype)
        self.b = np.empty(n, dtype)
        self.c = np.empty(n, dtype)


class _Row:
    """One flattened map: mean, min, max and centred sum of squares (computed once, shared by metrics)."""

    __slots__ = ("x", "n", "mean", "lo", "hi", "_ss")

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.n = x.size
        self.mean = float(x.mean())
        self.lo = float(x.min())
        self.hi = float(x.max())
        self._ss: float | None = None

    def centred(self, out: np.ndarray) -> np.ndarray:
        return np.subtract(self.x, self.x.dtype.type(self.mean), out=out)

    def ss(self, buf: np.ndarray) -> float:
        if self._ss is None:
            c = self.centred(buf)
            self._ss = float(np.einsum("i,i->", c, c))  # not np.dot: threaded BLAS stalls on busy CPUs
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


def _auc_row(p: np.ndarray, fidx: np.ndarray, w: _Work) -> float:
    k, npix = fidx.size, p.size
    if k == 0 or k == npix:
        return _NAN
    thr = np.sort(p[fidx])[::-1]  # descending thresholds: the predicted values at fixations
    w.a[:] = p
    w.a.sort()
    above = npix - np.searchsorted(w.a, thr, side="left")  # #pixels >= each threshold
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


def _cc_row(rp: _Row, rg: _Row, w: _Work) -> float:
    sp, sg = rp.ss(w.a), rg.ss(w.b)
    if not sg > 0:
        return _NAN  # constant ground truth: undefined
    if not sp > 0:
        return 0.0  # constant prediction
    return float(np.einsum("i,i->", rp.centred(w.a), rg.centred(w.b))) / (sp * sg) ** 0.5


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
    q *= gd
    return float(q.sum(dtype=np.float64))


def _prep(pred: object, gt: object | None, fixations: object | None):
    p = as_map_array(pred, "pred")
    g = None
    if gt is not None:
        g = as_map_array(gt, "gt")
        same_shape(p, g, "pred", "gt")
        if g.min() < 0:
            bad = np.flatnonzero((g < 0).reshape(g.shape[0], -1).any(1))[:10].tolist()
            raise ValueError(f"gt: ground-truth saliency must be non-negative (negative values in images {bad})")
        if g.dtype != p.dtype:
            g = g.astype(np.float64)
            p = p.astype(np.float64)
    fidx = None
    if fixations is not None:
        f = as_map_array(fixations, "fixations")
        same_shape(f, p, "fixations", "pred")
        if f.min() < 0:
            raise ValueError("fixations: must be a binary (or non-negative count) map; found negative values")
        fidx = [np.flatnonzero(f[i]) for i in range(f.shape[0])]
    n = p.shape[0]
    return p.reshape(n, -1), (g.reshape(n, -1) if g is not None else None), fidx


def auc_judd(pred: object, fixations: object) -> np.ndarray:
    """AUC-Judd per image (MIT benchmark ``AUC_Judd.m``): thresholds at the predicted values of fixated pixels.

    TP rate = i / N_fix, FP rate = (#pixels >= threshold - i) / (N_pix - N_fix), trapezoid area with the
    (0, 0) and (1, 1) end points. ``fixations`` is a binary map (non-zero = fixated). NaN without fixations.
    """
    p, _, fidx = _prep(pred, None, fixations)
    w = _Work(p.shape[1], p.dtype)
    return np.array([_auc_row(p[i], fidx[i], w) for i in range(p.shape[0])], dtype=np.float64)


def nss(pred: object, fixations: object, *, ddof: int = 1) -> np.ndarray:
    """Normalized Scanpath Saliency per image (MIT ``NSS.m``): mean of the standardised prediction at fixations.

    ``ddof=1`` is MATLAB's sample std as in the benchmark; ``ddof=0`` reproduces ``pysaliency``.
    """
    p, _, fidx = _prep(pred, None, fixations)
    w = _Work(p.shape[1], p.dtype)
    return np.array([_nss_row(_Row(p[i]), fidx[i], ddof, w) for i in range(p.shape[0])], dtype=np.float64)


def _pairwise(fn, pred: object, gt: object) -> np.ndarray:
    p, g, _ = _prep(pred, gt, None)
    w = _Work(p.shape[1], p.dtype)
    return np.array([fn(_Row(p[i]), _Row(g[i]), w) for i in range(p.shape[0])], dtype=np.float64)


def cc(pred: object, gt: object) -> np.ndarray:
    """Pearson linear correlation coefficient between prediction and ground-truth maps (MIT ``CC.m``).

    NaN when the ground truth is constant (e.g. empty); 0 for a constant prediction.
    """
    return _pairwise(_cc_row, pred, gt)


def sim(pred: object, gt: object) -> np.ndarray:
    """Similarity (histogram intersection) per image (MIT ``similarity.m``).

    Each map is min-max normalised, then normalised to sum 1; SIM = sum of element-wise minima.
    """
    return _pairwise(_sim_row, pred, gt)


def kld(pred: object, gt: object, *, eps: float = KLD_EPS) -> np.ndarray:
    """KL divergence of the prediction from the ground truth (MIT ``KLdiv.m``).

    Both maps normalised to sum 1; KLD = sum g * log(eps + g / (p + eps)), eps = 2.2204e-16. Lower is better.
    """
    return _pairwise(lambda a, b, w: _kld_row(a, b, eps, w), pred, gt)


def saliency_metrics(
    pred: object,
    gt: object,
    *,
    fixations: object | None = None,
    fixation_threshold: float = 0.5,
    ddof: int = 1,
) -> dict[str, np.ndarray]:
    """Per-image AUC-Judd, NSS, CC, SIM and KLD in one pass (shared statistics); NaN where undefined.

    Returns ``{"auc_judd": (N,), ..., "kld": (N,), "nonempty": (N,) bool}``. ``fixations``: binary maps for
    AUC-Judd/NSS; when omitted they are ``gt >= fixation_threshold * max(gt)`` per image (our convention for
    continuous ground-truth heatmaps such as GenBlemish/EditFHF maps).
    """
    if not 0.0 <= fixation_threshold <= 1.0:
        raise ValueError(f"saliency_metrics: fixation_threshold must be in [0, 1], got {fixation_threshold}")
    p, g, fidx = _prep(pred, gt, fixations)
    n = p.shape[0]
    w = _Work(p.shape[1], p.dtype)
    cols: dict[str, list[float]] = {k: [] for k in SALIENCY_METRICS}
    nonempty = np.zeros(n, dtype=bool)
    for i in range(n):  # each map's statistics are computed once and shared by the five metrics
        rp, rg = _Row(p[i]), _Row(g[i])
        if fidx is None:
            fi = np.flatnonzero(g[i] >= g.dtype.type(fixation_threshold * rg.hi)) if rg.hi > 0 else np.zeros(0, np.int64)
        else:
            fi = fidx[i]
        nonempty[i] = rg.hi > 0 and fi.size > 0
        cols["auc_judd"].append(_auc_row(p[i], fi, w))
        cols["nss"].append(_nss_row(rp, fi, ddof, w))
        cols["cc"].append(_cc_row(rp, rg, w))
        cols["sim"].append(_sim_row(rp, rg, w))
        cols["kld"].append(_kld_row(rp, rg, KLD_EPS, w))
    out: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
    out["nonempty"] = nonempty
    return out


def saliency_scores(
    pred: object,
    gt: object,
    *,
    fixations: object | None = None,
    protocol: str = "mit",
    fixation_threshold: float = 0.5,
    ddof: int = 1,
) -> dict[str, float]:
    """Mean AUC-Judd, NSS, CC, SIM and KLD over a batch, under the ``"mit"`` or ``"richhf"`` protocol.

    ``protocol="mit"`` averages over every image and raises if a metric is undefined for one (empty ground
    truth or no fixations); ``protocol="richhf"`` averages only over images whose ground truth is non-empty
    (RichHF-18K). ``fixations`` / ``fixation_threshold``: see :func:`saliency_metrics`.
    """
    if protocol not in ("mit", "richhf"):
        raise ValueError(f"saliency_scores: protocol must be 'mit' or 'richhf', got {protocol!r}")
    per = saliency_metrics(pred, gt, fixations=fixations, fixation_threshold=fixation_threshold, ddof=ddof)
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
