"""Input validation shared by the metric modules (clear errors instead of crashes deep in torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def as_map_array(x: object, name: str) -> np.ndarray:
    """Return ``x`` as a finite (N, H, W) numpy array (float64 stays float64, anything else becomes float32).

    Accepts (H, W), (N, H, W) or (N, 1, H, W) numpy arrays, torch tensors (any device) or nested lists.
    """
    shape = tuple(getattr(x, "shape", ()))
    if isinstance(x, torch.Tensor):
        a = x.detach().cpu().numpy()
    else:
        try:
            a = np.asarray(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise TypeError(f"{name}: expected an array or tensor, got {type(x).__name__}") from exc
    if a.dtype == bool:
        a = a.view(np.uint8)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real-valued array, got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise ValueError(f"{name}: expected shape (H, W), (N, H, W) or (N, 1, H, W), got {shape or a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ValueError(f"{name}: empty map batch of shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64 if a.dtype.kind == "f" and a.dtype.itemsize >= 8 else np.float32)
    if a.dtype.kind == "f" and not np.isfinite(a.sum()) and not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a).reshape(a.shape[0], -1).all(1))[:10].tolist()
        raise ValueError(f"{name}: contains NaN or inf (image indices {bad})")
    return a


def same_shape(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    """Raise a ValueError naming both arguments when their shapes differ."""
    if a.shape != b.shape:
        raise ValueError(
            f"{na} has shape {tuple(a.shape)} but {nb} has shape {tuple(b.shape)}; they must match "
            "(resize the prediction to the ground truth first)"
        )


def as_image_batch(x: object, name: str) -> torch.Tensor:
    """Return ``x`` as a finite (N, 3, H, W) float tensor with values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except Exception as exc:  # noqa: BLE001
            raise TypeError(f"{name}: expected a tensor of shape (N, 3, H, W), got {type(x).__name__}") from exc
    t = x.detach()
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[1] != 3:
        raise ValueError(f"{name}: expected shape (N, 3, H, W) (or (3, H, W)), got {tuple(x.shape)}")
    if not t.dtype.is_floating_point:
        raise TypeError(f"{name}: expected float values in [0, 1], got dtype {t.dtype} (divide uint8 by 255)")
    if t.numel() == 0:
        raise ValueError(f"{name}: empty image batch, shape {tuple(x.shape)}")
    lo, hi = (float(v) for v in torch.aminmax(t))  # one pass; NaN propagates into both, inf shows as a bound
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name}: contains NaN or inf")
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name}: values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    return t


def as_1d(x: object, name: str) -> np.ndarray:
    """Return ``x`` as a finite 1-D float64 array."""
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of numbers, got shape {a.shape}")
    if not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a))[:10].tolist()
        raise ValueError(f"{name}: contains NaN or inf at positions {bad}")
    return a


def check_pairs(a: Sequence[object], b: Sequence[object], na: str, nb: str) -> None:
    """Raise when two parallel sequences differ in length."""
    if isinstance(a, str) or isinstance(b, str):
        raise TypeError(f"{na} and {nb} must be sequences of strings, not a single string")
    if len(a) != len(b):
        raise ValueError(f"{na} has {len(a)} items but {nb} has {len(b)}; they must be parallel")
