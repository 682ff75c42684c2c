"""EditRefiner's perception agent: a Qwen-VL backbone with a saliency decoder, two maps (artifact, failure).

Sec. 4.2 of the paper, with the details of its public code where the paper is silent:

1. the backbone (the base model of any Qwen2-VL / Qwen2.5-VL / Qwen3-VL ``AutoModelForImageTextToText``
   checkpoint) reads one user turn: the source image, the edited image (both resized to ``image_size``) and
   the instruction;
2. features: the hidden states of layer ``feature_layer`` at the *edited* image's vision-token positions,
   laid out as the g x g merged-patch grid (layer 0 is the vision encoder's output as the LM receives it,
   the paper's "vision encoder features"; the public code reads layer 26 of 36), and the final layer's
   hidden states of the whole sequence as global tokens;
3. fusion (:class:`TokenFusion`): the grid (1x1 conv) and the global tokens (linear) are concatenated and
   passed once through multi-head self-attention; the grid tokens are kept;
4. a convolutional decoder upsamples to ``len(map_names)`` logits maps (one decoder with one output channel
   per map: one backbone pass gives both maps, where the public code trains two checkpoints);
   ``saliency = sigmoid(logits)``.

Loss: ``alpha * L1 + beta * BCE + (1 - alpha - beta) * KLD`` (Eq. 6) per map, averaged over the maps, with
the sigmoid applied once and KLD(target || prediction) (see :mod:`rlkit.policies.perception.losses`).
Backbone training: ``"lora"`` (peft LoRA adapters injected into the language model's attention and MLP
projections, r=64, alpha=32 as the paper; the decoder is fully trained), ``"full"`` or ``"frozen"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec

from rlkit.policies.perception.images import as_rgb_list, resize_maps, resize_stack
from rlkit.policies.perception.losses import eq6_weights, saliency_loss
from rlkit.policies.perception.modules import MapDecoder, SaliencyOutput, TokenFusion, stack_or_list
from rlkit.policies.vlm_agent import BACKBONE_TRAINING, QwenVLAgent, QwenVLConfigMixin

__all__ = ["VLMSaliencyConfig", "VLMSaliencyNet", "DEFAULT_LORA_TARGETS", "BACKBONE_TRAINING"]

DEFAULT_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
"""The public code's LoRA targets (q, k, v, o, gate, up, down) in the language model only (peft regex)."""
_TASK = "Mark the artifacts and the editing failures in the edited image."


class VLMSaliencyConfig(QwenVLConfigMixin, PreTrainedConfig):
    """Config of :class:`VLMSaliencyNet`: the backbone's config (``vlm_config``), features, decoder, loss, LoRA.

    ``image_size`` must be a multiple of the backbone's patch size times its spatial merge size (28 for
    Qwen2/2.5-VL, 32 for Qwen3-VL). ``feature_layer`` None picks the public code's depth ratio, 26/36 of the
    language model's layers. ``loss_alpha``/``loss_beta`` default to 1/3 each (the public code weighs the three
    terms equally; the paper gives no values).
    """

    model_type = "rlkit_vlm_saliency"
    sub_configs_defaults = {"vlm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2_5_vl")}

    vlm_config: dict | PreTrainedConfig | None = None
    image_size: int = 448
    feature_layer: int | None = None
    decoder_dim: int = 1024
    decoder_heads: int = 8
    decoder_channels: list[int] | tuple[int, ...] = (256, 128, 64)
    decoder_factors: list[int] | tuple[int, ...] = (2, 4, 4)
    map_names: list[str] | tuple[str, ...] = ("artifact", "failure")
    loss_alpha: float = 1.0 / 3.0
    loss_beta: float = 1.0 / 3.0
    backbone_training: str = "lora"
    lora_r: int = 64
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = DEFAULT_LORA_TARGETS
    max_instruction_tokens: int = 256
    task_prompt: str = _TASK

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        eq6_weights(self.loss_alpha, self.loss_beta)
        self.check_backbone_fields()
        if not self.map_names or len(set(self.map_names)) != len(self.map_names):
            raise ValueError(f"VLMSaliencyConfig: map_names must be distinct and non-empty, got {self.map_names}")
        if len(self.decoder_channels) != len(self.decoder_factors) or not self.decoder_channels:
            raise ValueError("VLMSaliencyConfig: decoder_channels and decoder_factors need one entry per stage")
        if self.decoder_dim % self.decoder_heads:
            raise ValueError(f"VLMSaliencyConfig: decoder_heads={self.decoder_heads} must divide "
                             f"decoder_dim={self.decoder_dim}")
        n_layers = self.text_config.num_hidden_layers
        if self.feature_layer is None:
            self.feature_layer = int(round(n_layers * 26 / 36))
        if not 0 <= self.feature_layer <= n_layers:
            raise ValueError(f"VLMSaliencyConfig: feature_layer must be in [0, {n_layers}], got {self.feature_layer}")

    @property
    def grid_size(self) -> int:
        """Side of the edited image's token grid."""
        return self.image_size // self.token_pixels

    def loss_weights(self) -> dict[str, float]:
        """Eq. 6 weights."""
        return eq6_weights(self.loss_alpha, self.loss_beta)


class VLMSaliencyNet(QwenVLAgent):
    """Source image + edited image + instruction -> artifact and editing-failure maps (see the module docstring).

    ``forward(input_ids, attention_mask, pixel_values, image_grid_thw, labels=None)`` takes :meth:`encode`'s
    output; :meth:`predict_maps` is the batched inference API. The tokenizer and image processor travel with
    the weights.
    """

    config_class = VLMSaliencyConfig
    base_model_prefix = "saliency"
    main_input_name = "input_ids"
    def __init__(self, config: VLMSaliencyConfig, *, backbone: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config.vlm_config)
        d = config.text_config.hidden_size
        self.fusion = TokenFusion(d, d, config.decoder_dim, config.decoder_heads)
        self.decoder = MapDecoder(config.decoder_dim, config.decoder_channels, config.decoder_factors,
                                  len(config.map_names))
        self.map_names = tuple(config.map_names)
        self.tokenizer: Any = None
        self.image_processor: Any = None
        self.post_init()
        if config.backbone_training == "lora":
            self._inject_lora()
        self.set_trainable()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.Conv2d):  # decoder convs: He init (GELU), not the transformer's N(0, 0.02)
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def trained_modules(self) -> list[nn.Module]:
        """The fusion and the decoder: trained whatever ``backbone_training`` says."""
        return [self.fusion, self.decoder]

    # ------------------------------------------------------------------ model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        image_grid_thw: torch.Tensor,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SaliencyOutput:
        """Maps for a batch of (source, edited, instruction) turns; ``labels``: (N, C, H, W) in [0, 1]."""
        cfg = self.config
        n_img = int(image_grid_thw[1].prod()) // cfg.vlm_config.vision_config.spatial_merge_size ** 2
        g = cfg.grid_size
        if n_img != g * g:
            raise ValueError(f"edited images give {n_img} vision tokens, expected {g * g} for image_size "
                             f"{cfg.image_size}; build inputs with encode()")
        is_img = input_ids == cfg.vlm_config.image_token_id
        counts = is_img.sum(1)
        if bool((counts != 2 * n_img).any()):
            raise ValueError(f"each row needs {2 * n_img} image tokens (source then edited image), got "
                             f"{counts.tolist()}")
        # mm_token_type_ids (1 = image token) is what the Qwen-VL processors return for M-RoPE positions
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                            image_grid_thw=image_grid_thw, mm_token_type_ids=is_img.int(),
                            output_hidden_states=True, use_cache=False)
        feats = out.hidden_states[cfg.feature_layer]
        pos = is_img.nonzero()[:, 1].view(len(input_ids), 2 * n_img)[:, n_img:]  # the edited image's tokens
        grid = feats.gather(1, pos[..., None].expand(-1, -1, feats.shape[-1]))
        grid = grid.transpose(1, 2).reshape(len(input_ids), -1, g, g)
        fused = self.fusion(grid, out.last_hidden_state, attention_mask)
        logits = self.decoder(fused)
        size = (cfg.image_size, cfg.image_size) if labels is None else tuple(labels.shape[-2:])
        if tuple(logits.shape[-2:]) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        loss = comps = None
        if labels is not None:
            if labels.ndim != 4 or labels.shape[1] != len(self.map_names):
                raise ValueError(f"labels must be (N, {len(self.map_names)}, H, W) for maps {self.map_names}, "
                                 f"got {tuple(labels.shape)}")
            loss, comps = saliency_loss(logits.float(), labels.float(), cfg.loss_weights(), map_names=self.map_names)
        return SaliencyOutput(loss=loss, logits=logits, saliency=torch.sigmoid(logits), components=comps)

    # ------------------------------------------------------------------ inputs

    def _prompt(self, instruction: str, n_tokens: int) -> str:
        return self._pair_prompt(instruction, n_tokens, generation_prompt=False)

    def _checked_inputs(self, images: Any, sources: Any,
                        instructions: Any) -> tuple[list[torch.Tensor], list[torch.Tensor], list[str]]:
        if sources is None:
            raise ValueError("VLMSaliencyNet needs sources (the source image of each edited image)")
        edited = as_rgb_list(images, what="images")
        src = as_rgb_list(sources, what="sources")
        if len(src) != len(edited):
            raise ValueError(f"sources: got {len(src)} source images for {len(edited)} edited images")
        return edited, src, self._clean_instructions(instructions, len(edited))

    def encode(self, images: Any, sources: Any, instructions: Any) -> dict[str, torch.Tensor]:
        """Backbone inputs for edited ``images``, their ``sources`` and ``instructions`` (all resized to
        ``image_size``), plus ``sizes``: each edited image's (H, W)."""
        edited, src, ins = self._checked_inputs(images, sources, instructions)
        s = self.config.image_size
        e_px, s_px = resize_stack(edited, (s, s)), resize_stack(src, (s, s))
        pairs = [x for pair in zip(s_px, e_px) for x in pair]  # source, edited, source, edited, ...
        proc = self.get_image_processor()
        feats = proc(images=[p.permute(1, 2, 0).numpy() for p in pairs], do_resize=False, do_rescale=False,
                     return_tensors="pt")
        n_tokens = self.config.grid_size ** 2
        enc = self.get_tokenizer()([self._prompt(x, n_tokens) for x in ins], padding=True, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "pixel_values": feats["pixel_values"], "image_grid_thw": feats["image_grid_thw"],
                "sizes": [tuple(t.shape[1:]) for t in edited]}

    # ------------------------------------------------------------------ inference

    @torch.inference_mode()
    def predict_maps(self, images: Any, *, prompts: Any = None, sources: Any = None,
                     instructions: Sequence[str] | str | None = None,
                     batch_size: int = 8) -> dict[str, np.ndarray | list[np.ndarray]]:
        """``{"artifact": (N, H, W), "failure": (N, H, W)}`` float32 in [0, 1] at the edited images' resolution.

        ``images``: edited images; ``sources``: their source images (required, same count); ``instructions``:
        one editing instruction per image (a single string is used for all; "" is allowed and means no
        instruction). ``prompts`` (a T2I prompt) belongs to the text net and is rejected. Mixed input sizes
        give a list of (H_i, W_i) maps per name instead of one array.
        """
        if prompts is not None:
            raise ValueError("VLMSaliencyNet reads sources + instructions; prompts are for TextSaliencyNet")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        edited, src, ins = self._checked_inputs(images, sources, instructions)
        was_training = self.training
        self.eval()
        per_map: dict[str, list[np.ndarray]] = {k: [] for k in self.map_names}
        try:
            for i in range(0, len(edited), batch_size):
                enc = self.encode(edited[i:i + batch_size], src[i:i + batch_size], ins[i:i + batch_size])
                sizes = enc.pop("sizes")
                out = self(**{k: v.to(self.device) for k, v in enc.items()})
                for m in resize_maps(out.saliency, sizes):
                    for c, name in enumerate(self.map_names):
                        per_map[name].append(m[c])
        finally:
            self.train(was_training)
        return {k: stack_or_list(v) for k, v in per_map.items()}


AutoConfig.register(VLMSaliencyConfig.model_type, VLMSaliencyConfig, exist_ok=True)
AutoModel.register(VLMSaliencyConfig, VLMSaliencyNet, exist_ok=True)
