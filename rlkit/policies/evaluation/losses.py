"""Stage 2 of EditRefiner's evaluation agent: ``L = sum_d (MSE_d + (1 - PLCC_d))`` (Eq. 8).

Scores enter the loss on [0, 1] (the head's sigmoid output, i.e. score / 100), so both terms are O(1).
PLCC needs a spread of samples: it is computed over the batch together with an optional ``memory`` of recent
(detached) predictions and targets, as EditRefiner's public code does with a queue of 256 gathered across GPUs;
gradients flow through the batch's part only. ``min_std`` (0.02, the public code's guard): a dimension whose
targets spread less than that contributes no PLCC term for that step (the correlation is undefined there), and
the predictions' standard deviation is floored at it in the denominator, so a near-constant head (as at
initialisation) still gets the correlation's gradient instead of a division by ~0. The MSE term always counts.
"""

from __future__ import annotations

import torch

__all__ = ["pearson", "score_loss"]


def pearson(x: torch.Tensor, y: torch.Tensor, *, min_std: float = 0.0, eps: float = 1e-12) -> torch.Tensor:
    """Pearson correlation of two 1-D tensors (differentiable); ``x``'s (population) standard deviation is
    floored at ``min_std`` in the denominator."""
    xc, yc = x - x.mean(), y - y.mean()
    sx = xc.pow(2).mean().sqrt().clamp(min=min_std)
    sy = yc.pow(2).mean().sqrt()
    return (xc * yc).mean() / (sx * sy + eps)


def score_loss(pred: torch.Tensor, target: torch.Tensor, *, names: tuple[str, ...] | None = None,
               memory_pred: torch.Tensor | None = None, memory_target: torch.Tensor | None = None,
               min_std: float = 0.02) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 8 on (N, D) predictions and targets in [0, 1]; returns the loss and detached components
    ``mse/<dim>`` and ``plcc/<dim>`` (the correlation; absent for a dimension whose PLCC was skipped)."""
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"score_loss: predictions {tuple(pred.shape)} and targets {tuple(target.shape)} must be the "
                         "same (N, D) shape")
    names = names or tuple(str(d) for d in range(pred.shape[1]))
    target = target.to(pred.dtype)
    if memory_pred is not None and len(memory_pred):
        all_pred = torch.cat([pred, memory_pred.to(pred)], 0)
        all_target = torch.cat([target, memory_target.to(pred)], 0)  # type: ignore[union-attr]
    else:
        all_pred, all_target = pred, target
    loss = pred.new_zeros(())
    comps: dict[str, torch.Tensor] = {}
    for d, name in enumerate(names):
        mse = (pred[:, d] - target[:, d]).pow(2).mean()
        loss = loss + mse
        comps[f"mse/{name}"] = mse.detach()
        p, t = all_pred[:, d], all_target[:, d]
        if len(p) >= 2 and float(t.std(correction=0)) >= min_std:
            r = pearson(p, t, min_std=min_std)
            loss = loss + (1.0 - r)
            comps[f"plcc/{name}"] = r.detach()
    return loss, comps
