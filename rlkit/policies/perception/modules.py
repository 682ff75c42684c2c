"""Building blocks shared by the two saliency nets: the refinement attention, token fusion and the decoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

if TYPE_CHECKING:
    from transformers import (
        AutoImageProcessor,
        AutoTokenizer,
        BaseImageProcessor,
        PreTrainedModel,
        PreTrainedTokenizerBase,
    )

__all__ = ["SaliencyOutput", "companion_or_none", "load_companion", "stack_or_list", "ConvBlock", "MapDecoder", "MultiScaleRefinement",
           "TokenFusion", "groups_for"]


@dataclass
class SaliencyOutput(ModelOutput):
    """What the saliency nets return: ``loss`` (with labels), pre-sigmoid ``logits`` (N, C, H, W), the
    probabilities ``saliency = sigmoid(logits)`` and the loss ``components`` (detached, for logging)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    saliency: torch.Tensor | None = None
    components: dict[str, torch.Tensor] | None = None


T = TypeVar("T")


def load_companion(model: PreTrainedModel, auto_class: type[AutoTokenizer] | type[AutoImageProcessor], what: str
                   ) -> PreTrainedTokenizerBase | BaseImageProcessor:
    """Load the tokenizer / image processor saved beside a net's weights (``model.name_or_path``)."""
    src = model.name_or_path
    if not src:
        raise ValueError(f"{type(model).__name__} has no {what}: attach one (model.{what} = ...) or load the net "
                         "with from_pretrained from a folder that has one")
    try:
        return auto_class.from_pretrained(str(src))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{type(model).__name__}: no {what} could be loaded from {str(src)!r} ({exc})") from exc


def companion_or_none(getter: Callable[[], T]) -> T | None:
    """``getter()`` (a net's tokenizer / image processor), or None when the net has none to save."""
    try:
        return getter()
    except ValueError:
        return None


def stack_or_list(maps: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """One (N, H, W) array when every map has the same size, else the list of maps."""
    return np.stack(maps) if len({m.shape for m in maps}) == 1 else maps


def groups_for(channels: int) -> int:
    """GroupNorm groups: the largest of 32, 16, 8, 4, 2, 1 dividing ``channels`` (batch-size-1 safe, unlike BN)."""
    for g in (32, 16, 8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class ConvBlock(nn.Module):
    """conv3x3 - GroupNorm - GELU, twice, with a residual (1x1 projection when the width changes)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm1 = nn.GroupNorm(groups_for(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups_for(cout), cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return F.gelu(y + self.skip(x))


class MapDecoder(nn.Module):
    """Token grid (N, D, g, g) -> logits (N, out_maps, g * prod(factors), ...): 1x1 stem, then per stage a
    bilinear upsampling by its factor and a :class:`ConvBlock`, a refine block and a 1x1 head."""

    def __init__(self, in_dim: int, channels: Sequence[int], factors: Sequence[int], out_maps: int) -> None:
        super().__init__()
        if len(channels) != len(factors) or not channels:
            raise ValueError(f"decoder: need one upsampling factor per stage, got channels={list(channels)}, "
                             f"factors={list(factors)}")
        self.stem = nn.Conv2d(in_dim, channels[0], 1)
        self.factors = tuple(int(f) for f in factors)
        stages, prev = [], channels[0]
        for c in channels:
            stages.append(ConvBlock(prev, c))
            prev = c
        self.stages = nn.ModuleList(stages)
        self.refine = ConvBlock(prev, prev)
        self.head = nn.Conv2d(prev, out_maps, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for f, stage in zip(self.factors, self.stages):
            if f > 1:
                x = F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False)
            x = stage(x)
        return self.head(self.refine(x))


class MultiScaleRefinement(nn.Module):
    """Lightweight attention refinement (Agentic Retoucher Sec. 4.2): every grid token attends to the grid
    average-pooled to several coarser scales (and the text tokens), so a token's evidence is weighed against
    its wider context; residual + LayerNorm. Keys: sum over scales of (g/s)^2 pooled tokens + text tokens."""

    def __init__(self, dim: int, heads: int, pool_sizes: Sequence[int]) -> None:
        super().__init__()
        self.pool_sizes = tuple(int(s) for s in pool_sizes)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.scale_embed = nn.Parameter(torch.zeros(len(self.pool_sizes) + 1, dim))

    def forward(self, grid: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, d, gh, gw = grid.shape
        q = grid.flatten(2).transpose(1, 2)  # (N, g*g, D)
        keys, pad = [], []
        for i, s in enumerate(self.pool_sizes):
            p = F.adaptive_avg_pool2d(grid, (max(1, gh // s), max(1, gw // s))).flatten(2).transpose(1, 2)
            keys.append(p + self.scale_embed[i])
            pad.append(torch.zeros(n, p.shape[1], dtype=torch.bool, device=grid.device))
        if text is not None:
            keys.append(text + self.scale_embed[-1])
            pad.append(~text_mask.bool() if text_mask is not None
                       else torch.zeros(n, text.shape[1], dtype=torch.bool, device=grid.device))
        kv = torch.cat(keys, 1)
        out, _ = self.attn(q, kv, kv, key_padding_mask=torch.cat(pad, 1), need_weights=False)
        return self.norm(q + out).transpose(1, 2).reshape(n, d, gh, gw)


class TokenFusion(nn.Module):
    """EditRefiner's fusion: edited-image tokens (1x1 conv) and global tokens (linear) from the VLM, one
    multi-head self-attention pass over both, the image tokens kept (residual + LayerNorm)."""

    def __init__(self, in_dim: int, global_dim: int, dim: int, heads: int) -> None:
        super().__init__()
        self.grid_proj = nn.Conv2d(in_dim, dim, 1)
        self.global_proj = nn.Linear(global_dim, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, grid: torch.Tensor, global_tokens: torch.Tensor, global_mask: torch.Tensor) -> torch.Tensor:
        g = self.grid_proj(grid)
        n, d, gh, gw = g.shape
        q = g.flatten(2).transpose(1, 2)
        x = torch.cat([q, self.global_proj(global_tokens)], 1)
        pad = torch.cat([torch.zeros(n, gh * gw, dtype=torch.bool, device=g.device), ~global_mask.bool()], 1)
        out, _ = self.attn(x, x, x, key_padding_mask=pad, need_weights=False)
        return self.norm(q + out[:, : gh * gw]).transpose(1, 2).reshape(n, d, gh, gw)
