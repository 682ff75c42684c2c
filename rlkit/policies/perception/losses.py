"""The perception agents' hybrid saliency losses, with the sigmoid applied once and KLD(target || prediction).

- Agentic Retoucher, Eq. 2: ``alpha * MSE + (1 - alpha) * KLD`` (:func:`eq2_weights`).
- EditRefiner, Eq. 6: ``alpha * L1 + beta * BCE + (1 - alpha - beta) * KLD`` (:func:`eq6_weights`).

:func:`saliency_loss` takes the decoder's *logits*, turns them into probabilities once
(``p = sigmoid(logits)``), and computes every term from that one ``p``: MSE and L1 on ``p``, BCE as
``binary_cross_entropy_with_logits(logits, target)`` (the same ``p``, in the numerically stable form),
and KLD with the MIT benchmark's definition, the ground truth first:
``KLD(G || P) = sum g * log(eps + g / (p + eps))`` with ``g = G / sum G`` and ``p = P / sum P`` per map.
EditRefiner's public code applies the sigmoid a second time (its L1 term and a BCE-with-logits call on
probabilities) and passes the KLD arguments swapped; neither happens here (tests guard both).

Conventions: pixel terms (MSE, L1, BCE) are means over pixels and maps; KLD is a per-map sum averaged over
the maps whose ground truth is non-empty. A map whose ground truth is all zero has no distribution to
match: it contributes 0 to KLD (and still to the pixel terms, which push its prediction to 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = ["LOSS_TERMS", "KLD_EPS", "eq2_weights", "eq6_weights", "kld_loss", "saliency_loss", "check_loss_weights"]

LOSS_TERMS = ("mse", "l1", "bce", "kld")
KLD_EPS = 2.2204e-16  # MATLAB's eps, as MIT's KLdiv.m and rlkit.metrics.kld


def eq2_weights(alpha: float) -> dict[str, float]:
    """Agentic Retoucher Eq. 2 as term weights: ``{"mse": alpha, "kld": 1 - alpha}`` (alpha in [0, 1])."""
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"Eq. 2 alpha must be in [0, 1], got {alpha!r}")
    return {"mse": a, "kld": 1.0 - a}


def eq6_weights(alpha: float, beta: float) -> dict[str, float]:
    """EditRefiner Eq. 6 as term weights: ``{"l1": alpha, "bce": beta, "kld": 1 - alpha - beta}``."""
    a, b = float(alpha), float(beta)
    if a < 0 or b < 0 or a + b > 1.0 + 1e-9:
        raise ValueError(f"Eq. 6 needs alpha >= 0, beta >= 0 and alpha + beta <= 1, got alpha={alpha!r}, "
                         f"beta={beta!r}")
    return {"l1": a, "bce": b, "kld": max(0.0, 1.0 - a - b)}


def check_loss_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Validated ``{term: weight}``: known terms only, finite non-negative weights, at least one positive."""
    out = {}
    for k, v in weights.items():
        if k not in LOSS_TERMS:
            raise ValueError(f"unknown saliency loss term {k!r}; expected some of {LOSS_TERMS}")
        f = float(v)
        if not (f >= 0.0 and f < float("inf")):
            raise ValueError(f"saliency loss weight {k!r} must be finite and >= 0, got {v!r}")
        out[k] = f
    if not any(out.values()):
        raise ValueError(f"saliency loss weights are all zero: {dict(weights)}")
    return out


def _as_maps(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"{what} must be (N, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
    return x


def _check_target(target: torch.Tensor) -> None:
    if not torch.isfinite(target).all():
        bad = (~torch.isfinite(target)).nonzero()[0].tolist()
        raise ValueError(f"target saliency map contains NaN or inf (first at index {bad})")
    lo, hi = float(target.min()), float(target.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"target saliency maps must be in [0, 1], got min {lo:.4g}, max {hi:.4g}")


def kld_loss(prob: torch.Tensor, target: torch.Tensor, *, eps: float = KLD_EPS) -> torch.Tensor:
    """Per-map KLD(target || prob), shape (N, C): both maps normalised to sum 1 over (H, W).

    ``sum g * log(eps + g / (p + eps))`` (MIT ``KLdiv.m``); NaN where the target map sums to 0.
    """
    prob, target = _as_maps(prob, "prob"), _as_maps(target, "target")
    p = prob.flatten(2).float()
    g = target.flatten(2).float()
    psum = p.sum(-1, keepdim=True)
    gsum = g.sum(-1, keepdim=True)
    p = p / psum.clamp_min(torch.finfo(p.dtype).tiny)
    g = g / gsum.clamp_min(torch.finfo(g.dtype).tiny)
    out = (g * torch.log(eps + g / (p + eps))).sum(-1)
    return torch.where(gsum[..., 0] > 0, out, torch.full_like(out, float("nan")))


def saliency_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: Mapping[str, float],
    *,
    from_logits: bool = True,
    map_names: Sequence[str] | None = None,
    eps: float = KLD_EPS,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted hybrid loss over (N, C, H, W) maps and its components (detached 0-d tensors, for logging).

    ``logits`` are pre-sigmoid decoder outputs (``from_logits=False``: probabilities in [0, 1], for models
    that end in a sigmoid); ``target`` is the ground-truth map in [0, 1] of the same shape. ``weights`` maps
    terms of :data:`LOSS_TERMS` to weights (:func:`eq2_weights`, :func:`eq6_weights`). Components are
    returned per term and, with ``map_names`` for C > 1 channels, per ``term/name`` too.
    """
    w = check_loss_weights(weights)
    logits, target = _as_maps(logits, "logits"), _as_maps(target, "target")
    if logits.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(logits.shape)} differs from target shape {tuple(target.shape)}")
    if not torch.isfinite(logits).all():  # a diverged model: say so instead of a NaN loss several steps later
        raise ValueError("prediction contains NaN or inf (check the model's inputs and learning rate)")
    _check_target(target)
    target = target.to(logits.dtype)
    if from_logits:
        prob = torch.sigmoid(logits)  # the only sigmoid
    else:
        if float(logits.min()) < 0.0 or float(logits.max()) > 1.0:
            raise ValueError("from_logits=False needs probabilities in [0, 1]")
        prob = logits
    per_term: dict[str, torch.Tensor] = {}  # each (C,): mean over the batch for that map
    if w.get("mse"):
        per_term["mse"] = ((prob - target) ** 2).mean((0, 2, 3))
    if w.get("l1"):
        per_term["l1"] = (prob - target).abs().mean((0, 2, 3))
    if w.get("bce"):
        if from_logits:
            bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            bce = F.binary_cross_entropy(prob.clamp(1e-7, 1 - 1e-7), target, reduction="none")
        per_term["bce"] = bce.mean((0, 2, 3))
    if w.get("kld"):
        k = kld_loss(prob, target, eps=eps)  # (N, C), NaN for empty targets
        valid = ~torch.isnan(k)
        n = valid.sum(0)
        per_term["kld"] = torch.where(valid, k, torch.zeros_like(k)).sum(0) / n.clamp_min(1)
    total = sum(w[t] * v.mean() for t, v in per_term.items())
    comps = {t: v.detach().mean() for t, v in per_term.items()}  # no host sync here: the trainer logs them
    if map_names is not None and len(map_names) > 1:
        if len(map_names) != logits.shape[1]:
            raise ValueError(f"map_names has {len(map_names)} names for {logits.shape[1]} channels")
        for t, v in per_term.items():
            for i, name in enumerate(map_names):
                comps[f"{t}/{name}"] = v.detach()[i]
    return total, comps
