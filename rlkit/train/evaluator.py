"""Train EditRefiner's evaluation agent with ``transformers.Trainer`` in the paper's two stages.

- stage ``"levels"`` (stage 1): each MOS becomes one of five level words (bad ... excellent) and the backbone
  (LoRA) learns to write them: cross-entropy on the level words' tokens;
- stage ``"scores"`` (stage 2): the MLP head learns the MOS: ``sum_d MSE_d + (1 - PLCC_d)`` (Eq. 8);
- ``"both"``: the two losses together (``level_loss_weight`` / ``score_loss_weight`` of the agent's config).

:func:`train_evaluator` runs one stage; :func:`run_evaluator_stages` runs stage 1 into ``<output_dir>/levels``
and stage 2 from it into ``<output_dir>`` (the recipe ``recipes/train_evaluator.py``). Rows are EditFHF rows
(``EditFHFRecord`` columns: source, edited, instruction and the three MOS); the recipe's synthetic data are
``rlkit.data.build_editfhf`` items, whose MOS follow from what was injected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from transformers import TrainingArguments

from rlkit.data import MOS_DIMENSIONS, EditFHFRecord, open_image
from rlkit.metrics import editrefiner_overall, srcc
from rlkit.policies import EvaluationAgent, resolve_model_path
from rlkit.train.progress import TrainingProgress, use_rich_progress
from rlkit.train.saliency import SaliencyScriptArguments, SaliencyTrainer, saliency_datasets
from rlkit.train.stages import _resume_arg, end_stage

__all__ = [
    "STAGES",
    "EvaluatorConfig",
    "EvaluatorCollator",
    "EvaluatorTrainer",
    "EvaluatorTrainResult",
    "EvaluatorScriptArguments",
    "train_evaluator",
    "run_evaluator_stages",
    "evaluator_datasets",
    "build_evaluator_model",
    "heldout_correlations",
]

STAGES = ("levels", "scores", "both")


@dataclass
class EvaluatorConfig(TrainingArguments):
    """``TrainingArguments`` for the evaluation agent plus the ``stage`` to train (see the module docstring).

    Defaults differ from ``TrainingArguments`` where the agent needs it: rows keep their image columns
    (``remove_unused_columns=False``), evaluation keeps the loss only, ``label_names`` follow the stage, and
    progress is trl's rich bar.
    """

    stage: str = field(default="scores", metadata={"help": "'levels' (stage 1), 'scores' (stage 2) or 'both'."})
    rich_progress: bool = field(default=True, metadata={"help": "Show trl's rich progress bar instead of tqdm."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the rows' image columns."})
    prediction_loss_only: bool = field(default=True, metadata={"help": "Evaluate the loss only."})

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.label_names is None:
            self.label_names = {"levels": ["level_labels"], "scores": ["scores"]}.get(self.stage,
                                                                                    ["scores", "level_labels"])
        super().__post_init__()


def _record(row: Any, index: int) -> EditFHFRecord:
    if isinstance(row, EditFHFRecord):
        rec = row
    elif isinstance(row, Mapping):
        missing = [k for k in ("source", "edited", "instruction") if k not in row]
        if missing:
            raise ValueError(f"evaluator row {index} ({row.get('id', '')!r}) lacks {missing}: it needs the "
                             f"EditFHFRecord columns (has {sorted(row)})")
        rec = EditFHFRecord.from_example(row)
    else:
        raise TypeError(f"evaluator row {index}: expected an EditFHF dataset row or record, got {type(row).__name__}")
    absent = [d for d in MOS_DIMENSIONS if rec.scores.get(d) is None]
    if absent:
        raise ValueError(f"evaluator row {index} ({rec.id!r}) has no MOS for {absent}; every row needs the three")
    return rec


class EvaluatorCollator:
    """EditFHF rows -> :meth:`EvaluationAgent.encode` inputs for ``stage`` (level answer and/or score targets)."""

    def __init__(self, model: EvaluationAgent, stage: str = "scores") -> None:
        if not isinstance(model, EvaluationAgent):
            raise TypeError(f"EvaluatorCollator needs an EvaluationAgent, got {type(model).__name__}")
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        if tuple(model.dimensions) != MOS_DIMENSIONS:
            raise ValueError(f"EditFHF rows give the MOS {MOS_DIMENSIONS}; the agent scores {model.dimensions}")
        self.model, self.stage = model, stage

    def __call__(self, rows: Sequence[Any]) -> dict[str, torch.Tensor]:
        recs = [_record(r, i) for i, r in enumerate(rows)]
        mos = np.array([[float(r.scores[d]) for d in MOS_DIMENSIONS] for r in recs])
        enc = self.model.encode([open_image(r.source) for r in recs], [open_image(r.edited) for r in recs],
                                [r.instruction for r in recs], scores=mos, with_levels=self.stage != "scores")
        if self.stage == "levels":
            enc.pop("scores")
        enc.pop("level_slots", None)  # training reads the level words through level_labels
        return enc


class EvaluatorTrainer(SaliencyTrainer):
    """``transformers.Trainer`` logging the agent's loss components (``loss/level_ce``, ``loss/mse/<dim>``,
    ``loss/plcc/<dim>``, averaged since the last log; ``eval_loss/...`` in evaluation), as the saliency
    trainer does for its nets, with rlkit's rich progress. The PLCC memory is emptied when training starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self.args, "rich_progress", False) and not self.args.disable_tqdm:
            self.remove_callback(TrainingProgress)
            use_rich_progress(self, f"evaluator stage '{self.args.stage}'",
                              extra_metrics=["loss/level_ce", "loss/score"])

    def train(self, *args: Any, **kwargs: Any) -> Any:
        model = self.model.module if hasattr(self.model, "module") else self.model
        if hasattr(model, "reset_memory"):
            model.reset_memory()
        return super().train(*args, **kwargs)


@dataclass
class EvaluatorTrainResult:
    """What :func:`train_evaluator` returns: the trainer, the final training metrics, the saved folder, the log."""

    trainer: Any
    metrics: dict[str, float]
    output_dir: str
    history: list[dict[str, float]] = field(default_factory=list)


def train_evaluator(
    model: EvaluationAgent,
    train_dataset: Any,
    args: EvaluatorConfig,
    *,
    eval_dataset: Any = None,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: Sequence[Any] | None = None,
    summary: bool = True,
) -> EvaluatorTrainResult:
    """Train one stage (``args.stage``) on EditFHF rows (a ``datasets.Dataset`` or a list of rows / records).

    Checkpoints follow ``args``; ``resume_from_checkpoint`` True / "last" picks the last ``checkpoint-*`` in
    ``args.output_dir``. The final agent (with tokenizer and image processor) is saved to ``args.output_dir``
    and loads with ``EvaluationAgent.from_pretrained`` / ``AutoModel.from_pretrained``. With ``summary`` and an
    ``eval_dataset``, a table of held-out SRCC per dimension (head and level read-outs) is printed.
    """
    if not isinstance(args, EvaluatorConfig):
        raise TypeError(f"args must be an EvaluatorConfig, got {type(args).__name__}")
    if train_dataset is None or len(train_dataset) == 0:
        raise ValueError("train_evaluator: the training dataset is empty")
    collator = EvaluatorCollator(model, args.stage)
    trainer = EvaluatorTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                               data_collator=collator, callbacks=list(callbacks or []))
    out = trainer.train(resume_from_checkpoint=_resume_arg(resume_from_checkpoint, args.output_dir))
    trainer.save_model(args.output_dir)
    history = [dict(h) for h in trainer.state.log_history]
    if summary and eval_dataset is not None and len(eval_dataset) >= 3 and trainer.is_world_process_zero():
        _print_summary(model, args, eval_dataset)
    return EvaluatorTrainResult(trainer, dict(out.metrics), args.output_dir, history)


def heldout_correlations(model: EvaluationAgent, rows: Any, *, readouts: Sequence[str] = ("head",),
                         batch_size: int = 8) -> dict[str, dict[str, float | None]]:
    """``{readout: {dimension | "overall": SRCC with the MOS}}`` on EditFHF rows (None where undefined)."""
    recs = [_record(r, i) for i, r in enumerate(rows)]
    mos = np.array([[float(r.scores[d]) for d in MOS_DIMENSIONS] for r in recs])
    pred = model.predict([open_image(r.source) for r in recs], [open_image(r.edited) for r in recs],
                         [r.instruction for r in recs], batch_size=batch_size, readouts=tuple(readouts))
    out: dict[str, dict[str, float | None]] = {}
    for name, p in pred.items():
        cols = {d: (p[:, k], mos[:, k]) for k, d in enumerate(MOS_DIMENSIONS)}
        cols["overall"] = (editrefiner_overall(p[:, 0], p[:, 1], p[:, 2]),
                           editrefiner_overall(mos[:, 0], mos[:, 1], mos[:, 2]))
        out[name] = {d: (srcc(a, b) if np.ptp(a) > 0 and np.ptp(b) > 0 else None) for d, (a, b) in cols.items()}
    return out


def _print_summary(model: EvaluationAgent, args: EvaluatorConfig, eval_dataset: Any) -> None:
    readouts = ("head", "levels") if args.stage != "scores" else ("head",)
    corr = heldout_correlations(model, eval_dataset, readouts=readouts, batch_size=args.per_device_eval_batch_size)
    table = Table(title=f"evaluator stage '{args.stage}': held-out SRCC with the MOS ({len(eval_dataset)} items)")
    table.add_column("read-out")
    for d in [*MOS_DIMENSIONS, "overall"]:
        table.add_column(d, justify="right")
    for name, row in corr.items():
        table.add_row(name, *("–" if v is None else f"{v:.3f}" for v in row.values()))
    Console().print(table)


# ---------------------------------------------------------------------- recipe pieces


@dataclass
class EvaluatorScriptArguments:
    """The recipe's data, model sources and stages (every field is also a CLI flag / YAML key)."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved evaluation agent to keep training; else one is built on "
                                        "backbone_name_or_path."})
    backbone_name_or_path: str | None = field(
        default=None, metadata={"help": "A Qwen2/2.5/3-VL checkpoint (e.g. Qwen/Qwen3-VL-8B-Instruct) or "
                                        "tiny:qwen3_vl."})
    net_config: dict[str, Any] | None = field(
        default=None, metadata={"help": "Config fields of a new agent (image_size, head_dims, lora_r, ...)."})
    dtype: str | None = field(default=None, metadata={"help": "Weights dtype: float32, bfloat16, float16."})
    attn_implementation: str | None = field(default=None, metadata={"help": "Backbone attention (sdpa, ...)."})
    stages: str = field(default="levels,scores", metadata={
        "help": "Comma-separated stages in order: levels (stage 1), scores (stage 2), both."})
    levels_max_steps: int | None = field(default=None, metadata={"help": "Stage 1 max_steps (default: as stage 2)."})
    levels_num_train_epochs: float | None = field(default=None, metadata={"help": "Stage 1 epochs (default: as 2)."})
    levels_learning_rate: float | None = field(default=None, metadata={"help": "Stage 1 learning rate."})
    dataset_name: str = field(
        default="synthetic", metadata={"help": "'synthetic' (build_editfhf), a save_to_disk folder or a JSONL file "
                                               "of EditFHF records."})
    synthetic_size: int = field(default=256, metadata={"help": "Synthetic training rows."})
    synthetic_test_size: int = field(default=32, metadata={"help": "Synthetic test rows (held-out photos)."})
    synthetic_image_size: int = field(default=128, metadata={"help": "Synthetic image side in pixels."})
    synthetic_seed: int = field(default=0, metadata={"help": "Seed of the synthetic builder."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training rows."})

    def stage_list(self) -> list[str]:
        """The stages to run, in order (ValueError for an unknown or repeated one)."""
        out = [s.strip() for s in self.stages.split(",") if s.strip()]
        bad = [s for s in out if s not in STAGES]
        if not out or bad or len(set(out)) != len(out):
            raise ValueError(f"stages={self.stages!r}: give distinct stages among {STAGES}, e.g. 'levels,scores'")
        return out


def evaluator_datasets(script: EvaluatorScriptArguments) -> tuple[Any, Any]:
    """(train, test) EditFHF datasets: synthetic (test from held-out photos), a ``save_to_disk`` folder or JSONL
    (the saliency recipe's loader, ``rlkit.train.saliency.saliency_datasets`` with ``net='vlm'``)."""
    return saliency_datasets(SaliencyScriptArguments(
        net="vlm", dataset_name=script.dataset_name, synthetic_size=script.synthetic_size,
        synthetic_test_size=script.synthetic_test_size, synthetic_image_size=script.synthetic_image_size,
        synthetic_seed=script.synthetic_seed, max_train_samples=script.max_train_samples))


def build_evaluator_model(script: EvaluatorScriptArguments) -> EvaluationAgent:
    """The agent to train: loaded from ``model_name_or_path`` or new on ``backbone_name_or_path`` with
    ``net_config`` (entry points resolve ``tiny:`` names first)."""
    dtype = getattr(torch, script.dtype) if script.dtype else None
    if script.model_name_or_path:
        kw = {"dtype": dtype} if dtype is not None else {}
        return EvaluationAgent.from_pretrained(resolve_model_path(script.model_name_or_path), **kw).train()
    if not script.backbone_name_or_path:
        raise ValueError("the evaluator recipe needs model_name_or_path or backbone_name_or_path")
    return EvaluationAgent.from_backbone(resolve_model_path(script.backbone_name_or_path), dtype=dtype,
                                         attn_implementation=script.attn_implementation,
                                         **dict(script.net_config or {})).train()


def _stage_args(args: EvaluatorConfig, script: EvaluatorScriptArguments, stage: str, output_dir: str,
                first: bool) -> EvaluatorConfig:
    """``args`` for one stage: its ``stage`` and folder, stage 1's overrides, resuming only in the first stage."""
    kw: dict[str, Any] = {"stage": stage, "output_dir": output_dir, "label_names": None}
    if stage == "levels":
        for name in ("max_steps", "num_train_epochs", "learning_rate"):
            value = getattr(script, f"levels_{name}")
            if value is not None:
                kw[name] = value
    if not first:
        kw["resume_from_checkpoint"] = None
    return dataclasses.replace(args, **kw)


def run_evaluator_stages(script: EvaluatorScriptArguments, args: EvaluatorConfig, *,
                         callbacks: Sequence[Any] | None = None) -> dict[str, Any]:
    """Run ``script.stages`` in order: each but the last into ``<output_dir>/<stage>``, the last into
    ``output_dir``; each stage starts from the previous stage's saved agent. Returns the stage results."""
    stages = script.stage_list()
    train, test = evaluator_datasets(script)
    model = build_evaluator_model(script)
    results: dict[str, Any] = {"stages": stages, "train_rows": len(train), "test_rows": len(test) if test else 0}
    for k, stage in enumerate(stages):
        last = k == len(stages) - 1
        out_dir = args.output_dir if last else str(Path(args.output_dir) / stage)
        stage_args = _stage_args(args, script, stage, out_dir, first=k == 0)
        res = train_evaluator(model, train, stage_args, eval_dataset=test, callbacks=callbacks,
                              resume_from_checkpoint=stage_args.resume_from_checkpoint)
        results[stage] = res
        if not last:
            end_stage(res.trainer)
            model = EvaluationAgent.from_pretrained(out_dir).train()
    return results
