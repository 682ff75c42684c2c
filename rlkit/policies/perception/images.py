"""Input images for the saliency nets: PIL images, numpy arrays or torch tensors -> float RGB tensors in [0, 1].

Documented conversions (no silent surprises):

- PIL images of any mode are converted with ``Image.convert("RGB")``: greyscale is replicated to three
  channels, palette images are expanded, and the alpha channel of RGBA/LA images is dropped.
- Arrays/tensors are one image (H, W), (H, W, C) for numpy, (C, H, W) for torch, or a batch
  (N, H, W, C) / (N, C, H, W). One channel is replicated; four channels (RGBA) are rejected with an error
  (drop or composite the alpha yourself, as intended). uint8 is scaled by 1/255; float values must lie in
  [0, 1]; NaN/inf are rejected.
- Each side must be at least ``MIN_SIDE`` pixels.

Errors are ``ValueError`` / ``TypeError`` naming the argument and the image index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["MIN_SIDE", "ImageInput", "as_rgb_list", "resize_stack", "resize_maps"]

MIN_SIDE = 8
ImageInput = Image.Image | np.ndarray | torch.Tensor | Sequence[Image.Image | np.ndarray | torch.Tensor]


def _one(x: object, where: str, channels_last: bool) -> torch.Tensor:
    """One image as a float32 (3, H, W) tensor in [0, 1]."""
    if isinstance(x, Image.Image):
        t = torch.from_numpy(np.asarray(x.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
    elif isinstance(x, (np.ndarray, torch.Tensor)):
        if isinstance(x, np.ndarray):
            t = torch.as_tensor(x if x.flags.writeable else x.copy())  # read-only arrays (np.asarray(PIL))
        else:
            t = x.detach().cpu()
        if t.ndim == 2:
            t = t[None]
        elif t.ndim == 3 and channels_last:
            t = t.permute(2, 0, 1)
        elif t.ndim != 3:
            raise ValueError(f"{where}: expected an image of 2 or 3 dimensions, got shape {tuple(t.shape)}")
        if t.shape[0] == 4:
            raise ValueError(f"{where}: 4 channels (RGBA?) of shape {tuple(t.shape)}; drop or composite the alpha "
                             "channel first (PIL RGBA images have it dropped)")
        if t.shape[0] not in (1, 3):
            raise ValueError(f"{where}: expected 1 or 3 channels, got shape {tuple(t.shape)}"
                             + (" (numpy images are (H, W, C))" if channels_last else " (tensors are (C, H, W))"))
    else:
        raise TypeError(f"{where}: expected a PIL image, numpy array or torch tensor, got {type(x).__name__}")
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    elif t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in (torch.int16, torch.int32, torch.int64)):
        raise TypeError(f"{where}: unsupported dtype {t.dtype}")
    else:
        t = t.float()
        if not torch.isfinite(t).all():
            raise ValueError(f"{where}: contains NaN or inf")
        lo, hi = float(t.min()), float(t.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{where}: float images must be in [0, 1], got min {lo:.4g}, max {hi:.4g} "
                             "(uint8 images are scaled by 1/255)")
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    h, w = t.shape[1:]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"{where}: image of {w}x{h} pixels is too small (each side must be >= {MIN_SIDE})")
    return t.contiguous()


def as_rgb_list(images: ImageInput, *, what: str = "images") -> list[torch.Tensor]:
    """A list of float32 (3, H, W) tensors in [0, 1] from one image, a batch array/tensor or a sequence."""
    if isinstance(images, Image.Image):
        return [_one(images, f"{what}[0]", True)]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return [_one(im, f"{what}[{i}]", True) for i, im in enumerate(images)]
        return [_one(images, f"{what}[0]", True)]
    if isinstance(images, torch.Tensor):
        if images.ndim == 4:
            return [_one(im, f"{what}[{i}]", False) for i, im in enumerate(images)]
        return [_one(images, f"{what}[0]", False)]
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise TypeError(f"{what}: expected a PIL image, an array/tensor or a sequence of them, "
                        f"got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError(f"{what}: no images given")
    return [_one(im, f"{what}[{i}]", isinstance(im, np.ndarray)) for i, im in enumerate(images)]


def resize_stack(images: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, h, w) batch at ``size`` = (h, w): bilinear with antialiasing (a no-op for images already that size)."""
    out = []
    for t in images:
        if tuple(t.shape[1:]) == tuple(size):
            out.append(t)
        else:
            out.append(F.interpolate(t[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0])
    return torch.stack(out).clamp_(0.0, 1.0)


def resize_maps(maps: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Per-image (C, H_i, W_i) float32 numpy maps in [0, 1] from (N, C, h, w) probabilities (bilinear)."""
    out = []
    for m, (h, w) in zip(maps, sizes):
        if tuple(m.shape[1:]) != (h, w):
            m = F.interpolate(m[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0]
        out.append(m.float().clamp_(0.0, 1.0).cpu().numpy())
    return out
