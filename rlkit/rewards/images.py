"""Image plumbing shared by image-aware rewards and the GRM: convert inputs, render programs in batches."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from rlkit.ops import EditProgram, apply_program

__all__ = ["as_tensor", "as_tensors", "as_pil", "render_programs", "ImageLike"]

#: an image a reward accepts: PIL, an HxWx3 array or a (3,H,W) / (1,3,H,W) tensor in [0, 1]
ImageLike = Image.Image | np.ndarray | torch.Tensor


def as_tensor(image: ImageLike, *, where: str = "image", check: bool = True) -> torch.Tensor:
    """One image (PIL, HxWx3 array, (3,H,W) or (1,3,H,W) tensor) as a float (3,H,W) tensor in [0, 1].

    ``check`` verifies the value range of tensors (one fused min/max pass); values outside [0, 1] raise.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"{where}: expected a (3,H,W) tensor, got shape {tuple(t.shape)}")
        t = t.float()
        if check and t.numel():
            lo, hi = (float(v) for v in torch.aminmax(t))  # NaN propagates into both
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{where}: tensor values must be finite (found NaN or inf)")
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise ValueError(f"{where}: tensor values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]")
        return t.cpu()
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"{where}: expected an HxWx3 array, got shape {arr.shape}")
        arr = arr[..., :3]
        arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
        if arr.size and not np.isfinite(arr.min() + arr.max()):
            raise ValueError(f"{where}: float array values must be finite (found NaN or inf)")
        if arr.size and (arr.min() < -1e-6 or arr.max() > 1 + 1e-6):
            raise ValueError(f"{where}: float array values must lie in [0, 1]")
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()
    raise TypeError(f"{where}: cannot use {type(image).__name__} as an image (PIL, numpy HxWx3 or torch (3,H,W))")


def as_tensors(images: Sequence[ImageLike | None], *, what: str = "image", check: bool = True
               ) -> list[torch.Tensor | None]:
    """:func:`as_tensor` for each image (None stays None), converting each distinct object once
    (the G completions of a GRPO group share their source and target images).

    Tensors given as tensors are range-checked together, one pass per image size instead of one per image;
    a bad one is then named by its sample index as :func:`as_tensor` would.
    """
    seen: dict[int, torch.Tensor] = {}
    first: dict[int, int] = {}  # object -> first sample index (for the error message)
    out: list[torch.Tensor | None] = []
    for i, img in enumerate(images):
        if img is None:
            out.append(None)
            continue
        key = id(img)
        if key not in seen:
            first[key] = i
            seen[key] = as_tensor(img, where=f"{what} of sample {i}", check=False)
        out.append(seen[key])
    if check:
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for key, t in seen.items():
            if isinstance(images[first[key]], torch.Tensor) and t.numel():
                by_shape.setdefault(tuple(t.shape), []).append(key)
        for keys in by_shape.values():
            lo, hi = (float(v) for v in torch.aminmax(torch.stack([seen[k] for k in keys])))  # NaN: both
            if not (math.isfinite(lo) and math.isfinite(hi) and lo >= -1e-6 and hi <= 1 + 1e-6):
                for k in keys:  # name the first bad one
                    as_tensor(seen[k], where=f"{what} of sample {first[k]}")
    return out


def as_pil(image: ImageLike, *, where: str = "image") -> Image.Image:
    """One image as an RGB ``PIL.Image`` (PIL passes through)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    t = as_tensor(image, where=where)
    arr = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr)


def render_programs(sources: Sequence[ImageLike | None], programs: Sequence[EditProgram | None], *,
                    seed: int | None = 0) -> list[torch.Tensor | None]:
    """Apply ``programs[i]`` to ``sources[i]`` with ``rlkit.ops.apply_program``, batching same-size images.

    Returns (3,H,W) tensors; None where the program or the source is None.
    """
    if len(sources) != len(programs):
        raise ValueError(f"render_programs: {len(sources)} sources for {len(programs)} programs")
    out: list[torch.Tensor | None] = [None] * len(sources)
    by_size: dict[tuple[int, int], list[tuple[int, torch.Tensor]]] = {}
    needed = [src if prog is not None else None for src, prog in zip(sources, programs)]
    for i, t in enumerate(as_tensors(needed, what="source image")):
        if t is None:
            continue
        by_size.setdefault((t.shape[1], t.shape[2]), []).append((i, t))
    for items in by_size.values():
        idx = [i for i, _ in items]
        stacked = torch.stack([t for _, t in items])
        with torch.no_grad():
            rendered = apply_program(stacked, [programs[i] for i in idx], seed=seed)
        for k, i in enumerate(idx):
            out[i] = rendered[k]
    return out
