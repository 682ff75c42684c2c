"""Readable training output: one rich progress bar with the key metrics, a short summary table at the end,
and the third-party warnings a user cannot act on filtered where rlkit's trainers trigger them."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from transformers import (
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.utils import logging as transformers_logging

__all__ = ["TrainingProgress", "quiet_third_party", "use_rich_progress"]

#: metrics shown on the bar and in the summary, first match wins per slot (trl's GRPO and SFT names)
KEY_METRICS: tuple[str, ...] = ("loss", "reward", "reward_std", "mean_token_accuracy", "entropy")

# (category, message regex) of warnings raised inside transformers/trl/peft by calls rlkit makes for the
# user; each names an API rlkit, not the user, would have to change.
_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # transformers 5.25 renamed gradient checkpointing to activation checkpointing: TrainingArguments and the
    # model methods trl's trainers call (gradient_checkpointing_enable/_disable, is_gradient_checkpointing)
    (FutureWarning, r"`(is_)?gradient_checkpointing\w*` is deprecated"),
)


class _DropCpuAcceleratorNotice(logging.Filter):
    """DeepSpeed logs 'Setting accelerator to CPU' on stdout at import on every CUDA-less machine."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("Setting accelerator to CPU")


def quiet_third_party() -> None:
    """Filter the third-party warnings and per-load progress bars rlkit's training stages trigger and a user
    cannot act on (idempotent)."""
    for category, message in _WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    # transformers' per-load "Loading weights" tqdm bars: rlkit's own progress shows the stages instead
    transformers_logging.disable_progress_bar()
    ds_logger = logging.getLogger("DeepSpeed")  # deepspeed re-levels this logger at import; filters stay
    if not any(isinstance(f, _DropCpuAcceleratorNotice) for f in ds_logger.filters):
        ds_logger.addFilter(_DropCpuAcceleratorNotice())


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


class TrainingProgress(TrainerCallback):
    """A rich progress bar (steps, elapsed, remaining, key metrics) and a summary table at the end.

    Replaces transformers' tqdm bar and its one-dict-per-log-step printout; only the main process draws.
    ``extra_metrics`` adds names (e.g. ``rewards/retouch/valid_fraction``) to the bar and the summary.
    """

    def __init__(self, title: str = "training", *, extra_metrics: Sequence[str] = (),
                 console: Console | None = None) -> None:
        self.title = title
        self.metrics = tuple(KEY_METRICS) + tuple(extra_metrics)
        self.console = console or Console()
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def _shown(self, logs: dict[str, float]) -> list[str]:
        names = [m for m in self.metrics if m in logs]
        names += [k for k in logs if k.endswith("valid_fraction") and k not in names]
        return names

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
                                 console=self.console)
        self.task = self.progress.add_task(self.title, total=state.max_steps, completed=state.global_step,
                                           metrics="")
        self.progress.start()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if self.progress is None or not logs:
            return
        for name in self._shown(logs):
            value = logs[name]
            if isinstance(value, (int, float)):
                self.first.setdefault(name, float(value))
                self.last[name] = float(value)
        shown = "  ".join(f"{n.rsplit('/', 1)[-1] if n.count('/') > 1 else n}={_fmt(self.last[n])}"
                          for n in self.last)
        self.progress.update(self.task, metrics=shown)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if self.progress is None:
            return
        self.progress.update(self.task, completed=state.global_step)
        self.progress.stop()
        self.progress = None
        if self.last:
            table = Table(title=f"{self.title}: {state.global_step} steps", title_justify="left")
            table.add_column("metric")
            table.add_column("first logged", justify="right")
            table.add_column("last logged", justify="right")
            for name, value in self.last.items():
                table.add_row(name, _fmt(self.first[name]), _fmt(value))
            self.console.print(table)


def use_rich_progress(trainer: Trainer, title: str, *, extra_metrics: Sequence[str] = ()) -> Trainer:
    """Swap the trainer's tqdm bar / dict printer for :class:`TrainingProgress` (returns the trainer)."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(TrainingProgress(title, extra_metrics=extra_metrics))
    return trainer
