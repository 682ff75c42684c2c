import math

import numpy as np
import pytest
import torch
from scipy import stats

from rlkit.metrics import (
    SentenceSimilarity,
    delta_e76,
    delta_e2000,
    editrefiner_overall,
    krcc,
    l1,
    l2,
    logistic4,
    meteor,
    plcc,
    psnr,
    rgb_to_lab,
    rouge_l,
    sentence_similarity,
    srcc,
    ssim,
    type_accuracy,
    viescore_overall,
)

# ---------------------------------------------------------------- text


def test_type_accuracy_normalises_labels_and_counts_none_wrong():
    pred = ["Hand Distortion", "face-distortion", None, "text_anomaly"]
    ref = ["hand_distortion", "face_distortion", "limb_deformity", "object_redundancy"]
    assert type_accuracy(pred, ref) == 0.5
    with pytest.raises(ValueError, match="parallel"):
        type_accuracy(["a"], ["a", "b"])


def test_rouge_l_matches_rouge_score_and_hand_value():
    from rouge_score import rouge_scorer

    preds = ["the cat sat on the mat", "a warped hand with six fingers", "nothing"]
    refs = ["the cat is on the mat", "the hand has six fingers", "blurred face"]
    ref_scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = [ref_scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)]
    np.testing.assert_allclose(rouge_l(preds, refs), expected)
    # LCS("the cat sat on the mat", "the cat is on the mat") = 5 of 6 tokens each -> F = 5/6
    assert rouge_l(preds, refs)[0] == pytest.approx(5 / 6)
    assert rouge_l(preds, refs)[2] == 0.0
    with pytest.raises(TypeError, match=r"preds: items \[1\] are not strings"):
        rouge_l(["a", None], ["a", "b"])


def test_meteor_uses_wordnet_synonyms():
    # identical sentences score close to 1; a WordNet synonym (car/auto) counts as a match, an unrelated word not.
    # Hand-worked: 5 of 5 unigrams matched in one chunk -> Fmean 1, penalty 0.5 * (1/5)^3 = 0.004
    same = meteor(["a red auto is parked"], ["a red auto is parked"])[0]
    syn = meteor(["a red car is parked"], ["a red auto is parked"])[0]
    other = meteor(["a red cat is parked"], ["a red auto is parked"])[0]
    assert same == pytest.approx(0.996)
    assert syn == pytest.approx(0.996)
    # 4 of 5 matched in 2 chunks: Fmean 0.8, penalty 0.5 * (2/4)^3 = 0.0625 -> 0.75
    assert other == pytest.approx(0.75)
    # multiple references: best one is used
    assert meteor(["a large dog"], [["a cat", "a large dog"]])[0] > 0.9


def test_meteor_without_wordnet_names_the_fix(monkeypatch, tmp_path):
    import nltk

    import rlkit.metrics.text as text

    monkeypatch.setattr(text, "_WORDNET_OK", False)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    from nltk.corpus.util import LazyCorpusLoader

    # a fresh loader that searches only an empty directory: nltk raises its real LookupError
    monkeypatch.setattr("nltk.corpus.wordnet", LazyCorpusLoader("wordnet", WordNetCorpusReader, None))
    with pytest.raises(RuntimeError, match="install_wordnet.sh"):
        meteor(["a"], ["a"])


def test_sentence_similarity_minilm():
    a = ["a hand with six fingers", "the sky is overexposed", "a hand with six fingers"]
    b = ["the hand has an extra finger", "the sky is overexposed", "a bowl of soup on a table"]
    s = sentence_similarity(a, b)
    assert s.shape == (3,)
    assert s[1] == pytest.approx(1.0, abs=1e-5)
    assert s[0] > s[2] + 0.2
    # independent check: cosine of the embeddings computed by sentence-transformers directly
    model = SentenceSimilarity().model
    ea, eb = model.encode(a[:1]), model.encode(b[:1])
    cos = float(ea[0] @ eb[0] / np.linalg.norm(ea[0]) / np.linalg.norm(eb[0]))
    assert s[0] == pytest.approx(cos, abs=1e-5)
    # repeated sentences are embedded once; results do not depend on the batch they came in
    s2 = sentence_similarity(a + a, b + b)
    np.testing.assert_allclose(s2, np.concatenate([s, s]), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="model_path"):
        SentenceSimilarity(model_path="/nonexistent/model")(["a"], ["b"])


# ---------------------------------------------------------------- correlation


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.random(40)
    y = x + 0.3 * rng.random(40)
    y[:5] = y[5]  # ties
    assert srcc(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert krcc(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
    assert plcc(x, y) == pytest.approx(stats.pearsonr(x, y).statistic)
    with pytest.raises(ValueError, match="parallel"):
        srcc([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        plcc([1, 2, float("nan")], [1, 2, 3])


def test_plcc_logistic_linearises_a_monotonic_curve():
    x = np.linspace(-3, 3, 50)
    y = logistic4(x, 90.0, 10.0, 0.5, 0.3)
    assert plcc(x, y) < 0.95
    assert plcc(x, y, logistic=True) == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------- image


def _imgs(n=2, h=32, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, 3, h, w, generator=g, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(n, 3, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    return a, b


def test_l1_l2_psnr_against_numpy_and_skimage():
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _imgs()
    np.testing.assert_allclose(l1(a, b).numpy(), np.abs(a.numpy() - b.numpy()).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(l2(a, b).numpy(), ((a.numpy() - b.numpy()) ** 2).mean(axis=(1, 2, 3)))
    for i in range(2):
        ref = peak_signal_noise_ratio(b[i].numpy(), a[i].numpy(), data_range=1.0)
        assert psnr(a, b)[i].item() == pytest.approx(ref, rel=1e-10)
    assert math.isinf(psnr(a, a)[0].item())


def test_ssim_against_skimage():
    from skimage.metrics import structural_similarity

    a, b = _imgs(h=30, w=37)
    ours = ssim(a, b)
    for i in range(2):
        ref = structural_similarity(
            a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)
    assert ssim(a.float(), b.float())[0].item() == pytest.approx(ours[0].item(), abs=1e-5)
    assert ssim(a, a)[0].item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_lab_and_delta_e_against_skimage():
    from skimage.color import deltaE_cie76, deltaE_ciede2000, rgb2lab

    a, b = _imgs(h=16, w=16)
    # include greys (chroma 0) and saturated primaries
    a[0, :, 0, :] = 0.5
    b[0, :, 0, :4] = 0.5
    a[0, :, 1, 0] = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    la = rgb2lab(a[0].permute(1, 2, 0).numpy())
    np.testing.assert_allclose(rgb_to_lab(a)[0].permute(1, 2, 0).numpy(), la, atol=1e-8)
    for i in range(2):
        x, y = rgb2lab(a[i].permute(1, 2, 0).numpy()), rgb2lab(b[i].permute(1, 2, 0).numpy())
        assert delta_e2000(a, b)[i].item() == pytest.approx(deltaE_ciede2000(x, y).mean(), rel=1e-8)
        assert delta_e76(a, b)[i].item() == pytest.approx(deltaE_cie76(x, y).mean(), rel=1e-8)


def test_ciede2000_sharma_reference_pairs():
    from rlkit.metrics.image import _ciede2000

    # Sharma, Wu & Dalal (2005), Table 1, pairs 1, 7, 17, 25
    lab1 = torch.tensor([[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0], [60.2574, -34.0099, 36.2677]])
    lab2 = torch.tensor([[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0], [60.4626, -34.1751, 39.4387]])
    got = _ciede2000(lab1.double().view(4, 3, 1, 1), lab2.double().view(4, 3, 1, 1)).flatten()
    np.testing.assert_allclose(got.numpy(), [2.0425, 2.3669, 27.1492, 1.2644], atol=1e-4)


def test_image_metric_input_errors():
    a, b = _imgs()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        l1(a * 2, b)
    with pytest.raises(ValueError, match="must match"):
        l2(a, b[:, :, :10])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        psnr(a[:, :1], b[:, :1])
    with pytest.raises(TypeError, match="uint8"):
        delta_e76((a * 255).to(torch.uint8), b)


# ---------------------------------------------------------------- overall scores


def test_overall_scores():
    assert editrefiner_overall(80.0, 60.0, 90.0) == pytest.approx(80**0.3 * 60**0.4 * 90**0.3)
    assert editrefiner_overall(50.0, 50.0, 50.0) == pytest.approx(50.0)
    np.testing.assert_allclose(viescore_overall([4.0, 9.0], [9.0, 1.0]), [6.0, 3.0])
    with pytest.raises(ValueError, match="non-negative"):
        viescore_overall(-1.0, 2.0)
