"""Train a perception agent's saliency net with ``transformers.Trainer`` (accelerate / DeepSpeed for free).

- :class:`SaliencyConfig`: ``TrainingArguments`` plus the data pipeline's settings (crops, flips).
- :class:`SaliencyCollator`: GenBlemish rows (``BlemishRecord``: image, prompt, regions) for
  :class:`~rlkit.policies.TextSaliencyNet`, EditFHF rows (``EditFHFRecord``: source, edited, instruction,
  artifact/failure regions) for :class:`~rlkit.policies.VLMSaliencyNet`. Ground-truth maps are the regions'
  disks aggregated with Gaussian kernels (``rlkit.data.saliency_from_regions``, sigma = the disk radius H/20
  of the full image), cropped / flipped / resized exactly like the image.
- :class:`SaliencyTrainer`: a ``Trainer`` whose logs carry the loss components (``loss/mse``,
  ``loss/kld/artifact``, ...); progress is rlkit's rich bar (``rlkit.train.progress``) with a summary table.
- :func:`train_saliency`: one call: trainer, (resumed) training, final save with the tokenizer.
- :func:`saliency_datasets` / :func:`build_saliency_model`: the recipe's data and model sources.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset, DatasetDict, load_from_disk
from PIL import Image
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments

from rlkit.data import (
    BlemishRecord,
    EditFHFRecord,
    build_blemish,
    build_editfhf,
    default_photos,
    load_blemish,
    load_editfhf,
    open_image,
    records_to_dataset,
)
from rlkit.policies import SaliencyOutput, TextSaliencyNet, VLMSaliencyNet, load_saliency_net
from rlkit.train.progress import quiet_third_party, use_rich_progress
from rlkit.train.stages import _restore_full_weights, _resume_arg

__all__ = [
    "SaliencyConfig",
    "SaliencyScriptArguments",
    "SaliencyCollator",
    "SaliencyTrainer",
    "SaliencyTrainResult",
    "train_saliency",
    "saliency_datasets",
    "build_saliency_model",
    "HELDOUT_PHOTOS",
]

HELDOUT_PHOTOS = ("coffee", "motorcycle")
"""Bundled photos kept out of the synthetic training split (the test split is built from them only)."""


@dataclass
class SaliencyConfig(TrainingArguments):
    """``TrainingArguments`` for saliency nets, with the data pipeline's settings.

    Defaults differ from ``TrainingArguments`` where a saliency run needs it: rows keep their image columns
    (``remove_unused_columns=False``), evaluation keeps only the loss (``prediction_loss_only=True``), and
    progress is rlkit's rich bar and summary table (``rich_progress``).
    """

    crop_scale: list[float] = field(
        default_factory=lambda: [1.0, 1.0],
        metadata={"help": "Training crops: a random square of this fraction range of the shorter side, then "
                          "resized to the net's input (1.0, 1.0 = the whole image; evaluation always uses it)."})
    hflip: bool = field(default=True, metadata={"help": "Random horizontal flips in training (map flipped too)."})
    label_size: int | None = field(
        default=None, metadata={"help": "Side of the ground-truth maps (default: the net's input size)."})
    rich_progress: bool = field(default=True, metadata={"help": "Show rlkit's rich progress bar instead of tqdm."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the rows' image columns."})
    prediction_loss_only: bool = field(default=True, metadata={"help": "Evaluate the loss only."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.crop_scale) != 2:
            raise ValueError(f"crop_scale must be [min, max], got {list(self.crop_scale)}")
        lo, hi = (float(v) for v in self.crop_scale)
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1, got {list(self.crop_scale)}")
        self.crop_scale = [lo, hi]
        if self.label_size is not None and self.label_size < 8:
            raise ValueError(f"label_size must be >= 8 pixels, got {self.label_size}")


def _row_record(row: object, kind: str) -> BlemishRecord | EditFHFRecord:
    if isinstance(row, (BlemishRecord, EditFHFRecord)):
        return row
    if not isinstance(row, Mapping):
        raise TypeError(f"saliency rows must be dataset rows (dicts) or records, got {type(row).__name__}")
    if kind == "text":
        missing = [k for k in ("image", "regions") if k not in row]
        if missing:
            raise ValueError(f"a TextSaliencyNet row needs BlemishRecord columns; row {row.get('id', '')!r} lacks "
                             f"{missing} (columns: {sorted(row)})")
        return BlemishRecord.from_example(row)
    missing = [k for k in ("source", "edited", "artifact_regions", "failure_regions") if k not in row]
    if missing:
        raise ValueError(f"a VLMSaliencyNet row needs EditFHFRecord columns; row {row.get('id', '')!r} lacks "
                         f"{missing} (columns: {sorted(row)})")
    return EditFHFRecord.from_example(row)


def _to_tensor(img: Image.Image | str | Path) -> torch.Tensor:
    a = np.asarray(open_image(img), dtype=np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255.0


class SaliencyCollator:
    """Rows -> the net's inputs plus ``labels`` (N, C, S, S) ground-truth maps (see the module docstring).

    ``train=True`` draws random crops (``crop_scale``) and flips; ``train=False`` uses whole images. The draws
    come from the collator's own generator, seeded per batch by (``seed``, training step when the batch is
    collated, batch within that step): :class:`SaliencyTrainer` sets ``step_fn`` to its global step, so a run
    is reproducible for its seed and torch's global RNG is left alone. A run resumed from a checkpoint restores
    weights, optimizer, scheduler and data order exactly; its crops are drawn afresh (the Trainer prefetches
    batches, so collation steps differ after a resume). Without a trainer the step is the number of calls.
    """

    def __init__(self, model: TextSaliencyNet | VLMSaliencyNet, *, train: bool = True, crop_scale: Sequence[float] = (1.0, 1.0),
                 hflip: bool = True, label_size: int | None = None, seed: int = 0) -> None:
        if isinstance(model, TextSaliencyNet):
            self.kind = "text"
        elif isinstance(model, VLMSaliencyNet):
            self.kind = "vlm"
        else:
            raise TypeError(f"SaliencyCollator needs a TextSaliencyNet or VLMSaliencyNet, got {type(model).__name__}")
        self.model = model
        self.train = train
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.hflip = hflip
        self.size = int(model.config.image_size)
        self.label_size = int(label_size or self.size)
        self.seed = int(seed)
        self.step_fn: Callable[[], int] | None = None  # set by SaliencyTrainer
        self._calls = 0
        self._last_step: int | None = None
        self._in_step = 0
        self._gen = torch.Generator()

    def _seed_batch(self) -> None:
        step = self.step_fn() if self.step_fn is not None else self._calls
        self._calls += 1
        self._in_step = self._in_step + 1 if step == self._last_step else 0
        self._last_step = step
        self._gen.manual_seed((self.seed * 1_000_003 + step * 1_009 + self._in_step) % (2**63))

    def _geometry(self, h: int, w: int) -> tuple[int, int, int, bool]:
        """(top, left, side, flip) of the square region to use (whole image when not training)."""
        if not self.train:
            return 0, 0, -1, False
        lo, hi = self.crop_scale
        side = min(h, w)
        if hi < 1.0 or lo < 1.0 or h != w:
            frac = lo + (hi - lo) * float(torch.rand((), generator=self._gen))
            side = max(8, int(round(min(h, w) * frac)))
            top = int(torch.randint(0, h - side + 1, (), generator=self._gen))
            left = int(torch.randint(0, w - side + 1, (), generator=self._gen))
        else:
            top = left = 0
        flip = self.hflip and bool(torch.rand((), generator=self._gen) < 0.5)
        return top, left, side, flip

    @staticmethod
    def _apply(x: torch.Tensor, geo: tuple[int, int, int, bool], size: int) -> torch.Tensor:
        top, left, side, flip = geo
        if side > 0:
            x = x[:, top:top + side, left:left + side]
        if flip:
            x = x.flip(-1)
        if tuple(x.shape[1:]) != (size, size):
            x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)[0]
        return x

    def __call__(self, rows: Sequence[Mapping[str, object] | BlemishRecord | EditFHFRecord]
                 ) -> dict[str, torch.Tensor]:
        recs = [_row_record(r, self.kind) for r in rows]
        if self.train:
            self._seed_batch()
        if self.kind == "text":
            return self._text(recs)
        return self._vlm(recs)

    def _text(self, recs: list[BlemishRecord]) -> dict[str, torch.Tensor]:
        pixels, labels = [], []
        for rec in recs:
            img = _to_tensor(rec.image)
            gt = torch.from_numpy(rec.saliency())[None]
            geo = self._geometry(*img.shape[1:])
            pixels.append(self._apply(img, geo, self.size).clamp(0, 1))
            labels.append(self._apply(gt, geo, self.label_size).clamp(0, 1))
        enc = self.model.encode_prompts([r.prompt for r in recs])
        return {"pixel_values": torch.stack(pixels), "input_ids": enc["input_ids"].cpu(),
                "attention_mask": enc["attention_mask"].cpu(), "labels": torch.stack(labels)}

    def _vlm(self, recs: list[EditFHFRecord]) -> dict[str, torch.Tensor]:
        edited, sources, labels = [], [], []
        for rec in recs:
            e = _to_tensor(rec.edited)
            s = _to_tensor(rec.source)
            if tuple(s.shape) != tuple(e.shape):  # source at the edited image's size: same crop for both
                s = F.interpolate(s[None], size=tuple(e.shape[1:]), mode="bilinear", align_corners=False,
                                  antialias=True)[0]
            a, f = rec.saliency_maps()
            gt = torch.from_numpy(np.stack([a, f]))
            geo = self._geometry(*e.shape[1:])
            edited.append(self._apply(e, geo, self.size).clamp(0, 1))
            sources.append(self._apply(s, geo, self.size).clamp(0, 1))
            labels.append(self._apply(gt, geo, self.label_size).clamp(0, 1))
        if len(self.model.map_names) != 2:
            raise ValueError(f"EditFHF rows give two maps (artifact, failure); the net predicts {self.model.map_names}")
        enc = self.model.encode(edited, sources, [r.instruction for r in recs])
        enc.pop("sizes")
        enc["labels"] = torch.stack(labels)
        return enc


class SaliencyTrainer(Trainer):
    """``transformers.Trainer`` that logs the saliency loss components next to the loss.

    Components are averaged over the steps since the last log, under ``loss/<term>`` (and
    ``loss/<term>/<map>`` for two-map nets); evaluation logs them as ``eval_loss/<term>``.
    """

    def __init__(self, *args: Any, eval_data_collator: SaliencyCollator | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        if isinstance(self.data_collator, SaliencyCollator):  # crops keyed by the step (reproducible runs)
            self.data_collator.step_fn = lambda: self.state.global_step
        self._components: dict[str, dict[str, list[torch.Tensor]]] = {"train": {}, "eval": {}}
        if getattr(self.args, "rich_progress", False) and not self.args.disable_tqdm:
            terms = getattr(getattr(self.model, "config", None), "loss_weights", dict)()
            use_rich_progress(self, "saliency training", extra_metrics=[f"loss/{t}" for t in terms])

    def get_eval_dataloader(self, eval_dataset: Dataset | None = None) -> DataLoader:
        """The Trainer's eval loader, built with ``eval_data_collator`` (whole images, no flips) when given."""
        if self.eval_data_collator is None:
            return super().get_eval_dataloader(eval_dataset)
        saved, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = saved

    def compute_loss(self, model: TextSaliencyNet | VLMSaliencyNet, inputs: dict[str, torch.Tensor],
                     return_outputs: bool = False, num_items_in_batch: torch.Tensor | int | None = None
                     ) -> torch.Tensor | tuple[torch.Tensor, SaliencyOutput]:
        outputs = model(**inputs)
        comps = outputs.components or {}
        store = self._components["train" if model.training else "eval"]
        for k, v in comps.items():
            store.setdefault(k, []).append(v.detach())
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        store = self._components[mode]
        prefix = "eval_loss/" if mode == "eval" else "loss/"
        for k, vals in store.items():
            logs[prefix + k] = float(torch.stack(vals).float().mean())
        store.clear()
        super().log(logs, start_time)


@dataclass
class SaliencyTrainResult:
    """What :func:`train_saliency` returns: the trainer, the final training metrics and the saved folder."""

    trainer: SaliencyTrainer
    metrics: dict[str, float]
    output_dir: str
    history: list[dict[str, float]] = field(default_factory=list)


def train_saliency(
    model: TextSaliencyNet | VLMSaliencyNet,
    train_dataset: Dataset | Sequence[Mapping[str, object] | BlemishRecord | EditFHFRecord],
    args: SaliencyConfig,
    *,
    eval_dataset: Dataset | Sequence[Mapping[str, object] | BlemishRecord | EditFHFRecord] | None = None,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
) -> SaliencyTrainResult:
    """Train ``model`` on GenBlemish / EditFHF rows (a ``datasets.Dataset`` or a list of rows or records).

    Checkpoints follow ``args`` (``save_strategy`` ...); ``resume_from_checkpoint`` True / "last" picks the
    last ``checkpoint-*`` in ``args.output_dir``. The final net (with its tokenizer / image processor) is saved
    to ``args.output_dir`` and loads with ``AutoModel.from_pretrained``. With ``args.rich_progress`` (and tqdm
    not disabled) the run shows rlkit's rich progress bar and ends with its summary table.
    """
    if not isinstance(args, SaliencyConfig):
        raise TypeError(f"args must be a SaliencyConfig, got {type(args).__name__}")
    if train_dataset is None or len(train_dataset) == 0:
        raise ValueError("train_saliency: the training dataset is empty")
    quiet_third_party()
    collator = SaliencyCollator(model, train=True, crop_scale=args.crop_scale, hflip=args.hflip,
                                label_size=args.label_size, seed=args.seed)
    eval_collator = SaliencyCollator(model, train=False, label_size=args.label_size)
    trainer = SaliencyTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                              data_collator=collator, eval_data_collator=eval_collator,
                              callbacks=list(callbacks or []))
    resume = _resume_arg(resume_from_checkpoint, args.output_dir)
    # the Trainer's resume path loads full-model checkpoints without transformers' key renaming (the ViT is
    # saved under its legacy names): load them the from_pretrained way first
    _restore_full_weights(trainer, resume)
    out = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(args.output_dir)
    history = [dict(h) for h in trainer.state.log_history]
    return SaliencyTrainResult(trainer, dict(out.metrics), args.output_dir, history)


# ---------------------------------------------------------------------- recipe pieces


@dataclass
class SaliencyScriptArguments:
    """The recipe's data and model sources (every field is also a CLI flag / YAML key)."""

    net: str = field(default="text", metadata={"help": "'text' (Agentic Retoucher) or 'vlm' (EditRefiner)."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved saliency net (folder or hub id) or 'tiny:saliency_text' / "
                                        "'tiny:saliency_vlm'; else the net is built from the sources below."})
    vision_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Text net: the ViT-family vision encoder (e.g. google/vit-large-patch16-384)."})
    text_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Text net: the T5 checkpoint whose encoder is used (e.g. t5-base)."})
    backbone_name_or_path: str | None = field(
        default=None, metadata={"help": "VLM net: a Qwen2/2.5/3-VL checkpoint (e.g. Qwen/Qwen3-VL-8B-Instruct)."})
    net_config: dict[str, Any] | None = field(
        default=None, metadata={"help": "Overrides for the net's config when it is built (image_size, lora_r, ...)."})
    dtype: str | None = field(default=None, metadata={"help": "Weights dtype: float32, bfloat16, float16."})
    attn_implementation: str | None = field(default=None, metadata={"help": "VLM backbone attention (sdpa, ...)."})
    dataset_name: str = field(
        default="synthetic", metadata={"help": "'synthetic' (build_blemish / build_editfhf), a save_to_disk folder "
                                               "or a JSONL file of records."})
    synthetic_size: int = field(default=256, metadata={"help": "Synthetic training rows."})
    synthetic_test_size: int = field(default=32, metadata={"help": "Synthetic test rows (held-out photos)."})
    synthetic_image_size: int = field(default=128, metadata={"help": "Synthetic image side in pixels."})
    synthetic_seed: int = field(default=0, metadata={"help": "Seed of the synthetic builders."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training rows."})


def saliency_datasets(script: SaliencyScriptArguments) -> tuple[Dataset, Dataset | None]:
    """(train, test) ``datasets.Dataset`` s for the recipe.

    Synthetic: GenBlemish-style (``net='text'``) or EditFHF-style (``net='vlm'``) rows; the test split is built
    from :data:`HELDOUT_PHOTOS` only, the train split from the other bundled photos. A folder from
    ``save_to_disk`` (a DatasetDict with train/test, or one Dataset cut 90/10) or a JSONL file of records
    (``rlkit.data.load_blemish`` / ``load_editfhf``) works as well.
    """
    name = script.dataset_name
    if script.net not in ("text", "vlm"):
        raise ValueError(f"net must be 'text' or 'vlm', got {script.net!r}")
    if name == "synthetic":
        train_photos = [p for p in default_photos() if p not in HELDOUT_PHOTOS]
        size, seed = script.synthetic_image_size, script.synthetic_seed
        if script.net == "text":
            train = build_blemish(script.synthetic_size, seed, size=size, photos=train_photos)
            test = build_blemish(script.synthetic_test_size, seed + 1, size=size, photos=list(HELDOUT_PHOTOS))
        else:
            train = build_editfhf(script.synthetic_size, seed, size=size, photos=train_photos)
            test = build_editfhf(script.synthetic_test_size, seed + 1, size=size, photos=list(HELDOUT_PHOTOS))
    elif Path(name).is_dir():
        ds = load_from_disk(name)
        if isinstance(ds, DatasetDict):
            if "train" not in ds:
                raise ValueError(f"dataset folder {name!r} has splits {list(ds)}, none named 'train'")
            train, test = ds["train"], ds.get("test")
        else:
            split = ds.train_test_split(test_size=0.1, seed=script.synthetic_seed)
            train, test = split["train"], split["test"]
    elif name.endswith((".jsonl", ".json")):
        res = (load_blemish if script.net == "text" else load_editfhf)(name)
        recs = list(getattr(res, "records", res))
        if not recs:
            raise ValueError(f"{name!r}: no valid records")
        rng = random.Random(script.synthetic_seed)
        rng.shuffle(recs)
        k = max(1, len(recs) // 10)
        train, test = records_to_dataset(recs[k:]), records_to_dataset(recs[:k])
    else:
        raise FileNotFoundError(f"dataset_name={name!r}: not 'synthetic', a folder or a .jsonl file")
    if script.max_train_samples:
        train = train.select(range(min(len(train), script.max_train_samples)))
    return train, test


def build_saliency_model(script: SaliencyScriptArguments) -> TextSaliencyNet | VLMSaliencyNet:
    """The net to train: loaded from ``model_name_or_path`` (a folder or hub id; the recipe turns ``tiny:<kind>``
    into the tiny net's folder), or new on pretrained encoders (text net) / a pretrained Qwen-VL backbone
    (VLM net) with ``net_config`` overrides."""
    dtype = getattr(torch, script.dtype) if script.dtype else None
    overrides = dict(script.net_config or {})
    if script.model_name_or_path:
        model = load_saliency_net(script.model_name_or_path, dtype=dtype)
        expected = TextSaliencyNet if script.net == "text" else VLMSaliencyNet
        if not isinstance(model, expected):
            raise ValueError(f"net={script.net!r} but {script.model_name_or_path!r} holds a {type(model).__name__}")
        return model.train()
    if script.net == "text":
        if not (script.vision_model_name_or_path and script.text_model_name_or_path):
            raise ValueError("net='text' needs model_name_or_path, or vision_model_name_or_path and "
                             "text_model_name_or_path")
        return TextSaliencyNet.from_encoders(script.vision_model_name_or_path, script.text_model_name_or_path,
                                             dtype=dtype, **overrides)
    if not script.backbone_name_or_path:
        raise ValueError("net='vlm' needs model_name_or_path or backbone_name_or_path")
    return VLMSaliencyNet.from_backbone(script.backbone_name_or_path, dtype=dtype,
                                        attn_implementation=script.attn_implementation, **overrides)

