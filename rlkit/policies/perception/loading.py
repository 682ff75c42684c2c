"""Load any saved saliency net by its folder: the config's ``model_type`` picks the class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel

from rlkit.policies.perception.text_net import TextSaliencyConfig, TextSaliencyNet
from rlkit.policies.perception.vlm_net import VLMSaliencyConfig, VLMSaliencyNet

__all__ = ["SALIENCY_MODEL_TYPES", "load_saliency_net"]

SALIENCY_MODEL_TYPES = {TextSaliencyConfig.model_type: TextSaliencyNet, VLMSaliencyConfig.model_type: VLMSaliencyNet}
"""model_type -> class of the saliency nets (both registered with AutoConfig / AutoModel on import)."""


def load_saliency_net(path: str | Path, *, device: str | torch.device | None = None,
                      dtype: torch.dtype | None = None, **kwargs: Any) -> TextSaliencyNet | VLMSaliencyNet:
    """``AutoModel.from_pretrained(path)`` for a saved saliency net, in eval mode on ``device``/``dtype``.

    Raises ``ValueError`` naming the folder's model type when it is not a saliency net.
    """
    config = AutoConfig.from_pretrained(str(path))
    if config.model_type not in SALIENCY_MODEL_TYPES:
        raise ValueError(f"{str(path)!r} holds a {config.model_type!r} model, not a saliency net "
                         f"({sorted(SALIENCY_MODEL_TYPES)})")
    if dtype is not None:
        kwargs["dtype"] = dtype
    model = AutoModel.from_pretrained(str(path), **kwargs)
    if device is not None:
        model.to(device)
    return model.eval()
