"""The fast paths of rlkit.metrics (saliency: uint32 sort keys, folded SIM/KLD, threads; text: embedding
cache, bfloat16) give the same values as the references (pysaliency / float32 sentence-transformers)."""

import numpy as np
import pytest
import torch

from rlkit.metrics import SentenceSimilarity, auc_judd, cc, kld, nss, saliency_metrics, sim


def _maps(n=3, h=96, w=80, seed=0):
    rng = np.random.default_rng(seed)
    pred = rng.random((n, h, w)) ** 2
    gt = rng.random((n, h, w)) ** 4
    fix = rng.random((n, h, w)) > 0.97
    return pred, gt, fix


def _ref_all(pysal, pysal_auc_judd, pred, gt, fix):
    pm, _ = pysal
    out = {k: [] for k in ("auc_judd", "nss", "cc", "kld")}
    for i in range(pred.shape[0]):
        ys, xs = np.nonzero(fix[i])
        out["auc_judd"].append(pysal_auc_judd(pred[i][fix[i]], pred[i][~fix[i]]))
        out["nss"].append(np.mean(pm.NSS(pred[i], xs, ys)))
        out["cc"].append(pm.CC(pred[i], gt[i]))
        out["kld"].append(pm.MIT_KLDiv(pred[i], gt[i]))
    return {k: np.array(v) for k, v in out.items()}


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


@pytest.mark.parametrize("case", ["continuous", "ties", "negative", "offset", "pivot"])
@pytest.mark.usefixtures("saliency_path")
def test_large_float64_maps_match_pysaliency(pysal, pysal_auc_judd, case):
    # >= 4096 pixels: AUC-Judd uses uint32 sort keys (exact, with a float64 fallback when keys are ambiguous),
    # SIM/KLD the chunked folded formulas, CC/NSS the dot products of the statistics pass.
    pred, gt, fix = _maps()
    if case == "ties":  # quantised: many non-fixated pixels tie with thresholds -> the float64 fallback
        pred = np.round(pred * 64) / 64
    elif case == "negative":  # negative predictions are shifted before KLD: the shifted branch
        pred = pred - 0.3
    elif case == "offset":  # mean >> spread: the centred recomputation guards the dot products
        pred = pred * 0.05 + 100.0
    elif case == "pivot":  # the evenly spaced pixels that set the pivot are far from the mean: the guard
        pred = pred.copy()  # rejects the pivoted sums and the centred values are recomputed
        flat = pred.reshape(pred.shape[0], -1)[:, :: pred[0].size // 1024 + 1]  # saliency._pivot's pixels
        flat += 1000.0  # (distinct values: no ties for AUC-Judd)
    ref = _ref_all(pysal, pysal_auc_judd, pred, gt, fix)
    if case == "ties":  # pysaliency breaks ties differently from MIT's AUC_Judd.m; use the MIT loop itself
        ref["auc_judd"] = np.array([_mit_auc_judd(pred[i], fix[i]) for i in range(pred.shape[0])])
    per = saliency_metrics(pred, gt, fixations=fix, ddof=0)
    for k, tol in (("auc_judd", 1e-12), ("nss", 1e-9), ("cc", 1e-9), ("kld", 1e-10)):
        np.testing.assert_allclose(per[k], ref[k], atol=tol, rtol=0, err_msg=f"{case}: {k}")
    # the single-metric calls take the same path
    np.testing.assert_allclose(auc_judd(pred, fix), ref["auc_judd"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(nss(pred, fix, ddof=0), ref["nss"], atol=1e-9, rtol=0)


@pytest.mark.usefixtures("saliency_path")
def test_sim_fast_path_matches_mit_definition_by_hand():
    pred, gt, _ = _maps(seed=3)
    gt = gt + 0.2  # positive minimum: SIM's min-max shift of the ground truth
    for i in range(pred.shape[0]):
        p = (pred[i] - pred[i].min()) / (pred[i] - pred[i].min()).sum()
        g = (gt[i] - gt[i].min()) / (gt[i] - gt[i].min()).sum()
        assert sim(pred[i], gt[i])[0] == pytest.approx(np.minimum(p, g).sum(), abs=1e-12)
    # constant prediction (uniform density) takes the plain path
    g0 = (gt[0] - gt[0].min()) / (gt[0] - gt[0].min()).sum()
    assert sim(np.ones_like(gt[0]), gt[0])[0] == pytest.approx(np.minimum(1 / gt[0].size, g0).sum(), abs=1e-12)


@pytest.mark.usefixtures("saliency_path")
def test_kld_fast_path_matches_formula_with_zero_pixels():
    pred, gt, _ = _maps(seed=5)
    pred[:, :10] = 0.0  # p = 0 where g > 0: eps keeps the ratio finite
    gt[:, -10:] = 0.0
    eps = 2.2204e-16
    for i in range(pred.shape[0]):
        p, g = pred[i] / pred[i].sum(), gt[i] / gt[i].sum()
        assert kld(pred[i], gt[i])[0] == pytest.approx(np.sum(g * np.log(eps + g / (p + eps))), rel=1e-10)


@pytest.mark.parametrize("dtype,h,w", [(np.float64, 128, 130), (np.float64, 300, 301), (np.float32, 520, 520)])
@pytest.mark.usefixtures("saliency_path")
def test_threads_give_identical_results_and_bad_value_is_rejected(dtype, h, w):
    # the larger maps span several chunks of the SIM/KLD and statistics passes: results must still not
    # depend on the number of threads (chunking is fixed per dtype)
    pred, gt, fix = _maps(n=3, h=h, w=w)
    pred, gt = pred.astype(dtype), gt.astype(dtype)
    one = saliency_metrics(pred, gt, fixations=fix, threads=1)
    two = saliency_metrics(pred, gt, fixations=fix, threads=3)
    for k in one:
        np.testing.assert_array_equal(one[k], two[k])
    with pytest.raises(ValueError, match="threads"):
        cc(pred, gt, threads=0)


@pytest.mark.usefixtures("saliency_path")
def test_nan_in_large_batch_names_the_image_and_huge_finite_values_are_fine():
    pred, gt, fix = _maps(n=3)
    bad = pred.copy()
    bad[2, 5, 5] = np.nan
    with pytest.raises(ValueError, match=r"pred: contains NaN or inf \(image indices \[2\]\)"):
        saliency_metrics(bad, gt, fixations=fix)
    big = pred * 1e306  # sums overflow to inf, values are finite: not an error
    assert np.isfinite(auc_judd(big, fix)).all()
    neg = gt.copy()
    neg[1, 0, 0] = -1.0
    with pytest.raises(ValueError, match=r"non-negative \(negative values in images \[1\]\)"):
        kld(pred, neg)


@pytest.mark.usefixtures("saliency_path")
def test_float32_large_maps_close_to_float64():
    pred, gt, fix = _maps(n=2, h=128, w=128, seed=7)
    a = saliency_metrics(pred, gt, fixations=fix)
    b = saliency_metrics(torch.tensor(pred, dtype=torch.float32), gt.astype(np.float32), fixations=fix)
    for k in ("auc_judd", "nss", "cc", "sim", "kld"):
        np.testing.assert_allclose(b[k], a[k], atol=1e-5, rtol=0, err_msg=k)


@pytest.mark.usefixtures("saliency_path")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_prediction_without_gt_is_named(dtype, bad):
    # auc_judd / nss take no ground truth: the error must still name the image (it crashed on the numba path)
    pred, _, fix = _maps(n=3)
    pred = pred.astype(dtype)
    pred[1, 40, 40] = bad
    for call in (lambda: auc_judd(pred, fix), lambda: nss(pred, fix)):
        with pytest.raises(ValueError, match=r"pred: contains NaN or inf \(image indices \[1\]\)"):
            call()


@pytest.mark.usefixtures("saliency_path")
def test_nan_in_multi_chunk_float64_map_is_reported_before_any_metric():
    # a float64 map of > 131072 pixels spans several statistics chunks: its NaN must reach the check (Python's
    # min() of chunk minima dropped it, and the NaN then went through the uint32 key cast with a warning)
    import warnings

    rng = np.random.default_rng(0)
    pred = rng.random((2, 400, 400))
    pred[1, 0, 0] = np.nan
    fix = np.zeros(pred.shape, bool)
    fix[:, 3, 3] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"image indices \[1\]"):
            auc_judd(pred, fix)


@pytest.mark.usefixtures("saliency_path")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_maps_follow_the_conventions_exactly(dtype):
    # a constant whose sum over 4900 pixels does not reproduce it exactly (NSS came out +-1 instead of 0, and CC
    # ~1e-16 instead of NaN for a constant ground truth)
    rng = np.random.default_rng(1)
    const = np.full((1, 70, 70), 3.4938435887209565, dtype)
    other = rng.random((1, 70, 70)).astype(dtype)
    fix = rng.random((1, 70, 70)) > 0.95
    assert nss(const, fix)[0] == 0.0
    assert cc(const, other)[0] == 0.0  # constant prediction
    assert np.isnan(cc(other, const)[0])  # constant ground truth: undefined
    per = saliency_metrics(const, other, fixations=fix)
    assert per["nss"][0] == 0.0 and per["cc"][0] == 0.0


@pytest.mark.usefixtures("saliency_path")
@pytest.mark.parametrize("scale", [1e25, 1e-30])
def test_float32_maps_whose_squares_leave_float32_range_match_float64(scale):
    # squares of ~1e25 overflow float32 and squares of ~1e-30 underflow: CC came out NaN and NSS 0, silently.
    # Such batches are evaluated in float64.
    pred, gt, fix = _maps(n=2)
    p32, g32 = (pred * scale).astype(np.float32), (gt * scale).astype(np.float32)
    r32 = saliency_metrics(p32, g32, fixations=fix)
    r64 = saliency_metrics(p32.astype(np.float64), g32.astype(np.float64), fixations=fix)
    for k in ("auc_judd", "nss", "cc", "sim", "kld"):
        assert np.isfinite(r32[k]).all(), k
        np.testing.assert_allclose(r32[k], r64[k], rtol=1e-9, err_msg=k)


def test_ddof_is_checked_and_byte_order_keeps_float64():
    pred, gt, fix = _maps(n=2)
    with pytest.raises(ValueError, match="ddof"):
        nss(pred, fix, ddof=pred[0].size)
    with pytest.raises(ValueError, match="ddof"):
        saliency_metrics(pred, gt, fixations=fix, ddof=2)
    swapped = pred.astype(pred.dtype.newbyteorder(">"))  # same values, big-endian: must stay float64
    np.testing.assert_array_equal(nss(swapped, fix), nss(pred, fix))
    np.testing.assert_array_equal(cc(swapped, gt), cc(pred, gt))


# ---------------------------------------------------------------- sentence similarity

A = ["a hand with six fingers", "the sky is overexposed", "the text on the sign is garbled",
     "a face with a melted eye", "the cup handle is duplicated", "the wheel is warped", "fur looks plastic"]
B = ["the hand has an extra finger", "blown-out sky", "unreadable letters on a sign", "an eye melts",
     "two handles on the mug", "a bent bicycle wheel", "the cat fur is smooth like plastic"]


def test_embedding_cache_embeds_each_text_once(monkeypatch):
    sim_ = SentenceSimilarity(cache_size=1000)
    calls = []
    orig = SentenceSimilarity._encode

    def counting(self, texts):
        calls.append(list(texts))
        return orig(self, texts)

    monkeypatch.setattr(SentenceSimilarity, "_encode", counting)
    refs = [f"reference {i} about a {w}" for i, w in enumerate(["hand", "sky", "sign"])]
    a = [f"completion {i}" for i in range(6)]
    b = [refs[i // 2] for i in range(6)]  # GRPO-like: each reference repeated for 2 completions
    first = sim_(a, b)
    assert sorted(calls[0]) == sorted(set(a) | set(refs))  # distinct texts only
    second = sim_(a[::-1], b[::-1])  # all cached: no model call
    assert len(calls) == 1
    np.testing.assert_allclose(second, first[::-1], atol=1e-7)
    # same values as without the cache (independent instance, cache off)
    np.testing.assert_allclose(SentenceSimilarity(cache_size=0)(a, b), first, atol=1e-6)


def test_bfloat16_close_to_float32_and_threads_restored():
    ref = SentenceSimilarity(cache_size=0)(A, B)
    before = torch.get_num_threads()
    fast = SentenceSimilarity(dtype="bfloat16", num_threads=1, cache_size=0)(A, B)
    assert torch.get_num_threads() == before
    assert np.abs(fast - ref).max() <= 0.02
    assert np.argmax(fast) == np.argmax(ref)


@pytest.mark.parametrize("kw, match", [({"dtype": "float16"}, "dtype"), ({"cache_size": -1}, "cache_size"),
                                       ({"num_threads": 0}, "num_threads"), ({"batch_size": 0}, "batch_size")])
def test_sentence_similarity_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        SentenceSimilarity(**kw)


def _blobs(size=512):
    yy, xx = np.mgrid[0:size, 0:size]

    def blob(cy, cx, s):
        return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * s * s))

    pred = (blob(200, 300, 60) + 0.5 * blob(400, 100, 30))[None]
    gt = (blob(220, 280, 40) + 0.3 * blob(50, 450, 70))[None]
    fix = np.zeros_like(pred, dtype=bool)
    fix[0, 210:230:5, 270:290:5] = True
    return pred, gt, fix


@pytest.mark.usefixtures("saliency_path")
def test_float32_maps_agree_with_float64_on_large_maps():
    # 512^2 maps span many float32 dot products of the statistics and KLD passes: a float32 dot accumulated
    # over a whole 262k chunk drifted by up to 1.6e-5 (NSS); blocked float32 sums keep every metric close
    pred, gt, fix = _blobs()
    r64 = saliency_metrics(pred, gt, fixations=fix)
    r32 = saliency_metrics(pred.astype(np.float32), gt.astype(np.float32), fixations=fix)
    # (AUC-Judd is left out: rounding the map to float32 creates ties between pixels, a different input)
    for k, tol in (("cc", 2e-6), ("kld", 2e-6), ("nss", 5e-6), ("sim", 1e-6)):
        assert abs(r32[k][0] - r64[k][0]) <= tol, (k, r32[k][0], r64[k][0])


@pytest.mark.usefixtures("saliency_path")
def test_huge_finite_float32_maps_are_evaluated_like_float64():
    # values near the float32 maximum: the map sums overflow float32, so the batch is evaluated in float64
    # (it used to come out silently wrong: NSS 0, KLD 0.19 instead of 23.4)
    rng = np.random.default_rng(0)
    p = rng.random((2, 200, 300)).astype(np.float32)
    g = rng.random((2, 200, 300)).astype(np.float32)
    fix = rng.random((2, 200, 300)) < 1e-2
    p[0, 0, :1024] = 3e38
    r32 = saliency_metrics(p, g, fixations=fix)
    r64 = saliency_metrics(p.astype(np.float64), g.astype(np.float64), fixations=fix)
    for k in ("auc_judd", "nss", "cc", "sim", "kld"):
        np.testing.assert_allclose(r32[k], r64[k], rtol=1e-9, err_msg=k)
