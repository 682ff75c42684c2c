"""Image conversions the environments and tools share: PIL / numpy / torch <-> (3, H, W) float [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rlkit.data import load_photo

#: an in-memory image the environments and tools take (PIL, (H, W, 3) / (3, H, W) array, (3, H, W) tensor)
ImageArray = Image.Image | np.ndarray | torch.Tensor


class ImageInputError(ValueError):
    """An image given to an environment or tool has the wrong type, shape or range."""


def load_image(value: ImageArray | str | Path, what: str = "image") -> torch.Tensor:
    """(3, H, W) float32 in [0, 1] from PIL, an HWC array, a CHW tensor, a path or a bundled photo name."""
    if isinstance(value, (str, Path)):
        path = Path(value)
        if path.is_file():
            with Image.open(path) as im:
                return to_chw(im.convert("RGB"), what)
        try:
            return to_chw(load_photo(str(value)), what)
        except KeyError as exc:
            raise ImageInputError(
                f"{what}: {value!r} is neither an existing file nor a bundled photo ({exc})"
            ) from exc
    return to_chw(value, what)


def load_images(values: Sequence[ImageArray | str | Path], names: Sequence[str]) -> list[torch.Tensor]:
    """:func:`load_image` of each value (``names[i]`` names it in errors). RGB PIL images of one size are
    converted together, one torch conversion per size instead of one per image (a trl step hands the
    environment two PIL images per completion)."""
    out: list[torch.Tensor | None] = [None] * len(values)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, value in enumerate(values):
        if isinstance(value, Image.Image) and value.mode == "RGB":
            by_size.setdefault(value.size, []).append(i)
        else:
            out[i] = load_image(value, names[i])
    for idx in by_size.values():
        arr = torch.from_numpy(np.stack([np.asarray(values[i]) for i in idx]))  # (n, H, W, 3) uint8, one copy
        t = arr.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
        for k, i in enumerate(idx):
            out[i] = t[k]
    return out  # type: ignore[return-value]


def to_chw(value: object, what: str = "image") -> torch.Tensor:
    """(3, H, W) float32 in [0, 1] from PIL, numpy (H, W, 3) / (3, H, W) (uint8 or float) or torch."""
    if isinstance(value, Image.Image):
        arr = np.array(value if value.mode == "RGB" else value.convert("RGB"), dtype=np.uint8)  # one copy
        return torch.from_numpy(arr).permute(2, 0, 1).to(torch.float32, memory_format=torch.contiguous_format
                                                          ).div_(255.0)
    if isinstance(value, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(value))
        if value.ndim == 3 and value.shape[-1] in (1, 3, 4):  # numpy convention: (H, W, C)
            t = t.permute(2, 0, 1)
    elif isinstance(value, torch.Tensor):
        t = value.detach()
    else:
        raise ImageInputError(
            f"{what}: expected a PIL image, numpy array or torch tensor, got {type(value).__name__}"
        )
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise ImageInputError(f"{what}: expected (3, H, W) or (H, W, 3), got shape {tuple(t.shape)}")
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    elif t.shape[0] == 4:
        t = t[:3]
    if t.dtype == torch.uint8:
        return t.float().div(255.0).contiguous()
    t = t.float()
    if not torch.isfinite(t).all():
        raise ImageInputError(f"{what}: contains NaN or infinite values")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1e-4 or hi > 1.0 + 1e-4:
        raise ImageInputError(f"{what}: float values must be in [0, 1], got min {lo:.4g}, max {hi:.4g}")
    return t.clamp(0.0, 1.0).contiguous()


def resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (3, H, W) or (N, 3, H, W) to ``size`` = (H, W) with antialiased bicubic; no-op when equal."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    batched = t.ndim == 4
    x = t if batched else t[None]
    out = F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=False, antialias=True).clamp(
        0.0, 1.0
    )
    return out if batched else out[0]


def to_uint8_hwc(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) float [0, 1] -> (H, W, 3) uint8 (rounded)."""
    return (t.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def to_pil(t: torch.Tensor) -> Image.Image:
    """(3, H, W) float [0, 1] -> RGB PIL image."""
    return Image.fromarray(to_uint8_hwc(t))


def mask_to_tensor(mask: np.ndarray | torch.Tensor, size: tuple[int, int], what: str = "mask") -> torch.Tensor:
    """(H, W) float {0, 1} tensor from a bool/0-1 array or tensor of exactly ``size``."""
    m = mask.detach().cpu() if isinstance(mask, torch.Tensor) else torch.from_numpy(np.asarray(mask))
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ImageInputError(f"{what}: expected a 2-D (H, W) mask, got shape {tuple(m.shape)}")
    if tuple(m.shape) != tuple(size):
        raise ImageInputError(f"{what}: shape {tuple(m.shape)} does not match the image size {tuple(size)}")
    m = m.float()
    if m.numel() and (float(m.min()) < 0.0 or float(m.max()) > 1.0):
        raise ImageInputError(f"{what}: values must be in [0, 1] (bool or soft mask)")
    return m


def save_strip(images: list[torch.Tensor], path: str | Path, *, height: int = 256) -> Path:
    """Write images side by side (each resized to ``height``) as one PNG; returns the path."""
    if not images:
        raise ImageInputError("save_strip: no images to write")
    pils = []
    for t in images:
        h, w = t.shape[-2:]
        pils.append(to_pil(resize(t, (height, max(1, round(w * height / h))))))
    strip = Image.new("RGB", (sum(p.width for p in pils) + 4 * (len(pils) - 1), height), (255, 255, 255))
    x = 0
    for p in pils:
        strip.paste(p, (x, 0))
        x += p.width + 4
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    strip.save(path, format="PNG")
    return path
