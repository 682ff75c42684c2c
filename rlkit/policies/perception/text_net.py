"""Agentic Retoucher's perception agent: a text-conditioned distortion-saliency net after RichHF.

Architecture (Sec. 4.2 of the paper; RichHF's reimplementation for the fusion):

1. a ViT-family vision encoder (any ``transformers`` vision model whose ``last_hidden_state`` holds a
   (g x g) patch grid, with or without prefix tokens such as CLS) encodes the image resized to its
   ``image_size``;
2. the patch tokens are projected to the T5 width and concatenated with the prompt's T5 token embeddings;
   the T5 *encoder* runs over the joint sequence, so image and text are fused by its self-attention
   (RichHF); the image tokens are sliced back to the g x g grid;
3. a lightweight attention refinement (:class:`MultiScaleRefinement`) lets each grid token attend to the
   grid pooled at coarser scales and to the text tokens (``use_refinement=False``: Table 5's "w/o attn");
4. a convolutional decoder upsamples to one map of logits; ``saliency = sigmoid(logits)`` in [0, 1].

Loss: ``alpha * MSE + (1 - alpha) * KLD`` (Eq. 2; ``use_kld=False`` is Table 5's "w/o KLD loss": MSE only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    T5EncoderModel,
)
from transformers.configuration_utils import SubConfigSpec

from rlkit.policies.perception.images import ImageInput, as_rgb_list, resize_maps, resize_stack
from rlkit.policies.perception.losses import eq2_weights, saliency_loss
from rlkit.policies.perception.modules import (
    MapDecoder,
    MultiScaleRefinement,
    SaliencyOutput,
    companion_or_none,
    load_companion,
    stack_or_list,
)

__all__ = ["TextSaliencyConfig", "TextSaliencyNet"]


class TextSaliencyConfig(PreTrainedConfig):
    """Config of :class:`TextSaliencyNet`: the two encoders' configs, refinement, decoder and loss settings.

    ``decoder_factors`` upsample the g x g patch grid (their product times g should reach ``image_size``;
    the logits are resized to the label size otherwise). ``image_mean``/``image_std`` normalise inputs for
    the vision encoder (ViT's 0.5/0.5 by default).
    """

    model_type = "rlkit_text_saliency"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="vit"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="t5"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    use_refinement: bool = True
    refine_heads: int = 8
    refine_pool_sizes: list[int] | tuple[int, ...] = (2, 4, 8)
    decoder_channels: list[int] | tuple[int, ...] = (768, 384, 384, 192)
    decoder_factors: list[int] | tuple[int, ...] = (2, 2, 2, 2)
    loss_alpha: float = 0.5
    use_kld: bool = True
    max_text_length: int = 64
    image_mean: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5)
    map_names: list[str] | tuple[str, ...] = ("saliency",)

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        eq2_weights(self.loss_alpha)  # ValueError outside [0, 1]
        if len(self.decoder_channels) != len(self.decoder_factors) or not self.decoder_channels:
            raise ValueError("TextSaliencyConfig: decoder_channels and decoder_factors need one entry per stage, "
                             f"got {list(self.decoder_channels)} and {list(self.decoder_factors)}")
        if len(self.map_names) != 1:
            raise ValueError(f"TextSaliencyConfig: the text net predicts one map, got map_names={self.map_names}")
        d = self.text_config.d_model
        if d % self.refine_heads:
            raise ValueError(f"TextSaliencyConfig: refine_heads={self.refine_heads} must divide the T5 width {d}")

    @property
    def image_size(self) -> int:
        """Side of the square input the vision encoder takes."""
        s = self.vision_config.image_size
        return int(s[0] if isinstance(s, (list, tuple)) else s)

    @property
    def grid_size(self) -> int:
        """Side of the vision encoder's patch grid."""
        p = self.vision_config.patch_size
        return self.image_size // int(p[0] if isinstance(p, (list, tuple)) else p)

    def loss_weights(self) -> dict[str, float]:
        """Eq. 2 weights, or MSE alone without the KLD term."""
        return eq2_weights(self.loss_alpha) if self.use_kld else {"mse": 1.0}


class TextSaliencyNet(PreTrainedModel):
    """Image + T2I prompt -> one distortion-saliency map (see the module docstring).

    ``forward(pixel_values, input_ids, attention_mask, labels=None)`` returns a :class:`SaliencyOutput`;
    :meth:`predict_maps` is the batched inference API (PIL images / arrays / tensors in, maps at each
    input's resolution out). The tokenizer travels with the weights (``save_pretrained`` writes it).
    """

    config_class = TextSaliencyConfig
    base_model_prefix = "saliency"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["ViTLayer", "T5Block"]

    def __init__(self, config: TextSaliencyConfig, *, vision_model: PreTrainedModel | None = None,
                 text_model: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        self.vision = vision_model if vision_model is not None else AutoModel.from_config(config.vision_config)
        if getattr(self.vision, "pooler", None) is not None:
            self.vision.pooler = None  # unused: only the patch tokens are read
        self.text = text_model if text_model is not None else T5EncoderModel(config.text_config)
        d = config.text_config.d_model
        # projected image tokens are LayerNorm'd to unit scale, like T5's token embeddings: unscaled they would
        # be ~10x smaller and the joint self-attention would wash their positions out
        self.image_proj = nn.Sequential(nn.Linear(config.vision_config.hidden_size, d), nn.LayerNorm(d))
        self.image_pos = nn.Parameter(torch.zeros(1, config.grid_size ** 2, d))
        self.refine = MultiScaleRefinement(d, config.refine_heads, config.refine_pool_sizes) \
            if config.use_refinement else None
        self.decoder = MapDecoder(d, config.decoder_channels, config.decoder_factors, 1)
        self.map_names = tuple(config.map_names)
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is self:
            nn.init.normal_(self.image_pos, std=0.02)
        if isinstance(module, MultiScaleRefinement):
            nn.init.zeros_(module.scale_embed)
        if isinstance(module, nn.Conv2d):  # decoder convs: He init (GELU), not the transformer's N(0, 0.02)
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    # ------------------------------------------------------------------ construction / io

    @classmethod
    def from_encoders(cls, vision: str | Path, text: str | Path, *, tokenizer: str | Path | None = None,
                      dtype: torch.dtype | None = None, device: str | torch.device | None = None,
                      **config_kwargs: Any) -> TextSaliencyNet:
        """A new net on pretrained encoders (e.g. ``google/vit-large-patch16-384`` and ``t5-base``); the
        fusion, refinement and decoder are freshly initialised. ``config_kwargs`` set the other config fields."""
        kw = {"dtype": dtype} if dtype is not None else {}
        vision_model = AutoModel.from_pretrained(str(vision), **kw)
        text_model = T5EncoderModel.from_pretrained(str(text), **kw)
        config = TextSaliencyConfig(vision_config=vision_model.config.to_dict(),
                                    text_config=text_model.config.to_dict(), **config_kwargs)
        model = cls(config, vision_model=vision_model, text_model=text_model)
        model.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or text))
        if dtype is not None:
            model.to(dtype)
        return model.to(device) if device is not None else model

    def save_pretrained(self, save_directory: str | Path, *args: Any, **kwargs: Any) -> None:
        """``PreTrainedModel.save_pretrained`` plus the tokenizer, so the folder is self-contained."""
        super().save_pretrained(save_directory, *args, **kwargs)
        tok = companion_or_none(self.get_tokenizer)
        if tok is not None:
            tok.save_pretrained(str(save_directory))

    def get_tokenizer(self) -> PreTrainedTokenizerBase:
        """The prompt tokenizer: the attached one, else the one saved beside the weights."""
        if self.tokenizer is None:
            self.tokenizer = load_companion(self, AutoTokenizer, "tokenizer")
        return self.tokenizer

    # ------------------------------------------------------------------ model

    def _normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.config.image_mean, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.config.image_std, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1)
        return (pixels - mean) / std

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SaliencyOutput:
        """``pixel_values``: (N, 3, S, S) in [0, 1] at ``config.image_size``; ``labels``: (N, 1, H, W) maps in
        [0, 1] (the logits are resized to their size). Normalisation happens here."""
        cfg = self.config
        s = cfg.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (3, s, s):
            raise ValueError(f"pixel_values must be (N, 3, {s}, {s}), got {tuple(pixel_values.shape)}; "
                             "predict_maps resizes images for you")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self._normalise(pixel_values.to(self.dtype))
        tokens = self.vision(pixel_values=x).last_hidden_state
        g = cfg.grid_size
        tokens = tokens[:, tokens.shape[1] - g * g:]  # drop prefix tokens (CLS, registers)
        img = self.image_proj(tokens) + self.image_pos
        txt = self.text.get_input_embeddings()(input_ids)
        joint = torch.cat([img, txt], 1)
        mask = torch.cat([torch.ones(img.shape[:2], dtype=attention_mask.dtype, device=img.device),
                          attention_mask], 1)
        fused = self.text(inputs_embeds=joint, attention_mask=mask).last_hidden_state
        grid = fused[:, : g * g].transpose(1, 2).reshape(len(fused), -1, g, g)
        if self.refine is not None:
            grid = self.refine(grid, fused[:, g * g:], attention_mask)
        logits = self.decoder(grid)
        loss = comps = None
        if labels is not None:
            labels = labels if labels.ndim == 4 else labels[:, None]
            if logits.shape[-2:] != labels.shape[-2:]:
                logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
            loss, comps = saliency_loss(logits.float(), labels.float(), cfg.loss_weights())
        return SaliencyOutput(loss=loss, logits=logits, saliency=torch.sigmoid(logits), components=comps)

    # ------------------------------------------------------------------ inference

    def encode_prompts(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenised prompts (padded, truncated to ``max_text_length``) on the model's device."""
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise TypeError(f"prompts[{i}]: expected a string, got {type(p).__name__}")
        enc = self.get_tokenizer()(list(prompts), padding=True, truncation=True,
                                   max_length=self.config.max_text_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def preprocess(self, images: ImageInput) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """(N, 3, S, S) pixels in [0, 1] at the encoder size and each input's (H, W)."""
        rgb = as_rgb_list(images)
        s = self.config.image_size
        return resize_stack(rgb, (s, s)), [tuple(t.shape[1:]) for t in rgb]

    @torch.inference_mode()
    def predict_maps(self, images: ImageInput, *, prompts: Sequence[str] | str | None = None,
                     sources: ImageInput | None = None, instructions: Sequence[str] | str | None = None,
                     batch_size: int = 16) -> dict[str, np.ndarray | list[np.ndarray]]:
        """Saliency maps for a batch: ``{"saliency": (N, H, W) float32 in [0, 1]}`` at the inputs' resolution.

        ``prompts``: one T2I prompt per image (a single string is used for all; None or "" means no prompt:
        the net then sees the image with an empty prompt, which is allowed). ``sources``/``instructions``
        belong to the editing net and are rejected here. When the inputs differ in size the value is a list
        of (H_i, W_i) maps instead of one array.
        """
        if sources is not None or instructions is not None:
            raise ValueError("TextSaliencyNet reads an image and its T2I prompt; sources/instructions are for "
                             "VLMSaliencyNet")
        pixels, sizes = self.preprocess(images)
        n = len(sizes)
        if prompts is None or isinstance(prompts, str):
            prompts = [prompts or ""] * n
        prompts = list(prompts)
        if len(prompts) != n:
            raise ValueError(f"prompts: got {len(prompts)} prompts for {n} images")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        was_training = self.training
        self.eval()
        maps: list[np.ndarray] = []
        try:
            for i in range(0, n, batch_size):
                enc = self.encode_prompts(prompts[i:i + batch_size])
                out = self(pixel_values=pixels[i:i + batch_size].to(self.device), **enc)
                maps.extend(resize_maps(out.saliency, sizes[i:i + batch_size]))
        finally:
            self.train(was_training)
        return {"saliency": stack_or_list([m[0] for m in maps])}




AutoConfig.register(TextSaliencyConfig.model_type, TextSaliencyConfig, exist_ok=True)
AutoModel.register(TextSaliencyConfig, TextSaliencyNet, exist_ok=True)
