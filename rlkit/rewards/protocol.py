"""The reward protocol: a :class:`~rlkit.rewards.batch.RewardBatch` in, one score per sample (or None, with a
reason) out.

A :class:`Reward` is the same object for trl's GRPOTrainer (through :func:`rlkit.rewards.to_trl_reward_funcs`),
for rlkit's environments and for evaluation: each calls it with a :class:`RewardBatch`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlkit.rewards.batch import RewardBatch

logger = logging.getLogger("rlkit.rewards")

__all__ = ["RewardResult", "Reward", "AsyncReward", "FunctionReward", "reward", "RewardValueError"]


class RewardValueError(ValueError):
    """A reward produced NaN/inf or the wrong number of scores; the message names the reward."""


@dataclass
class RewardResult:
    """Scores (None = does not apply), named per-sample components, and a reason per sample (or None)."""

    scores: list[float | None]
    components: dict[str, list[float | None]] = field(default_factory=dict)
    reasons: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.reasons:
            self.reasons = [None] * len(self.scores)
        if len(self.reasons) != len(self.scores):
            raise ValueError(f"RewardResult: {len(self.reasons)} reasons for {len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.scores)

    def mean(self) -> float | None:
        vals = [s for s in self.scores if s is not None]
        return sum(vals) / len(vals) if vals else None

    def component_means(self) -> dict[str, float | None]:
        out = {}
        for k, v in self.components.items():
            vals = [x for x in v if x is not None]
            out[k] = sum(vals) / len(vals) if vals else None
        return out


#: what a reward function may return: a RewardResult or one score (or None) per sample
ScoresLike = RewardResult | Sequence[float | None]


def _check_finite(name: str, scores: Sequence[object], what: str = "score") -> list[float | None]:
    out: list[float | None] = []
    for i, s in enumerate(scores):
        if s is None:
            out.append(None)
            continue
        try:
            v = float(s)
        except (TypeError, ValueError):
            raise RewardValueError(f"reward {name!r} returned a non-number {what} {s!r} for sample {i}") from None
        if not math.isfinite(v):
            raise RewardValueError(f"reward {name!r} returned {v} ({what}) for sample {i}; rewards must be finite "
                                   "or None")
        out.append(v)
    return out


class Reward:
    """Base class: subclasses implement :meth:`compute`; ``__call__`` validates and logs the result.

    ``name`` is used for logging (trl's ``rewards/<name>/mean``) and for components; ``required_columns``
    lists the dataset columns the reward needs (checked by the trl adapter when it is built).
    """

    name: str = "reward"
    required_columns: tuple[str, ...] = ()
    is_async: bool = False

    def compute(self, batch: RewardBatch) -> RewardResult:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.compute")

    async def acompute(self, batch: RewardBatch) -> RewardResult:
        """Async variant; the default runs :meth:`compute` in a worker thread."""
        return await asyncio.to_thread(self.compute, batch)

    def missing_columns(self, available: Iterable[str]) -> list[str]:
        """Required columns absent from ``available`` (alternatives written ``"a|b"``; any one suffices)."""
        have = set(available)
        return [c for c in self.required_columns if not any(a in have for a in c.split("|"))]

    def _finish(self, batch: RewardBatch, result: ScoresLike) -> RewardResult:
        if not isinstance(result, RewardResult):
            result = RewardResult(list(result))
        if len(result.scores) != len(batch):
            raise RewardValueError(f"reward {self.name!r} returned {len(result.scores)} scores for "
                                   f"{len(batch)} samples")
        result.scores = _check_finite(self.name, result.scores)
        for k, v in result.components.items():
            if len(v) != len(batch):
                raise RewardValueError(f"reward {self.name!r}: component {k!r} has {len(v)} values for "
                                       f"{len(batch)} samples")
            result.components[k] = _check_finite(self.name, v, what=f"component {k!r}")
        if self.name not in result.components:
            result.components = {self.name: list(result.scores), **result.components}
        nones = [(i, r) for i, (s, r) in enumerate(zip(result.scores, result.reasons)) if s is None]
        if nones:
            shown = "; ".join(f"#{i}: {r or 'no reason given'}" for i, r in nones[:5])
            more = f" (+{len(nones) - 5} more)" if len(nones) > 5 else ""
            logger.info("reward %s: %d/%d samples not scored: %s%s", self.name, len(nones), len(batch), shown, more)
        return result

    def __call__(self, batch: RewardBatch) -> RewardResult:
        if not isinstance(batch, RewardBatch):
            raise TypeError(f"reward {self.name!r} expects a RewardBatch, got {type(batch).__name__}; build one "
                            "with RewardBatch(completions, prompts, columns)")
        return self._finish(batch, self.compute(batch))

    async def acall(self, batch: RewardBatch) -> RewardResult:
        """Score asynchronously (async rewards overlap their I/O; sync ones run in a thread)."""
        return self._finish(batch, await self.acompute(batch))

    def score(self, completions: Sequence[str], **columns: Sequence[object]) -> list[float | None]:
        """Convenience for evaluation: scores for ``completions`` with dataset ``columns`` as keyword lists."""
        prompts = columns.pop("prompts", None)
        return self(RewardBatch(completions, prompts, columns)).scores

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _run_coro_blocking(coro: Coroutine[Any, Any, RewardResult]) -> RewardResult:
    """Run a coroutine to completion from sync code, also when an event loop already runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, RewardResult | BaseException] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class AsyncReward(Reward):
    """A reward whose natural form is a coroutine (e.g. an HTTP judge): implement :meth:`acompute`."""

    is_async = True

    async def acompute(self, batch: RewardBatch) -> RewardResult:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.acompute")

    def compute(self, batch: RewardBatch) -> RewardResult:
        return _run_coro_blocking(self.acompute(batch))


class FunctionReward(Reward):
    """Wrap ``fn(batch) -> list[float | None] | RewardResult`` (sync or ``async def``) as a :class:`Reward`."""

    def __init__(self, fn: Callable[[RewardBatch], ScoresLike | Awaitable[ScoresLike]], name: str | None = None,
                 required_columns: Sequence[str] = ()) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "reward")
        self.required_columns = tuple(required_columns)
        self.is_async = asyncio.iscoroutinefunction(fn)

    def compute(self, batch: RewardBatch) -> RewardResult:
        if self.is_async:
            return _run_coro_blocking(self.acompute(batch))
        return _as_result(self.fn(batch))  # type: ignore[arg-type]

    async def acompute(self, batch: RewardBatch) -> RewardResult:
        if self.is_async:
            return _as_result(await self.fn(batch))  # type: ignore[misc]
        return await asyncio.to_thread(self.compute, batch)


def _as_result(value: ScoresLike) -> RewardResult:
    if isinstance(value, RewardResult):
        return value
    return RewardResult(list(value))


def reward(name: str | None = None, *, columns: Sequence[str] = ()
           ) -> Callable[[Callable[[RewardBatch], ScoresLike]], FunctionReward]:
    """Decorator: ``@reward("brightness", columns=["image"])`` turns ``fn(batch) -> scores`` into a Reward."""

    def wrap(fn: Callable[[RewardBatch], ScoresLike]) -> FunctionReward:
        return FunctionReward(fn, name=name, required_columns=columns)

    return wrap
