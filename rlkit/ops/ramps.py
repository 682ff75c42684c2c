"""The smooth ramp that mask edges and tone stages share."""

from __future__ import annotations

import torch

__all__ = ["smoothstep"]


def smoothstep(e0: float | torch.Tensor, e1: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """0 below ``e0``, 1 above ``e1``, the cubic 3t^2 - 2t^3 of t = (x - e0) / (e1 - e0) between."""
    t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
