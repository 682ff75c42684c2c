"""Perception agents: the papers' saliency nets, their losses, and map -> regions (masks and boxes).

- :class:`TextSaliencyNet` (Agentic Retoucher, after RichHF): image + T2I prompt -> one distortion map.
- :class:`VLMSaliencyNet` (EditRefiner): source + edited image + instruction -> artifact and
  editing-failure maps, from a Qwen-VL backbone (LoRA via peft) and a trained decoder.
- :func:`saliency_loss` with :func:`eq2_weights` / :func:`eq6_weights`: the papers' hybrid losses.
- :func:`regions_from_map`: threshold, opening/closing, components, boxes and dilated masks.

Both nets are ``PreTrainedModel`` s registered with ``AutoConfig``/``AutoModel`` when their module is
imported (first access to a net name here, or :func:`load_saliency_net`); both expose
``predict_maps(images, *, prompts=None, sources=None, instructions=None) -> {map name: (N, H, W)}`` and
``map_names``. Regions need only numpy/scipy and load eagerly; the nets and losses load on first use.
"""

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

_LAZY = {
    "TextSaliencyConfig": "text_net",
    "TextSaliencyNet": "text_net",
    "VLMSaliencyConfig": "vlm_net",
    "VLMSaliencyNet": "vlm_net",
    "SaliencyOutput": "modules",
    "load_saliency_net": "loading",
    "SALIENCY_MODEL_TYPES": "loading",
    "saliency_loss": "losses",
    "kld_loss": "losses",
    "eq2_weights": "losses",
    "eq6_weights": "losses",
    "LOSS_TERMS": "losses",
}

__all__ = [
    "MapRegions", "MaskError", "boxes_from_mask", "default_dilation", "dilate_mask", "disk_footprint",
    "masks_from_saliency", "open_close", "regions_from_map", "regions_from_maps", "saliency_as_map",
    "TextSaliencyConfig", "TextSaliencyNet", "VLMSaliencyConfig", "VLMSaliencyNet", "SaliencyOutput",
    "load_saliency_net", "SALIENCY_MODEL_TYPES",
    "saliency_loss", "kld_loss", "eq2_weights", "eq6_weights", "LOSS_TERMS",
]


def __getattr__(name: str):
    # torch/transformers load only when a net or loss is first asked for (rlkit.envs imports the regions).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"rlkit.policies.perception.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'rlkit.policies.perception' has no attribute {name!r}")
