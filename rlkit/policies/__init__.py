"""Agents' output parsers and policies: the diagnosis parser for reasoning agents and the perception agents
(saliency nets, their losses, map -> regions; see :mod:`rlkit.policies.perception`).

The saliency nets and losses import torch/transformers; they load on first access (``from rlkit.policies
import TextSaliencyNet``), which also registers the nets with ``AutoConfig``/``AutoModel``.
"""

from rlkit.policies import perception as _perception
from rlkit.policies.diagnosis import (
    Diagnosis,
    DiagnosisParse,
    DiagnosisProblem,
    normalize_flaw_type,
    parse_diagnosis,
)
from rlkit.policies.perception import (
    MapRegions,
    MaskError,
    boxes_from_mask,
    default_dilation,
    dilate_mask,
    disk_footprint,
    masks_from_saliency,
    open_close,
    regions_from_map,
    regions_from_maps,
    saliency_as_map,
)

__all__ = [
    "Diagnosis", "DiagnosisParse", "DiagnosisProblem", "normalize_flaw_type", "parse_diagnosis",
    "MapRegions", "MaskError", "boxes_from_mask", "default_dilation", "dilate_mask", "disk_footprint",
    "masks_from_saliency", "open_close", "regions_from_map", "regions_from_maps", "saliency_as_map",
    "TextSaliencyConfig", "TextSaliencyNet", "VLMSaliencyConfig", "VLMSaliencyNet", "SaliencyOutput",
    "load_saliency_net", "SALIENCY_MODEL_TYPES",
    "saliency_loss", "kld_loss", "eq2_weights", "eq6_weights", "LOSS_TERMS",
]


def __getattr__(name: str):
    # The nets and losses (torch, transformers) load on first use: see rlkit.policies.perception.
    if name in _perception._LAZY:
        return getattr(_perception, name)
    raise AttributeError(f"module 'rlkit.policies' has no attribute {name!r}")
