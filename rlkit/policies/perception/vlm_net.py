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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, inject_adapter_in_model
from torch import nn
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoTokenizer,
    BaseImageProcessor,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.configuration_utils import SubConfigSpec

from rlkit.policies.perception.images import ImageInput, as_rgb_list, resize_maps, resize_stack
from rlkit.policies.perception.losses import eq6_weights, saliency_loss
from rlkit.policies.perception.modules import (
    MapDecoder,
    SaliencyOutput,
    TokenFusion,
    companion_or_none,
    load_companion,
    stack_or_list,
)

__all__ = ["VLMSaliencyConfig", "VLMSaliencyNet", "DEFAULT_LORA_TARGETS", "BACKBONE_TRAINING"]

DEFAULT_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
"""The public code's LoRA targets (q, k, v, o, gate, up, down) in the language model only (peft regex)."""
BACKBONE_TRAINING = ("lora", "full", "frozen")
_TASK = "Mark the artifacts and the editing failures in the edited image."


class VLMSaliencyConfig(PreTrainedConfig):
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
        if self.backbone_training not in BACKBONE_TRAINING:
            raise ValueError(f"VLMSaliencyConfig: backbone_training must be one of {BACKBONE_TRAINING}, "
                             f"got {self.backbone_training!r}")
        if self.backbone_training == "lora" and self.lora_r < 1:
            raise ValueError(f"VLMSaliencyConfig: lora_r must be >= 1 for LoRA training, got {self.lora_r}")
        if not self.map_names or len(set(self.map_names)) != len(self.map_names):
            raise ValueError(f"VLMSaliencyConfig: map_names must be distinct and non-empty, got {self.map_names}")
        if len(self.decoder_channels) != len(self.decoder_factors) or not self.decoder_channels:
            raise ValueError("VLMSaliencyConfig: decoder_channels and decoder_factors need one entry per stage")
        if self.decoder_dim % self.decoder_heads:
            raise ValueError(f"VLMSaliencyConfig: decoder_heads={self.decoder_heads} must divide "
                             f"decoder_dim={self.decoder_dim}")
        unit = self.token_pixels
        if self.image_size < unit or self.image_size % unit:
            raise ValueError(f"VLMSaliencyConfig: image_size={self.image_size} must be a positive multiple of "
                             f"{unit} (patch size x spatial merge size of the backbone)")
        n_layers = self.text_config.num_hidden_layers
        if self.feature_layer is None:
            self.feature_layer = int(round(n_layers * 26 / 36))
        if not 0 <= self.feature_layer <= n_layers:
            raise ValueError(f"VLMSaliencyConfig: feature_layer must be in [0, {n_layers}], got {self.feature_layer}")

    @property
    def text_config(self) -> PreTrainedConfig:
        """The backbone's language-model config."""
        return self.vlm_config.get_text_config()

    @property
    def token_pixels(self) -> int:
        """Pixels per merged vision token along one side: patch size x spatial merge size."""
        v = self.vlm_config.vision_config
        return int(v.patch_size) * int(v.spatial_merge_size)

    @property
    def grid_size(self) -> int:
        """Side of the edited image's token grid."""
        return self.image_size // self.token_pixels

    def loss_weights(self) -> dict[str, float]:
        """Eq. 6 weights."""
        return eq6_weights(self.loss_alpha, self.loss_beta)


class VLMSaliencyNet(PreTrainedModel):
    """Source image + edited image + instruction -> artifact and editing-failure maps (see the module docstring).

    ``forward(input_ids, attention_mask, pixel_values, image_grid_thw, labels=None)`` takes :meth:`encode`'s
    output; :meth:`predict_maps` is the batched inference API. The tokenizer and image processor travel with
    the weights.
    """

    config_class = VLMSaliencyConfig
    base_model_prefix = "saliency"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True

    def __init__(self, config: VLMSaliencyConfig, *, backbone: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config.vlm_config)
        d = config.text_config.hidden_size
        self.fusion = TokenFusion(d, d, config.decoder_dim, config.decoder_heads)
        self.decoder = MapDecoder(config.decoder_dim, config.decoder_channels, config.decoder_factors,
                                  len(config.map_names))
        self.map_names = tuple(config.map_names)
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.image_processor: BaseImageProcessor | None = None
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

    def _inject_lora(self) -> None:
        """peft LoRA adapters in the backbone (after ``post_init``: peft's own init, B = 0, is kept)."""
        cfg = self.config
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=cfg.lora_target_modules, bias="none")
        inject_adapter_in_model(lora, self.backbone)
        n = 0
        for name, module in self.backbone.named_modules():
            if "lora_" in name:
                module._is_hf_initialized = True
                n += 1
        if n == 0:
            raise ValueError(f"VLMSaliencyNet: lora_target_modules={cfg.lora_target_modules!r} matched no module "
                             "of the backbone")

    def set_trainable(self) -> None:
        """requires_grad per ``backbone_training``: LoRA weights only, all, or none of the backbone; the fusion
        and decoder always train."""
        mode = self.config.backbone_training
        for name, p in self.backbone.named_parameters():
            p.requires_grad_(mode == "full" or (mode == "lora" and "lora_" in name))
        for p in [*self.fusion.parameters(), *self.decoder.parameters()]:
            p.requires_grad_(True)

    def _set_gradient_checkpointing(self, *args: Any, **kwargs: Any) -> None:
        super()._set_gradient_checkpointing(*args, **kwargs)
        if self.config.backbone_training != "full":  # frozen embeddings: checkpointed blocks need a grad input
            self.backbone.enable_input_require_grads()

    # ------------------------------------------------------------------ construction / io

    @classmethod
    def from_backbone(cls, backbone: str | Path, *, dtype: torch.dtype | None = None,
                      device: str | torch.device | None = None, attn_implementation: str | None = None,
                      **config_kwargs: Any) -> VLMSaliencyNet:
        """A new net on a pretrained Qwen-VL checkpoint (hub id or folder); fusion and decoder freshly
        initialised, LoRA adapters added per ``backbone_training``. ``config_kwargs`` set the other fields."""
        kw: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
        if attn_implementation:
            kw["attn_implementation"] = attn_implementation
        model_backbone = AutoModel.from_pretrained(str(backbone), **kw)
        config = VLMSaliencyConfig(vlm_config=model_backbone.config.to_dict(), **config_kwargs)
        model = cls(config, backbone=model_backbone)
        model.tokenizer = AutoTokenizer.from_pretrained(str(backbone))
        model.image_processor = AutoImageProcessor.from_pretrained(str(backbone))
        if dtype is not None:
            model.to(dtype)
        return model.to(device) if device is not None else model

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> VLMSaliencyNet:
        """``PreTrainedModel.from_pretrained``, then the trainable split of ``backbone_training`` (loading
        replaces the parameters, so their ``requires_grad`` flags are set again here)."""
        model = super().from_pretrained(*args, **kwargs)
        model.set_trainable()
        return model

    def save_pretrained(self, save_directory: str | Path, *args: Any, **kwargs: Any) -> None:
        """``PreTrainedModel.save_pretrained`` plus tokenizer and image processor (a self-contained folder)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        for get in (self.get_tokenizer, self.get_image_processor):
            part = companion_or_none(get)
            if part is not None:
                part.save_pretrained(str(save_directory))

    def get_tokenizer(self) -> PreTrainedTokenizerBase:
        """The attached tokenizer, else the one saved beside the weights."""
        if self.tokenizer is None:
            self.tokenizer = load_companion(self, AutoTokenizer, "tokenizer")
        return self.tokenizer

    def get_image_processor(self) -> BaseImageProcessor:
        """The attached image processor, else the one saved beside the weights."""
        if self.image_processor is None:
            self.image_processor = load_companion(self, AutoImageProcessor, "image_processor")
        return self.image_processor

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
        tok = self.get_tokenizer()
        text = f"Instruction: {instruction}\n{self.config.task_prompt}"
        content = [{"type": "text", "text": "Source image:"}, {"type": "image"},
                   {"type": "text", "text": "Edited image:"}, {"type": "image"}, {"type": "text", "text": text}]
        if getattr(tok, "chat_template", None):
            s = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                        add_generation_prompt=False)
        else:
            vis = "<|vision_start|><|image_pad|><|vision_end|>"
            s = f"Source image:{vis}Edited image:{vis}{text}"
        return s.replace("<|image_pad|>", "<|image_pad|>" * n_tokens)

    def _clean_instructions(self, instructions: Sequence[str] | str | None, n: int) -> list[str]:
        if instructions is None:
            raise ValueError("VLMSaliencyNet needs instructions (one editing instruction per edited image)")
        if isinstance(instructions, str):
            instructions = [instructions] * n
        instructions = list(instructions)
        if len(instructions) != n:
            raise ValueError(f"instructions: got {len(instructions)} for {n} edited images")
        tok = self.get_tokenizer()
        specials = [t for t in {*tok.all_special_tokens, *(str(v) for v in tok.added_tokens_decoder.values())}
                    if t.startswith("<")]
        out = []
        for i, ins in enumerate(instructions):
            if not isinstance(ins, str):
                raise TypeError(f"instructions[{i}]: expected a string, got {type(ins).__name__}")
            hit = next((t for t in specials if t in ins), None)
            if hit is not None:
                raise ValueError(f"instructions[{i}] contains the special token {hit!r}; remove it (it would "
                                 "change the image-token layout)")
            ids = tok(ins, add_special_tokens=False)["input_ids"]
            if len(ids) > self.config.max_instruction_tokens:  # keep the head of an over-long instruction
                ins = tok.decode(ids[: self.config.max_instruction_tokens])
            out.append(ins)
        return out

    def _checked_inputs(self, images: ImageInput, sources: ImageInput | None,
                        instructions: Sequence[str] | str | None) -> tuple[list[torch.Tensor], list[torch.Tensor], list[str]]:
        if sources is None:
            raise ValueError("VLMSaliencyNet needs sources (the source image of each edited image)")
        edited = as_rgb_list(images, what="images")
        src = as_rgb_list(sources, what="sources")
        if len(src) != len(edited):
            raise ValueError(f"sources: got {len(src)} source images for {len(edited)} edited images")
        return edited, src, self._clean_instructions(instructions, len(edited))

    def encode(self, images: ImageInput, sources: ImageInput | None, instructions: Sequence[str] | str | None
               ) -> dict[str, torch.Tensor | list[tuple[int, int]]]:
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
    def predict_maps(self, images: ImageInput, *, prompts: Sequence[str] | str | None = None,
                     sources: ImageInput | None = None,
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
