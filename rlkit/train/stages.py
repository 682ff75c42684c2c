"""The two training stages as thin calls over trl: SFT (optionally LoRA) and GRPO (from the SFT result).

Distribution is accelerate's: under ``accelerate launch`` (DDP, DeepSpeed ZeRO-2/3, multi-node) the
same code runs on every rank. On CPU-only machines DeepSpeed needs a gloo process group created before
the trainer (ZeRO-3 with a reference model otherwise fails); :func:`init_distributed_for_deepspeed` does it.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import torch
import torch.distributed as dist
from accelerate.state import AcceleratorState, GradientState
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ProcessorMixin,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.integrations.deepspeed import set_hf_deepspeed_config
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

from rlkit.train.progress import quiet_third_party, use_rich_progress

if TYPE_CHECKING:
    from peft import PeftConfig

#: what GRPOTrainer takes as one reward: a trl reward function (rlkit's bridge builds them), a model or its id
RewardFunc = Callable[..., list[float | None]] | PreTrainedModel | str

__all__ = ["init_distributed_for_deepspeed", "train_sft", "train_grpo", "is_main_process", "end_stage",
           "finish_run"]


def is_main_process() -> bool:
    """Rank 0 (or not distributed): the process that writes files and prints summaries."""
    return int(os.environ.get("RANK", "0")) == 0


def init_distributed_for_deepspeed() -> bool:
    """Under ``accelerate launch`` with DeepSpeed on a machine without CUDA, start DeepSpeed's process group
    on gloo (accelerate would pick a backend the CPU lacks). Returns whether it initialised one."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        return False
    if torch.cuda.is_available():
        return False
    if dist.is_available() and dist.is_initialized():
        return False
    import deepspeed  # deferred: optional dependency (the train extra)

    deepspeed.init_distributed(dist_backend="gloo")
    return True


def end_stage(trainer: Trainer) -> None:
    """Release a finished stage's trainer so the next stage can build its own accelerator in this process.

    accelerate keeps one global DeepSpeed state per process and refuses a second DeepSpeed ``Accelerator``;
    the engine is freed and that state reset (the process group is kept), as accelerate's own tests do.
    """
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.free_memory()
    AcceleratorState._reset_state()
    GradientState._reset_state()
    gc.collect()


def finish_run(trainer: Trainer | None, code: int = 0) -> int:
    """End a recipe: finish the trainer's trackers and process group, then exit this rank.

    Multi-process CPU runs (gloo, DeepSpeed on CPU) sometimes abort at interpreter teardown, after every
    output is written ("terminate called without an active exception": a native thread destroyed while
    joinable, seen under load in CI). Such ranks therefore leave with ``os._exit`` once stdio is flushed
    and every rank has finished; single-process runs return ``code`` normally.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if trainer is not None:
        trainer.end()  # finish trackers, destroy the process group
    if world > 1:
        if not torch.cuda.is_available():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


def _point_deepspeed_at(args: TrainingArguments) -> None:
    """transformers reads ZeRO settings from the most recently built TrainingArguments; make it ``args``."""
    plugin = getattr(args, "deepspeed_plugin", None)
    if plugin is not None and hasattr(plugin, "set_deepspeed_weakref"):
        plugin.set_deepspeed_weakref()
    elif getattr(args, "hf_deepspeed_config", None) is not None:
        set_hf_deepspeed_config(args.hf_deepspeed_config)


def _resume_arg(resume: str | bool | None, output_dir: str) -> str | bool | None:
    """``True``/"last" -> the last checkpoint in ``output_dir`` (error if none); a path must exist."""
    if resume in (None, False, "", "false", "False"):
        return None
    if resume in (True, "true", "True", "last"):
        last = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if last is None:
            raise FileNotFoundError(f"resume_from_checkpoint={resume!r}: no checkpoint-* folder in {output_dir!r}")
        return last
    if not Path(str(resume)).is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint={resume!r} is not a checkpoint folder")
    return str(resume)


def _restore_full_weights(trainer: Trainer, checkpoint: str | bool | None) -> None:
    """Load a full-model checkpoint's weights the way ``from_pretrained`` does.

    transformers 5 saves some models (Qwen2.5-VL among them) under their original key names, and the
    Trainer's resume path loads the file with a plain non-strict ``load_state_dict``: no key matches and
    the run would silently continue from the *initial* weights. ``from_pretrained`` applies the key
    mapping, so its state dict is copied in first (adapters and DeepSpeed/FSDP checkpoints load correctly
    through their own paths and are left alone).
    """
    if not checkpoint or trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        return
    ckpt = Path(str(checkpoint))
    if not ((ckpt / "model.safetensors").is_file() or (ckpt / "model.safetensors.index.json").is_file()):
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "peft_config"):
        return
    loaded = type(model).from_pretrained(str(ckpt), dtype=next(model.parameters()).dtype)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if missing:
        raise RuntimeError(f"checkpoint {ckpt} lacks weights for {missing[:5]} (+{max(0, len(missing) - 5)} more)")
    del loaded


def _run_stage(trainer: Trainer, args: TrainingArguments,
               processing_class: ProcessorMixin | PreTrainedTokenizerBase | None, progress: str | None,
               resume_from_checkpoint: str | bool | None, save_dir: str | None) -> Trainer:
    """Train (resuming if asked), then save the model/adapter and the processor to ``save_dir``."""
    if progress:
        use_rich_progress(trainer, progress)
    resume = _resume_arg(resume_from_checkpoint, args.output_dir)
    _restore_full_weights(trainer, resume)
    trainer.train(resume_from_checkpoint=resume)
    out = save_dir or args.output_dir
    trainer.save_model(out)
    if processing_class is not None and trainer.is_world_process_zero():
        processing_class.save_pretrained(out)
    return trainer


def train_sft(model: PreTrainedModel | str, train_dataset: datasets.Dataset, args: SFTConfig, *,
              processing_class: ProcessorMixin | PreTrainedTokenizerBase | None = None,
              peft_config: PeftConfig | None = None, callbacks: Sequence[TrainerCallback] | None = None,
              resume_from_checkpoint: str | bool | None = None, save_dir: str | None = None,
              progress: str | None = "SFT") -> SFTTrainer:
    """Stage 1: supervised fine-tuning with trl's SFTTrainer; saves model/adapter + processor to ``save_dir``
    (default ``args.output_dir``). ``progress`` titles the rich progress bar (None: trl's own output)."""
    quiet_third_party()
    init_distributed_for_deepspeed()
    _point_deepspeed_at(args)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processing_class,
                         peft_config=peft_config, callbacks=list(callbacks or []))
    return _run_stage(trainer, args, processing_class, progress, resume_from_checkpoint, save_dir)


def train_grpo(model: PreTrainedModel | str, reward_funcs: RewardFunc | list[RewardFunc],
               train_dataset: datasets.Dataset, args: GRPOConfig, *,
               processing_class: ProcessorMixin | PreTrainedTokenizerBase | None = None,
               peft_config: PeftConfig | None = None, callbacks: Sequence[TrainerCallback] | None = None,
               resume_from_checkpoint: str | bool | None = None, save_dir: str | None = None,
               progress: str | None = "GRPO", **trainer_kwargs: Any) -> GRPOTrainer:
    """Stage 2: GRPO with trl's GRPOTrainer; resumes from a checkpoint (step count, optimizer, scheduler and
    RNG continue); saves the final policy + processor to ``save_dir`` (default ``args.output_dir``)."""
    quiet_third_party()
    init_distributed_for_deepspeed()
    _point_deepspeed_at(args)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset,
                          processing_class=processing_class, peft_config=peft_config,
                          callbacks=list(callbacks or []), **trainer_kwargs)
    return _run_stage(trainer, args, processing_class, progress, resume_from_checkpoint, save_dir)
