"""Perception agents: the papers' saliency nets, their losses, and map -> regions (masks and boxes).

- :class:`TextSaliencyNet` (Agentic Retoucher, after RichHF): image + T2I prompt -> one distortion map.
- :class:`VLMSaliencyNet` (EditRefiner): source + edited image + instruction -> artifact and
  editing-failure maps, from a Qwen-VL backbone (LoRA via peft) and a trained decoder.
- :func:`saliency_loss` with :func:`eq2_weights` / :func:`eq6_weights`: the papers' hybrid losses.
- :func:`regions_from_map`: threshold, opening/closing, components, boxes and dilated masks.

Both nets are ``PreTrainedModel`` s registered with ``AutoConfig``/``AutoModel`` on import (so
``AutoModel.from_pretrained(folder)`` works once ``rlkit.policies`` is imported); both expose
``predict_maps(images, *, prompts=None, sources=None, instructions=None) -> {map name: (N, H, W)}`` and
``map_names``.
"""

from rlkit.policies.perception.loading import SALIENCY_MODEL_TYPES, load_saliency_net
from rlkit.policies.perception.losses import LOSS_TERMS, eq2_weights, eq6_weights, kld_loss, saliency_loss
from rlkit.policies.perception.modules import SaliencyOutput
from rlkit.policies.perception.regions import (
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
from rlkit.policies.perception.text_net import TextSaliencyConfig, TextSaliencyNet
from rlkit.policies.perception.vlm_net import VLMSaliencyConfig, VLMSaliencyNet

__all__ = [
    "MapRegions", "MaskError", "boxes_from_mask", "default_dilation", "dilate_mask", "disk_footprint",
    "masks_from_saliency", "open_close", "regions_from_map", "regions_from_maps", "saliency_as_map",
    "TextSaliencyConfig", "TextSaliencyNet", "VLMSaliencyConfig", "VLMSaliencyNet", "SaliencyOutput",
    "load_saliency_net", "SALIENCY_MODEL_TYPES",
    "saliency_loss", "kld_loss", "eq2_weights", "eq6_weights", "LOSS_TERMS",
]

