"""Conversions between PIL images / numpy arrays and the engine's (N,3,H,W) float tensors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

__all__ = ["to_tensor", "to_pil"]


def _one(img: object, i: int) -> np.ndarray:
    if isinstance(img, Image.Image):
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    if isinstance(img, np.ndarray):
        a = img
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=-1)
        if a.ndim != 3:
            raise ValueError(f"to_tensor: image {i} must be (H,W,3) or (H,W), got shape {a.shape}")
        if a.shape[-1] not in (3, 4) and a.shape[0] in (3, 4):
            a = np.moveaxis(a, 0, -1)
        if a.shape[-1] == 4:
            a = a[..., :3]
        if a.shape[-1] != 3:
            raise ValueError(f"to_tensor: image {i} needs 3 colour channels, got shape {img.shape}")
        if a.dtype == np.uint8:
            return a.astype(np.float32) / 255.0
        if a.dtype == np.uint16:
            return a.astype(np.float32) / 65535.0
        a = a.astype(np.float32)
        if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
            raise ValueError(f"to_tensor: float image {i} must be finite and in [0,1], "
                             f"got range [{np.nanmin(a):g}, {np.nanmax(a):g}]")
        return a
    raise TypeError(f"to_tensor: image {i} must be a PIL image or numpy array, got {type(img).__name__}")


def to_tensor(images: Image.Image | np.ndarray | Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
    """PIL image, list of PIL images, (H,W,3) / (N,H,W,3) uint8 or float array -> float32 tensor (N,3,H,W) in [0,1]."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        items: Sequence[object] = list(images)
    elif isinstance(images, (Image.Image, np.ndarray)):
        items = [images]
    elif isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        items = list(images)
    else:
        raise TypeError(f"to_tensor: expected PIL image(s) or a numpy array, got {type(images).__name__}")
    if not items:
        raise ValueError("to_tensor: got an empty list of images")
    arrs = [_one(im, i) for i, im in enumerate(items)]
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
        raise ValueError(f"to_tensor: images in a batch must share one size, got {sorted(shapes)}")
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()


def to_pil(t: torch.Tensor) -> list[Image.Image]:
    """(N,3,H,W) or (3,H,W) float tensor in [0,1] -> list of RGB PIL images (values clamped, rounded)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"to_pil: expected a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or t.shape[1] != 3:
        raise ValueError(f"to_pil: expected (N,3,H,W), got shape {tuple(t.shape)}")
    a = (t.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(x, "RGB") for x in a]
