"""The one bridge from rlkit rewards to trl's GRPOTrainer: ``reward_funcs`` (+ ``reward_weights``).

trl 1.16 calls each reward function as ``f(prompts=..., completions=..., completion_ids=..., **columns)``
where ``columns`` holds every dataset column (``image``/``images`` included), ``trainer_state``,
``log_extra``, ``log_metric`` and, with ``environment_factory``, ``environments``. It logs each function
under ``__name__`` (``rewards/<name>/mean``), turns None into NaN and sums with ``reward_weights`` using
nansum. Async callables (``async def __call__``) run concurrently on trl's event loop.

Per trl step the bridge builds one :class:`~rlkit.rewards.RewardBatch` shared by all its functions: its
rollouts are made by an ``executor`` when one is given (``rlkit.envs.RetouchExecutor`` executes every
completion in the retouching environment, at the environment's image size), otherwise the completions are
parsed and executed once on the dataset's images when a reward first needs it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from rlkit.rewards.batch import TRL_CONTROL_KWARGS, Messages, RewardBatch, completion_text
from rlkit.rewards.combinators import WeightedSum
from rlkit.rewards.protocol import Reward, RewardResult, RewardValueError

logger = logging.getLogger("rlkit.rewards")

__all__ = ["to_trl_reward_funcs", "TrlRewardFunction", "AsyncTrlRewardFunction", "RolloutExecutor"]


class RolloutExecutor(Protocol):
    """Executes a trl step's completions (e.g. in an environment) and returns the batch rewards score.

    ``texts`` are the completions' texts (assistant turns joined), ``columns`` the dataset columns trl passed
    (one value per completion), ``environments`` trl's environment_factory instances. The returned batch's
    rollouts carry each completion's parse and executed image, and its columns the images rewards compare
    (for an environment: resized to its image size).
    """

    def execute(self, prompts: Sequence[object], texts: Sequence[str], columns: Mapping[str, Sequence[object]], *,
                environments: Sequence[object] | None = None) -> RewardBatch: ...


class _SharedBatch:
    """One RewardBatch per trl reward step, shared by all functions built by one bridge call.

    trl passes the very same ``completions`` list object to every reward function of a step, so identity
    of that list tells whether the cached batch (parsed programs, rendered images) is still current.
    """

    def __init__(self, program_format: str, executor: RolloutExecutor | None, stats_name: str | None) -> None:
        self.program_format = program_format
        self.executor = executor
        self.stats_name = stats_name
        self._key: object = None
        self._batch: RewardBatch | None = None
        self._lock = threading.Lock()

    def get(self, prompts: Sequence[object], completions: Sequence[str | Messages],
            completion_ids: Sequence[Sequence[int]] | None, kwargs: dict[str, Any]) -> RewardBatch:
        with self._lock:
            if self._batch is not None and self._key is completions and len(self._batch) == len(completions):
                return self._batch
            if self.executor is not None:
                n = len(completions)
                columns = {k: v for k, v in kwargs.items()
                           if k not in TRL_CONTROL_KWARGS and isinstance(v, (list, tuple)) and len(v) == n}
                batch = self.executor.execute(prompts, [completion_text(c) for c in completions], columns,
                                              environments=kwargs.get("environments"))
                self._log_validity(batch, kwargs)
            else:
                batch = RewardBatch.from_trl(prompts, completions, completion_ids,
                                             program_format=self.program_format, **kwargs)
            self._key, self._batch = completions, batch
            return batch

    def _log_validity(self, batch: RewardBatch, kwargs: dict[str, Any]) -> None:
        """``rewards/<name>/valid_fraction``: the share of completions that were executable (once per step)."""
        log_metric = kwargs.get("log_metric")
        if self.stats_name and callable(log_metric) and len(batch):
            valid = sum(r.is_valid for r in batch.rollouts)
            log_metric(f"rewards/{self.stats_name}/valid_fraction", valid / len(batch))

    def __getstate__(self) -> dict[str, object]:  # picklable for multiprocessing / deepcopy
        return {"program_format": self.program_format, "executor": self.executor, "stats_name": self.stats_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["program_format"], state["executor"], state["stats_name"])


class TrlRewardFunction:
    """A trl reward function wrapping one rlkit :class:`Reward` (``__name__`` = the reward's name).

    With ``invalid_reward`` set, a completion whose program did not parse gets that value instead of the
    reward's score (the environment's convention for a malformed action).
    """

    def __init__(self, reward: Reward, shared: _SharedBatch, log_components: bool = True, *,
                 name: str | None = None, invalid_reward: float | None = None) -> None:
        self.reward = reward
        self.__name__ = name or reward.name
        self._shared = shared
        self.log_components = log_components
        self.invalid_reward = invalid_reward
        self._checked = False
        self.last_batch: RewardBatch | None = None

    def _batch(self, prompts: Sequence[object], completions: Sequence[str | Messages],
               completion_ids: Sequence[Sequence[int]] | None, kwargs: dict[str, Any]) -> RewardBatch:
        if completions is None:
            raise ValueError(f"reward function {self.__name__!r}: trl passed no completions")
        if not self._checked and self._shared.executor is None:
            cols = [k for k in kwargs if k not in TRL_CONTROL_KWARGS]
            missing = self.reward.missing_columns(cols)
            if missing:
                raise ValueError(f"reward {self.reward.name!r} needs dataset columns {missing} that trl did not "
                                 f"pass (columns present: {sorted(cols)}); add them to the dataset and keep "
                                 "GRPOConfig(remove_unused_columns=False)")
            self._checked = True
        batch = self._shared.get(prompts, completions, completion_ids, kwargs)
        self.last_batch = batch
        return batch

    def _out(self, batch: RewardBatch, result: RewardResult, kwargs: dict[str, Any]) -> list[float | None]:
        for i, s in enumerate(result.scores):
            if s is not None and not math.isfinite(s):  # already checked by Reward; keep the contract explicit
                raise RewardValueError(f"reward {self.reward.name!r} returned {s} for sample {i}")
        log_metric = kwargs.get("log_metric")
        if self.log_components and callable(log_metric):
            for k, m in result.component_means().items():
                if k != self.__name__ and m is not None:
                    log_metric(f"rewards/{self.__name__}/{k}", m)
        scores = list(result.scores)
        if self.invalid_reward is not None:
            scores = [s if r.is_valid else self.invalid_reward for r, s in zip(batch.rollouts, scores)]
        return scores

    def __call__(self, prompts: Sequence[object] | None = None, completions: Sequence[str | Messages] | None = None,
                 completion_ids: Sequence[Sequence[int]] | None = None, **kwargs: Any) -> list[float | None]:
        batch = self._batch(prompts, completions, completion_ids, kwargs)  # type: ignore[arg-type]
        return self._out(batch, self.reward(batch), kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reward!r})"


class AsyncTrlRewardFunction(TrlRewardFunction):
    """Async form (trl awaits it concurrently with the other async reward functions)."""

    async def __call__(self, prompts: Sequence[object] | None = None,  # type: ignore[override]
                       completions: Sequence[str | Messages] | None = None,
                       completion_ids: Sequence[Sequence[int]] | None = None, **kwargs: Any) -> list[float | None]:
        batch = self._batch(prompts, completions, completion_ids, kwargs)  # type: ignore[arg-type]
        return self._out(batch, await self.reward.acall(batch), kwargs)


def _column_names(dataset: object) -> list[str] | None:
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
    dataset: object = None,
    columns: Sequence[str] | None = None,
    split: bool = True,
    program_format: str = "auto",
    log_components: bool = True,
    executor: RolloutExecutor | None = None,
    name: str | None = None,
    invalid_reward: float | None = None,
) -> tuple[list[TrlRewardFunction], list[float]]:
    """Return ``(reward_funcs, reward_weights)`` for ``GRPOTrainer(reward_funcs=..., args=GRPOConfig(reward_weights=...))``.

    A :class:`WeightedSum` is split into one trl function per child (with its weight) so trl logs each
    component, unless ``split=False``. Pass ``dataset`` (or ``columns``) to check now that every
    required column exists: a missing one raises ValueError listing them all. ``executor`` executes each
    step's completions (e.g. ``rlkit.envs.RetouchExecutor``); ``name`` names the single function when not
    split and the ``valid_fraction`` metric; ``invalid_reward`` replaces the score of a completion whose
    program did not parse.
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
    names = [r.name for r in parts] if name is None or len(parts) > 1 else [name]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"to_trl_reward_funcs: reward names {dup} repeat; trl logs by name, make them unique")
    available = list(columns) if columns is not None else _column_names(dataset)
    if available is not None and executor is None:
        problems = [(r.name, r.missing_columns(available)) for r in parts]
        problems = [(n, m) for n, m in problems if m]
        if problems:
            detail = "; ".join(f"{n} needs {m}" for n, m in problems)
            missing = sorted({c for _, m in problems for c in m})
            raise ValueError(f"dataset lacks columns {missing} ({detail}); dataset columns: {sorted(available)}")
    shared = _SharedBatch(program_format, executor, name or (names[0] if len(names) == 1 else None))
    funcs = [
        (AsyncTrlRewardFunction if r.is_async else TrlRewardFunction)(
            r, shared, log_components, name=n, invalid_reward=invalid_reward)
        for r, n in zip(parts, names)
    ]
    return funcs, weights
