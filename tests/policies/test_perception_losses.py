"""The papers' saliency losses: sigmoid applied once, KLD(target || prediction), Eq. 2 / Eq. 6 weights.

Each check is also run on a transcription of the public EditRefiner loss (sigmoid again on the decoder's
probabilities, BCE-with-logits on probabilities, KLD arguments swapped) to show the check catches it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlkit.metrics import kld as metric_kld
from rlkit.policies import eq2_weights, eq6_weights, kld_loss, saliency_loss


def _public_code_loss(prob: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """EditRefiner's published loss as ANCHORS.md describes it: ``prob`` is already a sigmoid output."""
    l1 = (torch.sigmoid(prob) - target).abs().mean()  # second sigmoid
    bce = F.binary_cross_entropy_with_logits(prob, target)  # probabilities taken for logits
    p = prob.flatten(1) / prob.flatten(1).sum(1, keepdim=True)
    g = target.flatten(1) / target.flatten(1).sum(1, keepdim=True)
    kld = (p * torch.log(1e-7 + p / (g + 1e-7))).sum(1).mean()  # arguments swapped: KLD(pred || target)
    return {"l1": l1, "bce": bce, "kld": kld}


def _ours(prob: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    logits = torch.logit(prob.double()).float()
    _, comps = saliency_loss(logits, target, {"l1": 1.0, "bce": 1.0, "kld": 1.0})
    return comps


def _target() -> torch.Tensor:
    g = torch.linspace(0.05, 0.95, 64).reshape(1, 1, 8, 8)
    return torch.cat([g, g.flip(-1) ** 2]).clamp(0.01, 0.99)


def _optimum_is_exact(loss_fn) -> bool:
    """A prediction equal to the target must give L1 = 0, KLD = 0 and BCE = the target's own entropy."""
    t = _target()
    c = loss_fn(t.clone(), t)
    entropy = float(-(t * t.log() + (1 - t) * (1 - t).log()).mean())
    return (abs(float(c["l1"])) < 1e-6 and abs(float(c["kld"])) < 1e-5
            and abs(float(c["bce"]) - entropy) < 1e-5)


def test_a_prediction_equal_to_the_target_is_the_optimum():
    assert _optimum_is_exact(_ours)
    assert not _optimum_is_exact(_public_code_loss)  # the double sigmoid moves the optimum


def test_gradient_vanishes_at_the_optimum_for_every_term():
    t = _target()
    logits = torch.logit(t.double()).float().requires_grad_(True)
    for term in ("bce", "kld", "mse"):
        loss, _ = saliency_loss(logits, t, {term: 1.0})
        (g,) = torch.autograd.grad(loss, logits)
        assert float(g.abs().max()) < 1e-5, term


def test_kld_is_target_first_hand_worked():
    # g = (0.5, 0.5), p = (0.9, 0.1): KLD(g||p) = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1) = 0.5108;
    # the swapped KLD(p||g) = 0.9 ln 1.8 + 0.1 ln 0.2 = 0.3681
    g = torch.tensor([0.5, 0.5]).reshape(1, 1, 1, 2)
    p = torch.tensor([0.9, 0.1]).reshape(1, 1, 1, 2)
    want = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert float(kld_loss(p, g)) == pytest.approx(want, abs=1e-6)
    assert float(_public_code_loss(p, g)["kld"]) == pytest.approx(0.9 * math.log(1.8) + 0.1 * math.log(0.2),
                                                                  abs=1e-5)
    # the loss's KLD term on logits is the same number
    _, comps = saliency_loss(torch.logit(p), g, {"kld": 1.0})
    assert float(comps["kld"]) == pytest.approx(want, abs=1e-5)


def test_kld_matches_the_benchmark_metric():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 1.0, (5, 16, 16)).astype(np.float32)
    g = (rng.uniform(size=(5, 16, 16)) ** 4).astype(np.float32)
    ours = kld_loss(torch.from_numpy(p)[:, None], torch.from_numpy(g)[:, None])[:, 0].numpy()
    np.testing.assert_allclose(ours, metric_kld(p, g), rtol=1e-4)


def test_weights_are_the_papers_equations():
    assert eq2_weights(0.3) == {"mse": 0.3, "kld": pytest.approx(0.7)}
    w = eq6_weights(0.2, 0.5)
    assert w == {"l1": 0.2, "bce": 0.5, "kld": pytest.approx(0.3)}
    t = _target()
    logits = torch.randn_like(t)
    p = torch.sigmoid(logits)
    loss, c = saliency_loss(logits, t, w)
    ref = 0.2 * (p - t).abs().mean() + 0.5 * F.binary_cross_entropy(p, t) + 0.3 * kld_loss(p, t).mean()
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        eq2_weights(1.5)
    with pytest.raises(ValueError, match="alpha \\+ beta"):
        eq6_weights(0.7, 0.5)


def test_empty_target_skips_kld_and_keeps_pixel_terms():
    t = _target()
    t[1] = 0.0
    logits = torch.zeros_like(t)
    loss, c = saliency_loss(logits, t, {"mse": 0.5, "kld": 0.5})
    assert float(c["kld"]) == pytest.approx(float(kld_loss(torch.sigmoid(logits[:1]), t[:1]).mean()), rel=1e-5)
    assert torch.isfinite(loss) and float(c["mse"]) > 0
    assert torch.isnan(kld_loss(torch.sigmoid(logits), t)[1]).all()
    loss, c = saliency_loss(logits, torch.zeros_like(t), {"mse": 0.5, "kld": 0.5})
    assert float(c["kld"]) == 0.0 and float(loss) == pytest.approx(0.5 * 0.25)


def test_bad_inputs_are_named():
    t = _target()
    bad = t.clone()
    bad[0, 0, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="target.*NaN"):
        saliency_loss(torch.zeros_like(t), bad, {"mse": 1.0})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        saliency_loss(torch.zeros_like(t), t * 2, {"mse": 1.0})
    with pytest.raises(ValueError, match="shape"):
        saliency_loss(torch.zeros(2, 1, 4, 4), t, {"mse": 1.0})
    with pytest.raises(ValueError, match="unknown saliency loss term"):
        saliency_loss(torch.zeros_like(t), t, {"dice": 1.0})
    with pytest.raises(ValueError, match="prediction contains NaN"):
        saliency_loss(torch.full_like(t, float("nan")), t, {"mse": 1.0})
