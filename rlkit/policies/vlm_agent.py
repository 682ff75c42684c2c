"""What the agents built on a Qwen-VL backbone share: LoRA adapters via peft, the trainable split, loading and
saving with their tokenizer and image processor, and the checks on instruction text.

Subclasses (``rlkit.policies.VLMSaliencyNet``, ``rlkit.policies.EvaluationAgent``) set ``config_class`` (with
the fields ``vlm_config``, ``backbone_training``, ``lora_*`` and ``max_instruction_tokens``), ``backbone_auto``
(the Auto class the backbone is built / loaded with) and :meth:`QwenVLAgent.trained_modules` (their own layers,
always trained).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer, PreTrainedConfig, PreTrainedModel

from rlkit.policies.perception.modules import companion_or_none, load_companion

__all__ = ["QwenVLAgent", "QwenVLConfigMixin", "BACKBONE_TRAINING"]

BACKBONE_TRAINING = ("lora", "full", "frozen")
"""How the backbone trains: peft LoRA adapters only, every weight, or not at all."""


class QwenVLConfigMixin:
    """Config side: the backbone's text config and token size, and the checks of the backbone fields
    (``backbone_training``, ``lora_r``, ``image_size`` a multiple of the merged token size)."""

    vlm_config: Any
    image_size: int
    backbone_training: str
    lora_r: int

    @property
    def text_config(self) -> PreTrainedConfig:
        """The backbone's language-model config."""
        return self.vlm_config.get_text_config()

    @property
    def token_pixels(self) -> int:
        """Pixels per merged vision token along one side: patch size x spatial merge size."""
        v = self.vlm_config.vision_config
        return int(v.patch_size) * int(v.spatial_merge_size)

    def check_backbone_fields(self) -> None:
        """ValueError naming the config class and the field when a backbone field is invalid."""
        where = type(self).__name__
        if self.backbone_training not in BACKBONE_TRAINING:
            raise ValueError(f"{where}: backbone_training must be one of {BACKBONE_TRAINING}, "
                             f"got {self.backbone_training!r}")
        if self.backbone_training == "lora" and self.lora_r < 1:
            raise ValueError(f"{where}: lora_r must be >= 1 for LoRA training, got {self.lora_r}")
        unit = self.token_pixels
        if self.image_size < unit or self.image_size % unit:
            raise ValueError(f"{where}: image_size={self.image_size} must be a positive multiple of {unit} (patch "
                             "size x spatial merge size of the backbone)")


class QwenVLAgent(PreTrainedModel):
    """Base of the Qwen-VL agents (see the module docstring); not a model by itself."""

    backbone_auto: ClassVar[Any] = AutoModel
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True

    backbone: nn.Module
    tokenizer: Any
    image_processor: Any

    def trained_modules(self) -> list[nn.Module]:
        """The agent's own layers (heads, decoders), trained whatever ``backbone_training`` says."""
        raise NotImplementedError(f"{type(self).__name__}.trained_modules")

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
            raise ValueError(f"{type(self).__name__}: lora_target_modules={cfg.lora_target_modules!r} matched no "
                             "module of the backbone")

    def set_trainable(self) -> None:
        """requires_grad per ``backbone_training``: LoRA weights only, all, or none of the backbone; the agent's
        own layers (:meth:`trained_modules`) always train."""
        mode = self.config.backbone_training
        for name, p in self.backbone.named_parameters():
            p.requires_grad_(mode == "full" or (mode == "lora" and "lora_" in name))
        for module in self.trained_modules():
            for p in module.parameters():
                p.requires_grad_(True)

    def _set_gradient_checkpointing(self, *args: Any, **kwargs: Any) -> None:
        super()._set_gradient_checkpointing(*args, **kwargs)
        if self.config.backbone_training != "full":  # frozen embeddings: checkpointed blocks need a grad input
            self.backbone.enable_input_require_grads()

    @classmethod
    def from_backbone(cls, backbone: str | Path, *, dtype: torch.dtype | None = None,
                      device: str | torch.device | None = None, attn_implementation: str | None = None,
                      **config_kwargs: Any) -> QwenVLAgent:
        """A new agent on a pretrained Qwen-VL checkpoint (hub id or folder): its own layers freshly
        initialised, LoRA adapters added per ``backbone_training``; ``config_kwargs`` set the other fields."""
        kw: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
        if attn_implementation:
            kw["attn_implementation"] = attn_implementation
        model_backbone = cls.backbone_auto.from_pretrained(str(backbone), **kw)
        config = cls.config_class(vlm_config=model_backbone.config.to_dict(), **config_kwargs)
        model = cls(config, backbone=model_backbone)
        model.tokenizer = AutoTokenizer.from_pretrained(str(backbone))
        model.image_processor = AutoImageProcessor.from_pretrained(str(backbone))
        if dtype is not None:
            model.to(dtype)
        return model.to(device) if device is not None else model

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> QwenVLAgent:
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

    def get_tokenizer(self) -> Any:
        """The attached tokenizer, else the one saved beside the weights."""
        if self.tokenizer is None:
            self.tokenizer = load_companion(self, AutoTokenizer, "tokenizer")
        return self.tokenizer

    def get_image_processor(self) -> Any:
        """The attached image processor, else the one saved beside the weights."""
        if self.image_processor is None:
            self.image_processor = load_companion(self, AutoImageProcessor, "image_processor")
        return self.image_processor

    def _pair_prompt(self, instruction: str, n_tokens: int, *, generation_prompt: bool) -> str:
        """One user turn: "Source image:" [image] "Edited image:" [image] the instruction and ``task_prompt``,
        in the tokenizer's chat template, each image pad repeated ``n_tokens`` times (the merged vision tokens)."""
        tok = self.get_tokenizer()
        text = f"Instruction: {instruction}\n{self.config.task_prompt}"
        content = [{"type": "text", "text": "Source image:"}, {"type": "image"},
                   {"type": "text", "text": "Edited image:"}, {"type": "image"}, {"type": "text", "text": text}]
        if getattr(tok, "chat_template", None):
            s = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                        add_generation_prompt=generation_prompt)
        else:
            vis = "<|vision_start|><|image_pad|><|vision_end|>"
            s = f"Source image:{vis}Edited image:{vis}{text}" + ("\n" if generation_prompt else "")
        return s.replace("<|image_pad|>", "<|image_pad|>" * n_tokens)

    def _clean_instructions(self, instructions: Any, n: int) -> list[str]:
        """One instruction per image (a single string is used for all): strings without special tokens (they
        would change the image-token layout), over-long ones cut to ``max_instruction_tokens`` tokens."""
        name = type(self).__name__
        if instructions is None:
            raise ValueError(f"{name} needs instructions (one editing instruction per edited image)")
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
