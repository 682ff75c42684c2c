import math

import numpy as np
import pytest
import torch

from rlkit.metrics import KLD_EPS, auc_judd, cc, kld, nss, saliency_metrics, saliency_scores, sim

pytestmark = pytest.mark.usefixtures("saliency_path")  # numba kernels and numpy (conftest)


def test_auc_judd_hand_worked():
    pred = np.array([[0.9, 0.1, 0.5], [0.3, 0.7, 0.2]])
    fix = np.array([[1, 0, 0], [1, 0, 0]])
    # thresholds 0.9, 0.3: (fp, tp) = (0, .5), ((4-2)/4, 1) -> area .375 + .5
    assert auc_judd(pred, fix)[0] == pytest.approx(0.875)


def test_auc_judd_perfect_and_worst():
    pred = np.arange(16, dtype=float).reshape(4, 4)
    fix = pred >= 14
    assert auc_judd(pred, fix)[0] == pytest.approx(1.0)
    # worst ranking: points (0,0), (1,.5), (1,1) -> the MIT curve's first segment gives 0.25, not 0
    assert auc_judd(-pred, fix)[0] == pytest.approx(0.25)


def test_nss_hand_worked_sample_std():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    fix = np.array([[0, 0], [0, 1]])
    assert nss(pred, fix)[0] == pytest.approx(1.5 / math.sqrt(5 / 3))
    assert nss(pred, fix, ddof=0)[0] == pytest.approx(1.5 / math.sqrt(1.25))


def test_cc_sim_kld_hand_worked():
    gt = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert cc(2 * gt + 1, gt)[0] == pytest.approx(1.0)
    assert cc(-gt, gt)[0] == pytest.approx(-1.0)
    assert sim(np.array([[0.0, 1.0], [1.0, 2.0]]), gt)[0] == pytest.approx(0.25)
    # uniform prediction vs half-half ground truth: KLD = log 2
    assert kld(np.full((2, 2), 3.0), gt)[0] == pytest.approx(math.log(2) + 0 * KLD_EPS, rel=1e-9)
    assert kld(gt, gt)[0] == pytest.approx(0.0, abs=1e-12)
    assert sim(gt, gt)[0] == pytest.approx(1.0)


def _random_maps(n=4, h=24, w=33, seed=0):
    rng = np.random.default_rng(seed)
    pred = rng.random((n, h, w)) ** 2
    gt = rng.random((n, h, w)) ** 3
    fix = rng.random((n, h, w)) > 0.93
    return pred, gt, fix


def test_against_pysaliency_random_maps(pysal, pysal_auc_judd):
    pm, _ = pysal
    pred, gt, fix = _random_maps()
    ours = {
        "auc": auc_judd(pred, fix), "nss": nss(pred, fix, ddof=0), "cc": cc(pred, gt), "kld": kld(pred, gt),
    }
    for i in range(pred.shape[0]):
        pos, neg = pred[i][fix[i]], pred[i][~fix[i]]
        ref_auc = pysal_auc_judd(pos, neg)
        ys, xs = np.nonzero(fix[i])
        assert ours["auc"][i] == pytest.approx(ref_auc, abs=1e-10)
        assert ours["nss"][i] == pytest.approx(np.mean(pm.NSS(pred[i], xs, ys)), abs=1e-10)
        assert ours["cc"][i] == pytest.approx(pm.CC(pred[i], gt[i]), abs=1e-10)
        assert ours["kld"][i] == pytest.approx(pm.MIT_KLDiv(pred[i], gt[i]), abs=1e-10)


def test_sim_matches_pysaliency_when_min_is_zero_and_documents_difference(pysal):
    pm, _ = pysal
    pred, gt, _ = _random_maps(seed=1)
    pred[:, 0, 0] = 0.0
    gt[:, 0, 0] = 0.0
    ours = sim(pred, gt)
    for i in range(pred.shape[0]):
        assert ours[i] == pytest.approx(pm.SIM(pred[i], gt[i]), abs=1e-10)
    # deliberate difference: MIT min-max normalises; pysaliency does not shift non-negative maps
    shifted = pred + 0.5
    assert sim(shifted, gt)[0] == pytest.approx(ours[0], abs=1e-12)
    assert abs(pm.SIM(shifted[0], gt[0]) - ours[0]) > 1e-3


def test_float32_batch_agrees_with_float64_and_single_calls():
    pred, gt, fix = _random_maps(n=3)
    b64 = saliency_scores(pred, gt, fixations=fix)
    b32 = saliency_scores(torch.tensor(pred, dtype=torch.float32), torch.tensor(gt, dtype=torch.float32),
                          fixations=torch.tensor(fix))
    for k in b64:
        assert b32[k] == pytest.approx(b64[k], abs=1e-5)
    singles = [auc_judd(pred[i], fix[i])[0] for i in range(3)]
    assert b64["auc_judd"] == pytest.approx(np.mean(singles))
    assert auc_judd(pred[:, None], fix[:, None]).shape == (3,)


def test_protocols_mit_raises_richhf_skips_empty():
    pred, gt, fix = _random_maps(n=3)
    gt[1] = 0.0
    fix[1] = False
    with pytest.raises(ValueError, match="richhf"):
        saliency_scores(pred, gt, fixations=fix, protocol="mit")
    r = saliency_scores(pred, gt, fixations=fix, protocol="richhf")
    keep = [0, 2]
    assert r["cc"] == pytest.approx(np.mean(cc(pred[keep], gt[keep])))
    assert r["auc_judd"] == pytest.approx(np.mean(auc_judd(pred[keep], fix[keep])))
    assert r["kld"] == pytest.approx(np.mean(kld(pred[keep], gt[keep])))
    assert set(r) == {"auc_judd", "nss", "cc", "sim", "kld"}
    assert np.isnan(cc(pred, gt)[1]) and np.isnan(auc_judd(pred, fix)[1])


def test_default_fixations_are_half_max_of_gt():
    pred, gt, _ = _random_maps(n=2)
    fix = gt >= 0.5 * gt.max(axis=(1, 2), keepdims=True)
    assert saliency_scores(pred, gt)["nss"] == pytest.approx(np.mean(nss(pred, fix)))


def test_constant_prediction_conventions():
    _, gt, fix = _random_maps(n=1)
    const = np.ones_like(gt)
    assert nss(const, fix)[0] == 0.0
    assert cc(const, gt)[0] == 0.0
    uniform = np.full(gt.size, 1 / gt.size)
    g = gt.ravel() / gt.sum()
    assert kld(const, gt)[0] == pytest.approx(np.sum(g * np.log(KLD_EPS + g / (uniform + KLD_EPS))))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cc(np.zeros((2, 3, 4)), np.zeros((2, 4, 3))), "shape"),
        (lambda: kld(np.array([[np.nan, 1.0]]), np.ones((1, 2))), "NaN"),
        (lambda: sim(np.ones((3, 3)), -np.ones((3, 3))), "non-negative"),
        (lambda: auc_judd(np.ones((2, 3, 3, 3)), np.ones((2, 3, 3, 3))), r"\(N, H, W\)"),
        (lambda: saliency_scores(np.ones((3, 3)), np.ones((3, 3)), protocol="tuebingen"), "protocol"),
    ],
)
def test_bad_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_saliency_metrics_per_image_equals_separate_calls():
    pred, gt, fix = _random_maps(n=3, seed=4)
    per = saliency_metrics(torch.tensor(pred), gt, fixations=fix)
    np.testing.assert_allclose(per["auc_judd"], auc_judd(pred, fix))
    np.testing.assert_allclose(per["nss"], nss(pred, fix))
    np.testing.assert_allclose(per["cc"], cc(pred, gt))
    np.testing.assert_allclose(per["sim"], sim(pred, gt))
    np.testing.assert_allclose(per["kld"], kld(pred, gt))
    assert per["nonempty"].all()
