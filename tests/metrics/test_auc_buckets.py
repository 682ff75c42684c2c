"""AUC-Judd without a sort (numba bucket count): exact against MIT's AUC_Judd.m loop on maps that stress it."""

import numpy as np
import pytest

from rlkit.metrics import auc_judd, saliency_metrics


def _mit_auc_judd(p, f):
    """MIT AUC_Judd.m (jitter=0) written out: thresholds = sorted fixated values, tp = i/Nf,
    fp = (sum(p >= thr) - i) / (Npix - Nf), trapezoid with (0,0) and (1,1)."""
    thr = np.sort(p[f])[::-1]
    nf, npix = thr.size, p.size
    tp, fp = [0.0], [0.0]
    for i, t in enumerate(thr, start=1):
        tp.append(i / nf)
        fp.append((np.count_nonzero(p >= t) - i) / (npix - nf))
    tp.append(1.0)
    fp.append(1.0)
    return float(np.trapezoid(tp, fp))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["eight_bit", "binary", "outlier", "tiny_spread", "dense_fixations"])
@pytest.mark.usefixtures("saliency_path")
def test_auc_judd_equals_mit_loop_on_hard_maps(case, dtype):
    rng = np.random.default_rng(3)
    pred = rng.random((2, 72, 64))
    fix = rng.random(pred.shape) > 0.98
    if case == "eight_bit":  # 256 levels: every threshold ties with many non-fixated pixels
        pred = np.round(pred * 255) / 255
    elif case == "binary":
        pred = (pred > 0.6).astype(float)
    elif case == "outlier":  # one huge pixel: all thresholds crowd the lowest bucket
        pred[:, 5, 7] = 1e6
    elif case == "tiny_spread":
        pred = 3.0 + pred * 1e-6
    elif case == "dense_fixations":
        fix = rng.random(pred.shape) > 0.4
    pred = pred.astype(dtype)
    ref = np.array([_mit_auc_judd(pred[i], fix[i]) for i in range(2)])
    np.testing.assert_allclose(auc_judd(pred, fix), ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(saliency_metrics(pred, pred.astype(np.float64) ** 2, fixations=fix)["auc_judd"],
                               ref, atol=1e-12, rtol=0)
