"""EditRefiner's evaluation agent: a Qwen-VL backbone with an MLP scoring head, three scores on [0, 100].

Sec. 4.5 of the paper, with its public code where the paper is silent:

1. the backbone (any Qwen2-VL / Qwen2.5-VL / Qwen3-VL ``AutoModelForImageTextToText`` checkpoint, LoRA via
   peft) reads one user turn: the source image, the edited image (both resized to ``image_size``), the
   instruction and the rating request, then the assistant turn's start;
2. **head read-out** (stage 2): the last prompt token's final hidden state goes through an MLP
   (``head_dims`` with SiLU and ``head_dropout``, public code: 4096 -> 2048 -> 512 -> 3) and ``100 * sigmoid``:
   perceptual quality s_v, instruction following s_e, visual consistency s_p (``dimensions``);
3. **level read-out** (stage 1, Q-Align style): the assistant answer is one line per dimension,
   ``"<phrase>: <level>"`` with a level word from :data:`~rlkit.policies.evaluation.levels.LEVELS`; the
   softmax of the language-model head over the five level words' first tokens at each level slot, dotted with
   (0, .25, .5, .75, 1) x 100, is a second score. At inference the slots are read one after another, each
   earlier slot holding its most likely word (what greedy generation would write; three passes).

Losses: stage 1 is cross-entropy on the level words' tokens (the full vocabulary, teacher-forced), stage 2
is Eq. 8 on the head (:func:`~rlkit.policies.evaluation.losses.score_loss`, PLCC over the batch plus a
memory of ``plcc_memory`` recent samples gathered across processes). Both may be given at once. Overall
score: ``rlkit.metrics.editrefiner_overall`` (s_v^0.3 s_e^0.4 s_p^0.3, Eq. 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from torch import nn
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoTokenizer,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.configuration_utils import SubConfigSpec
from transformers.utils import ModelOutput

from rlkit.data import MOS_DIMENSIONS
from rlkit.metrics import editrefiner_overall
from rlkit.policies.evaluation.levels import LEVELS, level_expectation, levels_of
from rlkit.policies.evaluation.losses import score_loss
from rlkit.policies.perception.images import as_rgb_list, resize_stack
from rlkit.policies.vlm_agent import QwenVLAgent, QwenVLConfigMixin

__all__ = ["EvaluationAgentConfig", "EvaluationAgent", "EvaluationOutput", "READOUTS", "DEFAULT_LORA_TARGETS"]

DEFAULT_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
"""LoRA on the language model's attention and MLP projections (peft regex), as the public code."""
READOUTS = ("head", "levels")
_TASK = ("Rate the edited image: its perceptual quality, how well it follows the instruction, and its visual "
         "consistency with the source image. Answer one line per aspect with one word: bad, poor, fair, good "
         "or excellent.")
_PHRASES = {"perceptual_quality": "perceptual quality", "instruction_following": "instruction following",
            "visual_consistency": "visual consistency"}


class EvaluationAgentConfig(QwenVLConfigMixin, PreTrainedConfig):
    """Config of :class:`EvaluationAgent`: the backbone's config (``vlm_config``), image size, head, LoRA, losses.

    ``image_size`` must be a multiple of the backbone's patch size times its spatial merge size (28 for
    Qwen2/2.5-VL, 32 for Qwen3-VL). ``dimensions`` name the three scores (``rlkit.data.MOS_DIMENSIONS``);
    ``phrases`` are their words in the level answer. ``plcc_memory`` recent samples (public code: 256) join
    each batch for the PLCC term; ``plcc_min_std`` skips PLCC on near-constant columns (public code: 0.02).
    """

    model_type = "rlkit_evaluation_agent"
    sub_configs_defaults = {"vlm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2_5_vl")}

    vlm_config: dict | PreTrainedConfig | None = None
    image_size: int = 448
    head_dims: list[int] | tuple[int, ...] = (2048, 512)
    head_dropout: list[float] | tuple[float, ...] = (0.1, 0.05)
    dimensions: list[str] | tuple[str, ...] = MOS_DIMENSIONS
    phrases: list[str] | tuple[str, ...] = tuple(_PHRASES[d] for d in MOS_DIMENSIONS)
    levels: list[str] | tuple[str, ...] = LEVELS
    backbone_training: str = "lora"
    lora_r: int = 64
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = DEFAULT_LORA_TARGETS
    plcc_memory: int = 256
    plcc_min_std: float = 0.02
    level_loss_weight: float = 1.0
    score_loss_weight: float = 1.0
    max_instruction_tokens: int = 256
    task_prompt: str = _TASK

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        where = "EvaluationAgentConfig"
        self.check_backbone_fields()
        if len(self.head_dims) != len(self.head_dropout) or any(int(h) < 1 for h in self.head_dims):
            raise ValueError(f"{where}: head_dims {list(self.head_dims)} and head_dropout {list(self.head_dropout)} "
                             "need one positive width and one dropout per hidden layer")
        if not self.dimensions or len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError(f"{where}: dimensions must be distinct and non-empty, got {list(self.dimensions)}")
        if len(self.phrases) != len(self.dimensions):
            raise ValueError(f"{where}: one phrase per dimension needed, got {list(self.phrases)} for "
                             f"{list(self.dimensions)}")
        if tuple(self.levels) != LEVELS:
            raise ValueError(f"{where}: levels must be {LEVELS} (worst first), got {list(self.levels)}")
        if self.plcc_memory < 0 or not 0.0 <= self.plcc_min_std < 1.0:
            raise ValueError(f"{where}: plcc_memory must be >= 0 and plcc_min_std in [0, 1), got "
                             f"{self.plcc_memory}, {self.plcc_min_std}")
        if self.level_loss_weight < 0 or self.score_loss_weight < 0:
            raise ValueError(f"{where}: loss weights must be >= 0")


@dataclass
class EvaluationOutput(ModelOutput):
    """What :class:`EvaluationAgent` returns: ``loss`` (with targets), head ``scores`` (N, D) on [0, 100],
    ``level_probs`` (N, D, 5) at the given level slots and their Q-Align ``level_scores`` (N, D), and the
    loss ``components`` (detached, for logging)."""

    loss: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    level_probs: torch.Tensor | None = None
    level_scores: torch.Tensor | None = None
    components: dict[str, torch.Tensor] | None = None


class EvaluationAgent(QwenVLAgent):
    """Source image + edited image + instruction -> three scores on [0, 100] (see the module docstring).

    ``forward`` takes :meth:`encode`'s output; :meth:`score` is the batched inference API (the evaluator
    protocol of ``rlkit.eval``: ``score(sources, edited, instructions) -> (N, 3)``) and :meth:`overall` gives
    Eq. 5. The tokenizer and image processor travel with the weights. ``name`` labels the agent in reports.
    """

    config_class = EvaluationAgentConfig
    base_model_prefix = "evaluator"
    main_input_name = "input_ids"
    backbone_auto = AutoModelForImageTextToText

    def __init__(self, config: EvaluationAgentConfig, *, backbone: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        self.backbone = backbone if backbone is not None else AutoModelForImageTextToText.from_config(config.vlm_config)
        layers: list[nn.Module] = []
        prev = config.text_config.hidden_size
        for width, p in zip(config.head_dims, config.head_dropout):
            layers += [nn.Linear(prev, int(width)), nn.SiLU(), nn.Dropout(float(p))]
            prev = int(width)
        layers.append(nn.Linear(prev, len(config.dimensions)))
        self.head = nn.Sequential(*layers)
        self.dimensions = tuple(config.dimensions)
        self.name = "evaluation_agent"
        self.tokenizer: Any = None
        self.image_processor: Any = None
        self._memory: tuple[torch.Tensor, torch.Tensor] | None = None
        self._text_pieces: tuple[list[list[int]], list[list[int]], list[int]] | None = None
        self.post_init()
        if config.backbone_training == "lora":
            self._inject_lora()
        self.set_trainable()

    def trained_modules(self) -> list[nn.Module]:
        """The scoring head: trained whatever ``backbone_training`` says (the language-model head stays frozen
        unless the backbone trains fully)."""
        return [self.head]

    @classmethod
    def untrained(cls, path: str | Path, *, backbone: str | Path | None = None, seed: int = 0) -> EvaluationAgent:
        """The agent saved at ``path`` with nothing trained, the evaluator suite's baseline row: the pretrained
        ``backbone`` (the base checkpoint it was built on) with a fresh head and fresh LoRA adapters, or random
        weights throughout without one; tokenizer and image processor from ``path``; named ``untrained``."""
        config = EvaluationAgentConfig.from_pretrained(str(path))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(config, backbone=AutoModelForImageTextToText.from_pretrained(str(backbone))
                        if backbone is not None else None)
        model.tokenizer = AutoTokenizer.from_pretrained(str(path))
        model.image_processor = AutoImageProcessor.from_pretrained(str(path))
        model.name = "untrained"
        return model.eval()

    # ------------------------------------------------------------------ text pieces

    def _pieces(self) -> tuple[list[list[int]], list[list[int]], list[int]]:
        """Token ids of each dimension's answer prefix, of each level word, and each word's first token."""
        if self._text_pieces is None:
            tok = self.get_tokenizer()
            prefixes = [tok(("" if k == 0 else "\n") + f"{p}:", add_special_tokens=False)["input_ids"]
                        for k, p in enumerate(self.config.phrases)]
            words = [tok(" " + w, add_special_tokens=False)["input_ids"] for w in self.config.levels]
            first = [w[0] for w in words if w]
            if len(first) != len(words) or len(set(first)) != len(first):
                raise ValueError(f"the tokenizer gives the level words {list(self.config.levels)} first tokens "
                                 f"{first}: they must be distinct for the level read-out")
            self._text_pieces = (prefixes, words, first)
        return self._text_pieces

    def _prompt(self, instruction: str, n_tokens: int) -> str:
        return self._pair_prompt(instruction, n_tokens, generation_prompt=True)

    # ------------------------------------------------------------------ inputs

    def encode_images(self, sources: Any, edited: Any) -> dict[str, torch.Tensor]:
        """``pixel_values`` / ``image_grid_thw`` of (source, edited) pairs resized to ``image_size``."""
        ed = as_rgb_list(edited, what="edited")
        src = as_rgb_list(sources, what="sources")
        if len(src) != len(ed):
            raise ValueError(f"sources: got {len(src)} source images for {len(ed)} edited images")
        s = self.config.image_size
        pairs = [x for pair in zip(resize_stack(src, (s, s)), resize_stack(ed, (s, s))) for x in pair]
        feats = self.get_image_processor()(images=[p.permute(1, 2, 0).numpy() for p in pairs], do_resize=False,
                                           do_rescale=False, return_tensors="pt")
        return {"pixel_values": feats["pixel_values"], "image_grid_thw": feats["image_grid_thw"]}

    def encode_text(self, instructions: Sequence[str], levels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Token ids of each prompt (already-clean ``instructions``), with the level answer when ``levels``
        ((N, D) level indices) is given: ``input_ids``, ``attention_mask`` (right padding), ``score_index`` (the
        last prompt token), and with levels ``level_slots`` (N, D) and ``level_labels`` (-100 off the words)."""
        tok = self.get_tokenizer()
        n_tokens = (self.config.image_size // self.config.token_pixels) ** 2
        prompts = tok([self._prompt(x, n_tokens) for x in instructions], add_special_tokens=False)["input_ids"]
        prefixes, words, _ = self._pieces()
        seqs, labels, slots, last = [], [], [], []
        for i, ids in enumerate(prompts):
            seq, lab, sl = list(ids), [-100] * len(ids), []
            last.append(len(seq) - 1)
            if levels is not None:
                for k, pre in enumerate(prefixes):
                    seq += pre
                    lab += [-100] * len(pre)
                    w = words[int(levels[i, k])]
                    sl.append(len(seq) - 1)
                    seq += w
                    lab += w
            seqs.append(seq)
            labels.append(lab)
            slots.append(sl)
        width = max(len(s) for s in seqs)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids_t = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        lab_t = torch.full((len(seqs), width), -100, dtype=torch.long)
        for i, (s, lab) in enumerate(zip(seqs, labels)):
            ids_t[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
            lab_t[i, :len(lab)] = torch.tensor(lab)
        out = {"input_ids": ids_t, "attention_mask": mask, "score_index": torch.tensor(last)}
        if levels is not None:
            out["level_slots"] = torch.tensor(slots, dtype=torch.long)
            out["level_labels"] = lab_t
        return out

    def encode(self, sources: Any, edited: Any, instructions: Any, *, scores: Any = None,
               with_levels: bool = False) -> dict[str, torch.Tensor]:
        """Model inputs for (source, edited, instruction) triples. ``scores`` ((N, D) on [0, 100]) become the
        stage-2 targets ``scores`` and, with ``with_levels``, the stage-1 level answer and its labels."""
        n = len(as_rgb_list(edited, what="edited"))
        ins = self._clean_instructions(instructions, n)
        enc = self.encode_images(sources, edited)
        levels = None
        if scores is not None:
            target = torch.as_tensor(np.asarray(scores, dtype=np.float32))
            if target.shape != (n, len(self.dimensions)):
                raise ValueError(f"scores: expected shape ({n}, {len(self.dimensions)}) for dimensions "
                                 f"{self.dimensions}, got {tuple(target.shape)}")
            levels = levels_of(target) if with_levels else None
            enc["scores"] = target
        elif with_levels:
            raise ValueError("with_levels needs scores (the level answer is made from them)")
        enc.update(self.encode_text(ins, levels))
        if levels is None:
            enc.pop("level_slots", None)
        return enc

    # ------------------------------------------------------------------ model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        image_grid_thw: torch.Tensor,
        scores: torch.Tensor | None = None,
        level_labels: torch.Tensor | None = None,
        score_index: torch.Tensor | None = None,
        level_slots: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> EvaluationOutput:
        """Head scores (and level probabilities at ``level_slots``) for a batch; losses for the given targets:
        ``scores`` (N, D) on [0, 100] -> Eq. 8, ``level_labels`` (N, L) token ids (-100 elsewhere) -> CE."""
        cfg = self.config
        merge = cfg.vlm_config.vision_config.spatial_merge_size ** 2
        per_image = [int(t.prod()) // merge for t in image_grid_thw]
        is_img = input_ids == cfg.vlm_config.image_token_id
        counts = is_img.sum(1)
        want = torch.tensor([per_image[2 * i] + per_image[2 * i + 1] for i in range(len(input_ids))],
                            device=counts.device) if len(per_image) == 2 * len(input_ids) else None
        if want is None or bool((counts != want).any()):
            raise ValueError(f"each row needs the image tokens of its source and edited image (got "
                             f"{counts.tolist()} image tokens for {len(per_image)} images); build inputs with encode()")
        out = self.backbone.model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                                  image_grid_thw=image_grid_thw, mm_token_type_ids=is_img.int(), use_cache=False)
        h = out.last_hidden_state
        rows = torch.arange(len(input_ids), device=h.device)
        if score_index is None:  # the last non-padding token
            score_index = (attention_mask * torch.arange(attention_mask.shape[1], device=h.device)).argmax(1)
        pooled = h[rows, score_index.to(h.device)]
        head_dtype = self.head[0].weight.dtype
        pred = torch.sigmoid(self.head(pooled.to(head_dtype)).float())  # (N, D) in [0, 1]
        loss = None
        comps: dict[str, torch.Tensor] = {}
        if scores is not None:
            target = scores.to(pred) / 100.0
            mem = self._memory if self.training else None
            s_loss, s_comps = score_loss(pred, target, names=self.dimensions, min_std=cfg.plcc_min_std,
                                         memory_pred=mem[0] if mem else None, memory_target=mem[1] if mem else None)
            comps.update(s_comps)
            comps["score"] = s_loss.detach()
            loss = cfg.score_loss_weight * s_loss
            if self.training and cfg.plcc_memory > 0:
                self._remember(pred.detach(), target.detach())
        lm_head = self.backbone.get_output_embeddings()
        if level_labels is not None:
            nxt = level_labels[:, 1:]
            b, t = (nxt != -100).nonzero(as_tuple=True)
            if len(b) == 0:
                raise ValueError("level_labels mark no token; build them with encode(..., with_levels=True)")
            logits = lm_head(h[b, t]).float()
            ce = F.cross_entropy(logits, nxt[b, t])
            comps["level_ce"] = ce.detach()
            loss = cfg.level_loss_weight * ce if loss is None else loss + cfg.level_loss_weight * ce
        level_probs = level_scores = None
        if level_slots is not None:
            _, _, first = self._pieces()
            idx = torch.tensor(first, device=h.device)
            hs = h[rows[:, None], level_slots.to(h.device)]  # (N, D, H)
            level_logits = lm_head(hs).float()[..., idx]
            level_probs = level_logits.softmax(-1)
            level_scores = level_expectation(level_probs)
        return EvaluationOutput(loss=loss, scores=100.0 * pred, level_probs=level_probs, level_scores=level_scores,
                                components=comps or None)

    def _remember(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Keep the last ``plcc_memory`` (prediction, target) rows, gathered from every process when distributed."""
        pred, target = _gather_rows(pred), _gather_rows(target)
        if self._memory is not None:
            pred = torch.cat([pred, self._memory[0].to(pred)], 0)
            target = torch.cat([target, self._memory[1].to(target)], 0)
        k = self.config.plcc_memory
        self._memory = (pred[:k], target[:k])

    def reset_memory(self) -> None:
        """Forget the PLCC memory (a new training stage or run)."""
        self._memory = None

    # ------------------------------------------------------------------ inference

    @torch.inference_mode()
    def predict(self, sources: Any, edited: Any, instructions: Any, *, batch_size: int = 8,
                readouts: Sequence[str] = ("head",)) -> dict[str, np.ndarray]:
        """``{readout: (N, D) float64 on [0, 100]}`` for ``readouts`` among ``"head"`` and ``"levels"``.

        ``sources`` / ``edited``: PIL images, arrays or tensors (one each per item; any sizes, resized to
        ``image_size``); ``instructions``: one string per item (or one for all).
        """
        bad = [r for r in readouts if r not in READOUTS]
        if bad or not readouts:
            raise ValueError(f"readouts must be among {READOUTS}, got {list(readouts)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        ed = as_rgb_list(edited, what="edited")
        src = as_rgb_list(sources, what="sources")
        if len(src) != len(ed):
            raise ValueError(f"sources: got {len(src)} source images for {len(ed)} edited images")
        ins = self._clean_instructions(instructions, len(ed))
        was_training = self.training
        self.eval()
        out: dict[str, list[np.ndarray]] = {r: [] for r in readouts}
        dev = self.device
        try:
            for i in range(0, len(ed), batch_size):
                img = {k: v.to(dev) for k, v in self.encode_images(src[i:i + batch_size], ed[i:i + batch_size]).items()}
                part = ins[i:i + batch_size]
                if "levels" in readouts:  # the head reads the last prompt token: the first level pass gives it
                    head, levels = self._level_readout(img, part)
                    out["levels"].append(levels)
                    if "head" in readouts:
                        out["head"].append(head)
                else:
                    txt = {k: v.to(dev) for k, v in self.encode_text(part).items()}
                    out["head"].append(self(**img, **txt).scores.double().cpu().numpy())
        finally:
            self.train(was_training)
        return {r: np.concatenate(v, 0) for r, v in out.items()}

    def _level_readout(self, img: dict[str, torch.Tensor], instructions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(head scores, Q-Align scores), the latter slot by slot: each earlier slot holds its most likely word."""
        n, d = len(instructions), len(self.dimensions)
        chosen = torch.full((n, d), len(LEVELS) // 2, dtype=torch.long)
        result = np.zeros((n, d))
        head = None
        for k in range(d):
            txt = {key: v.to(self.device) for key, v in self.encode_text(instructions, chosen).items()
                   if key != "level_labels"}
            o = self(**img, **txt)
            if head is None:
                head = o.scores.double().cpu().numpy()
            result[:, k] = o.level_scores[:, k].double().cpu().numpy()
            chosen[:, k] = o.level_probs[:, k].argmax(-1).cpu()
        return head, result

    def score(self, sources: Sequence[Image.Image] | Any, edited: Sequence[Image.Image] | Any,
              instructions: Sequence[str] | str, *, readout: str = "head", batch_size: int = 8) -> np.ndarray:
        """(N, D) scores on [0, 100] (s_v, s_e, s_p for the default dimensions) by the head or the level words."""
        return self.predict(sources, edited, instructions, batch_size=batch_size, readouts=(readout,))[readout]

    def overall(self, sources: Any, edited: Any, instructions: Any, *, readout: str = "head",
                batch_size: int = 8) -> np.ndarray:
        """Eq. 5 per item: s_v^0.3 s_e^0.4 s_p^0.3 (needs the three default dimensions)."""
        if tuple(self.dimensions) != MOS_DIMENSIONS:
            raise ValueError(f"overall needs the dimensions {MOS_DIMENSIONS}, this agent scores {self.dimensions}")
        s = self.score(sources, edited, instructions, readout=readout, batch_size=batch_size)
        return np.asarray(editrefiner_overall(s[:, 0], s[:, 1], s[:, 2]), dtype=np.float64)


def _gather_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, D) from every process concatenated (own rows first); ``x`` itself when not distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    n = torch.tensor([len(x)], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    width = int(max(int(s) for s in sizes))
    padded = torch.zeros((width, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: len(x)] = x
    parts = [torch.zeros_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    rank = dist.get_rank()
    own = [parts[rank][: int(sizes[rank])]]
    return torch.cat(own + [p[: int(s)] for r, (p, s) in enumerate(zip(parts, sizes)) if r != rank], 0)


AutoConfig.register(EvaluationAgentConfig.model_type, EvaluationAgentConfig, exist_ok=True)
AutoModel.register(EvaluationAgentConfig, EvaluationAgent, exist_ok=True)
