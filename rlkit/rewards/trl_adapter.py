"""Hand rlkit rewards to trl's GRPOTrainer as ``reward_funcs`` (+ ``reward_weights``).

trl 1.16 calls each reward function as ``f(prompts=..., completions=..., completion_ids=..., **columns)``
where ``columns`` holds every dataset column (``image``/``images`` included), ``trainer_state``,
``log_extra``, ``log_metric`` and, with ``environment_factory``, ``environments``. It logs each function
under ``__name__`` (``rewards/<name>/mean``), turns None into NaN and sums with ``reward_weights`` using
nansum. Async callables (``async def __call__``) run concurrently on trl's event loop.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from rlkit.rewards.base import Reward, RewardBatch, RewardResult, RewardValueError
from rlkit.rewards.combinators import WeightedSum

logger = logging.getLogger("rlkit.rewards")

__all__ = ["to_trl_reward_funcs", "TrlRewardFunction", "AsyncTrlRewardFunction"]

# Keys trl passes that are not dataset columns.
_TRL_KEYS = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}


class _SharedBatch:
    """One RewardBatch per trl reward step, shared by all functions built by one adapter call.

    trl passes the very same ``completions`` list object to every reward function of a step, so identity
    of that list tells whether the cached batch (parsed programs, rendered images) is still current.
    """

    def __init__(self, program_format: str) -> None:
        self.program_format = program_format
        self._key: Any = None
        self._batch: RewardBatch | None = None
        self._lock = threading.Lock()

    def get(self, prompts: Any, completions: Any, completion_ids: Any, kwargs: dict[str, Any]) -> RewardBatch:
        with self._lock:
            if self._batch is not None and self._key is completions and len(self._batch) == len(completions):
                return self._batch
            batch = RewardBatch.from_trl(prompts, completions, completion_ids, program_format=self.program_format,
                                         **kwargs)
            self._key, self._batch = completions, batch
            return batch

    def __getstate__(self) -> dict[str, Any]:  # picklable for multiprocessing / deepcopy
        return {"program_format": self.program_format}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["program_format"])


class TrlRewardFunction:
    """A trl reward function wrapping one rlkit :class:`Reward` (``__name__`` = the reward's name)."""

    def __init__(self, reward: Reward, shared: _SharedBatch, log_components: bool = True) -> None:
        self.reward = reward
        self.__name__ = reward.name
        self._shared = shared
        self.log_components = log_components
        self._checked = False

    def _batch(self, prompts: Any, completions: Any, completion_ids: Any, kwargs: dict[str, Any]) -> RewardBatch:
        if not self._checked:
            cols = [k for k in kwargs if k not in _TRL_KEYS]
            missing = self.reward.missing_columns(cols)
            if missing:
                raise ValueError(f"reward {self.reward.name!r} needs dataset columns {missing} that trl did not "
                                 f"pass (columns present: {sorted(cols)}); add them to the dataset and keep "
                                 "GRPOConfig(remove_unused_columns=False)")
            self._checked = True
        return self._shared.get(prompts, completions, completion_ids, kwargs)

    def _out(self, result: RewardResult, kwargs: dict[str, Any]) -> list[float | None]:
        for i, s in enumerate(result.scores):
            if s is not None and not math.isfinite(s):  # already checked by Reward; keep the contract explicit
                raise RewardValueError(f"reward {self.reward.name!r} returned {s} for sample {i}")
        log_metric = kwargs.get("log_metric")
        if self.log_components and callable(log_metric):
            for k, m in result.component_means().items():
                if k != self.reward.name and m is not None:
                    log_metric(f"rewards/{self.reward.name}/{k}", m)
        return list(result.scores)

    def __call__(self, prompts: Any, completions: Any, completion_ids: Any = None, **kwargs: Any) -> list:
        batch = self._batch(prompts, completions, completion_ids, kwargs)
        return self._out(self.reward(batch), kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reward!r})"


class AsyncTrlRewardFunction(TrlRewardFunction):
    """Async form (trl awaits it concurrently with the other async reward functions)."""

    async def __call__(self, prompts: Any, completions: Any, completion_ids: Any = None, **kwargs: Any) -> list:
        batch = self._batch(prompts, completions, completion_ids, kwargs)
        return self._out(await self.reward.acall(batch), kwargs)


def _column_names(dataset: Any) -> list[str] | None:
    if dataset is None:
        return None
    names = getattr(dataset, "column_names", None)
    if isinstance(names, dict):  # DatasetDict: columns of the first split
        names = next(iter(names.values()), [])
    if names is None:
        if isinstance(dataset, Iterable):
            names = list(dataset)
        else:
            raise TypeError(f"cannot read column names from {type(dataset).__name__}")
    return list(names)


def to_trl_reward_funcs(
    reward: Reward | Sequence[Reward],
    *,
    dataset: Any = None,
    columns: Sequence[str] | None = None,
    split: bool = True,
    program_format: str = "auto",
    log_components: bool = True,
) -> tuple[list[TrlRewardFunction], list[float]]:
    """Return ``(reward_funcs, reward_weights)`` for ``GRPOTrainer(reward_funcs=..., args=GRPOConfig(reward_weights=...))``.

    A :class:`WeightedSum` is split into one trl function per child (with its weight) so trl logs each
    component, unless ``split=False``. Pass ``dataset`` (or ``columns``) to check now that every
    required column exists: a missing one raises ValueError listing them all.
    """
    if isinstance(reward, Reward):
        if split and isinstance(reward, WeightedSum) and reward.none == "skip":
            parts, weights = list(reward.rewards), list(reward.weights)
        else:
            parts, weights = [reward], [1.0]
    else:
        parts = list(reward)
        weights = [1.0] * len(parts)
        for r in parts:
            if not isinstance(r, Reward):
                raise TypeError(f"to_trl_reward_funcs: {r!r} is not an rlkit Reward")
    names = [r.name for r in parts]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"to_trl_reward_funcs: reward names {dup} repeat; trl logs by name, make them unique")
    available = list(columns) if columns is not None else _column_names(dataset)
    if available is not None:
        problems = [(r.name, r.missing_columns(available)) for r in parts]
        problems = [(n, m) for n, m in problems if m]
        if problems:
            detail = "; ".join(f"{n} needs {m}" for n, m in problems)
            missing = sorted({c for _, m in problems for c in m})
            raise ValueError(f"dataset lacks columns {missing} ({detail}); dataset columns: {sorted(available)}")
    shared = _SharedBatch(program_format)
    funcs = [
        (AsyncTrlRewardFunction if r.is_async else TrlRewardFunction)(r, shared, log_components) for r in parts
    ]
    return funcs, weights
