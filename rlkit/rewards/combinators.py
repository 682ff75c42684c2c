"""Combinators: weighted sum, gate (nothing counts unless a gate passes), normalise-then-sum."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence

from rlkit.rewards.batch import RewardBatch
from rlkit.rewards.protocol import Reward, RewardResult

__all__ = ["WeightedSum", "Gate", "NormalizedSum"]

_NONE_POLICIES = ("skip", "renormalize", "propagate")


def _children(rewards: Sequence[Reward] | Mapping[Reward, float], weights: Sequence[float] | None,
              owner: str) -> tuple[list[Reward], list[float]]:
    if isinstance(rewards, Mapping):
        if weights is not None:
            raise ValueError(f"{owner}: pass weights either in the mapping or as `weights`, not both")
        items = list(rewards.items())
        rewards, weights = [r for r, _ in items], [float(w) for _, w in items]
    rewards = list(rewards)
    if not rewards:
        raise ValueError(f"{owner}: needs at least one reward")
    for r in rewards:
        if not isinstance(r, Reward):
            raise TypeError(f"{owner}: {r!r} is not a Reward (wrap functions with rlkit.rewards.FunctionReward)")
    weights = [1.0] * len(rewards) if weights is None else [float(w) for w in weights]
    if len(weights) != len(rewards):
        raise ValueError(f"{owner}: {len(weights)} weights for {len(rewards)} rewards")
    for r, w in zip(rewards, weights):
        if not math.isfinite(w):
            raise ValueError(f"{owner}: weight of {r.name!r} is {w}; weights must be finite")
    names = [r.name for r in rewards]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{owner}: component names must be unique, {dup} repeat; give them distinct `name`s")
    return rewards, weights


def _merge_components(results: Sequence[RewardResult], rewards: Sequence[Reward]) -> dict[str, list]:
    comps: dict[str, list] = {}
    for r, res in zip(rewards, results):
        comps[r.name] = list(res.scores)
        for k, v in res.components.items():
            if k != r.name:
                comps[f"{r.name}/{k}"] = list(v)
    return comps


def _combine(values: Sequence[Sequence[float | None]], weights: Sequence[float], policy: str,
             names: Sequence[str], n: int) -> tuple[list[float | None], list[str | None]]:
    scores: list[float | None] = []
    reasons: list[str | None] = []
    for i in range(n):
        col = [v[i] for v in values]
        missing = [nm for nm, x in zip(names, col) if x is None]
        present = [(w, x) for w, x in zip(weights, col) if x is not None]
        if not present or (missing and policy == "propagate"):
            scores.append(None)
            reasons.append(f"no score from {missing}")
            continue
        total = sum(w * x for w, x in present)
        if missing and policy == "renormalize":
            wsum = sum(abs(w) for w, _ in present)
            total = total * sum(abs(w) for w in weights) / wsum if wsum > 0 else 0.0
        scores.append(total)
        reasons.append(None)
    return scores, reasons


class WeightedSum(Reward):
    """``sum_k w_k r_k`` per sample. A component that returns None for a sample is handled by ``none``:
    ``"skip"`` counts it as absent (trl's nansum), ``"renormalize"`` rescales the present weights to the
    full weight, ``"propagate"`` makes the sum None. The trl adapter hands each child to trl separately
    (with its weight) so trl logs every component."""

    def __init__(self, rewards: Sequence[Reward] | Mapping[Reward, float], weights: Sequence[float] | None = None,
                 *, name: str = "weighted_sum", none: str = "skip") -> None:
        self.rewards, self.weights = _children(rewards, weights, f"WeightedSum({name!r})")
        if none not in _NONE_POLICIES:
            raise ValueError(f"WeightedSum({name!r}): none={none!r}; expected one of {_NONE_POLICIES}")
        self.name, self.none = name, none
        self.required_columns = tuple(dict.fromkeys(c for r in self.rewards for c in r.required_columns))
        self.is_async = any(r.is_async for r in self.rewards)

    def _result(self, batch: RewardBatch, results: Sequence[RewardResult]) -> RewardResult:
        scores, reasons = _combine([r.scores for r in results], self.weights, self.none,
                                   [r.name for r in self.rewards], len(batch))
        # each component's own reason (a format failure, a missing target) travels with the sum
        for i in range(len(batch)):
            parts = [f"{r.name}: {res.reasons[i]}" for r, res in zip(self.rewards, results) if res.reasons[i]]
            if parts:
                reasons[i] = "; ".join(([reasons[i]] if reasons[i] else []) + parts)
        return RewardResult(scores, _merge_components(results, self.rewards), reasons)

    def compute(self, batch: RewardBatch) -> RewardResult:
        return self._result(batch, [r(batch) for r in self.rewards])

    async def acompute(self, batch: RewardBatch) -> RewardResult:
        return self._result(batch, await asyncio.gather(*(r.acall(batch) for r in self.rewards)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{w:g}*{r!r}" for r, w in zip(self.rewards, self.weights))
        return f"WeightedSum({inner})"


class Gate(Reward):
    """``reward`` only where ``gate`` scores at least ``threshold``; elsewhere ``fail_value`` and the inner
    reward is not computed at all (e.g. a GRM call is skipped when the format is broken). A gate score of
    None counts as failing."""

    def __init__(self, gate: Reward, reward: Reward, *, threshold: float = 1.0, fail_value: float | None = 0.0,
                 name: str | None = None) -> None:
        if not isinstance(gate, Reward) or not isinstance(reward, Reward):
            raise TypeError("Gate(gate, reward): both must be Reward instances")
        self.gate, self.reward, self.threshold, self.fail_value = gate, reward, float(threshold), fail_value
        self.name = name or f"{reward.name}_if_{gate.name}"
        self.required_columns = tuple(dict.fromkeys(gate.required_columns + reward.required_columns))
        self.is_async = gate.is_async or reward.is_async

    def _open(self, g: RewardResult) -> list[int]:
        return [i for i, s in enumerate(g.scores) if s is not None and s >= self.threshold]

    def _result(self, batch: RewardBatch, g: RewardResult, idx: list[int], inner: RewardResult | None) -> RewardResult:
        n = len(batch)
        scores: list[float | None] = [self.fail_value] * n
        reasons: list[str | None] = [
            g.reasons[i] or f"gate {self.gate.name!r} scored {g.scores[i]} < {self.threshold}" for i in range(n)]
        inner_scores: list[float | None] = [None] * n
        comps: dict[str, list] = {self.gate.name: list(g.scores)}
        if inner is not None:
            for j, i in enumerate(idx):
                scores[i], reasons[i], inner_scores[i] = inner.scores[j], inner.reasons[j], inner.scores[j]
            for k, v in inner.components.items():
                if k != self.reward.name:
                    full = [None] * n
                    for j, i in enumerate(idx):
                        full[i] = v[j]
                    comps[f"{self.reward.name}/{k}"] = full
        comps[self.reward.name] = inner_scores
        if self.fail_value is not None:
            reasons = [None if s is not None else r for s, r in zip(scores, reasons)]
        return RewardResult(scores, comps, reasons)

    def compute(self, batch: RewardBatch) -> RewardResult:
        g = self.gate(batch)
        idx = self._open(g)
        inner = self.reward(batch.select(idx)) if idx else None
        return self._result(batch, g, idx, inner)

    async def acompute(self, batch: RewardBatch) -> RewardResult:
        g = await self.gate.acall(batch)
        idx = self._open(g)
        inner = await self.reward.acall(batch.select(idx)) if idx else None
        return self._result(batch, g, idx, inner)


class NormalizedSum(Reward):
    """Standardise each component, then weight and sum: ``sum_k w_k (r_k - mean_k) / (std_k + eps)``.

    ``scope="group"`` normalises within groups of samples sharing a prompt (trl's G generations, as GRPO's
    advantage does), ``"batch"`` over the whole batch; ``method="zscore"`` or ``"minmax"`` (to [0, 1]).
    Useful when components live on different scales (a 0-10 judge next to a 0/1 format check). None
    values are left out of the statistics and of the sum (``none`` as in :class:`WeightedSum`).
    """

    def __init__(self, rewards: Sequence[Reward] | Mapping[Reward, float], weights: Sequence[float] | None = None,
                 *, scope: str = "group", method: str = "zscore", eps: float = 1e-4, name: str = "normalized_sum",
                 none: str = "skip") -> None:
        self.rewards, self.weights = _children(rewards, weights, f"NormalizedSum({name!r})")
        if scope not in ("group", "batch"):
            raise ValueError(f"NormalizedSum({name!r}): scope={scope!r}; expected 'group' or 'batch'")
        if method not in ("zscore", "minmax"):
            raise ValueError(f"NormalizedSum({name!r}): method={method!r}; expected 'zscore' or 'minmax'")
        if none not in _NONE_POLICIES:
            raise ValueError(f"NormalizedSum({name!r}): none={none!r}; expected one of {_NONE_POLICIES}")
        self.scope, self.method, self.eps, self.name, self.none = scope, method, float(eps), name, none
        self.required_columns = tuple(dict.fromkeys(c for r in self.rewards for c in r.required_columns))
        self.is_async = any(r.is_async for r in self.rewards)

    def normalize(self, values: Sequence[float | None], groups: Sequence[int]) -> list[float | None]:
        """Normalise one component's values within each group (None stays None)."""
        out: list[float | None] = [None] * len(values)
        members: dict[int, list[int]] = {}
        for i, g in enumerate(groups):
            if values[i] is not None:
                members.setdefault(g, []).append(i)
        for idx in members.values():
            xs = [float(values[i]) for i in idx]  # type: ignore[arg-type]
            if self.method == "zscore":
                mu = sum(xs) / len(xs)
                sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
                normed = [(x - mu) / (sd + self.eps) if sd + self.eps > 0 else 0.0 for x in xs]
            else:
                lo, hi = min(xs), max(xs)
                normed = [(x - lo) / (hi - lo) if hi - lo > self.eps else 0.5 for x in xs]
            for i, v in zip(idx, normed):
                out[i] = v
        return out

    def _result(self, batch: RewardBatch, results: Sequence[RewardResult]) -> RewardResult:
        groups = batch.group_ids() if self.scope == "group" else [0] * len(batch)
        normed = [self.normalize(r.scores, groups) for r in results]
        scores, reasons = _combine(normed, self.weights, self.none, [r.name for r in self.rewards], len(batch))
        comps = _merge_components(results, self.rewards)
        for r, v in zip(self.rewards, normed):
            comps[f"{r.name}/normalized"] = v
        return RewardResult(scores, comps, reasons)

    def compute(self, batch: RewardBatch) -> RewardResult:
        return self._result(batch, [r(batch) for r in self.rewards])

    async def acompute(self, batch: RewardBatch) -> RewardResult:
        return self._result(batch, await asyncio.gather(*(r.acall(batch) for r in self.rewards)))
