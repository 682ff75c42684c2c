"""Single-turn GRPO in the retouching environment: each completion is one environment step.

:class:`RetouchExecutor` is the :class:`rlkit.rewards.RolloutExecutor` the trl bridge
(:func:`rlkit.rewards.to_trl_reward_funcs`) calls once per trl step: each completion is parsed once with
the environment's rules (:func:`rlkit.envs.parse_action`) and applied to its row's photo at the
environment's image size in one batched engine call; the rewards then read those rollouts.
:class:`RetouchEnvReward` is that bridge as one trl reward function with the environment's conventions
(a malformed completion scores ``invalid_reward``, ``rewards/<name>/valid_fraction`` is logged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from rlkit.envs.core import (
    EnvConfigError,
    ParsedAction,
    apply_programs,
    episode_batch,
    episode_from_row,
    parse_action,
)
from rlkit.rewards import Reward, RewardBatch, TrlRewardFunction, completion_text, to_trl_reward_funcs
from rlkit.rewards.batch import TRL_CONTROL_KWARGS, Messages

__all__ = ["RetouchExecutor", "RetouchEnvReward", "env_rows_from_trl"]


def env_rows_from_trl(n: int, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One environment row per completion from the dataset columns trl passes (lists of length ``n``)."""
    cols = {k: v for k, v in kwargs.items()
            if k not in TRL_CONTROL_KWARGS and isinstance(v, (list, tuple)) and len(v) == n}
    if "image" not in cols and "images" not in cols:
        raise EnvConfigError(f"the GRPO dataset needs an 'image' column for the environment (columns passed: "
                             f"{sorted(cols)}); keep GRPOConfig(remove_unused_columns=False)")
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


class RetouchExecutor:
    """Execute completions as one-step retouching episodes: parse once, render once (batched), no gym overhead.

    Same parsing and execution rules as :class:`rlkit.envs.RetouchEnv` (``fmt``, ``clamp``, ``strict``,
    ``finish_token``, ``max_text_length``); images are resized to ``image_size`` = (H, W).
    """

    def __init__(self, *, image_size: int | tuple[int, int] = 64, fmt: str = "auto", clamp: bool = False,
                 strict: bool = True, finish_token: str | None = "<finish>", max_text_length: int = 4096,
                 device: str | torch.device = "cpu") -> None:
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        if min(self.image_size) < 8:
            raise EnvConfigError(f"image_size must be at least 8x8, got {self.image_size}")
        if int(max_text_length) < 1:
            raise EnvConfigError(f"max_text_length must be >= 1, got {max_text_length}")
        self.fmt, self.clamp, self.strict = fmt, bool(clamp), bool(strict)
        self.finish_token, self.max_text_length, self.device = finish_token, int(max_text_length), device
        self._seed = 0

    def parse(self, text: str) -> ParsedAction:
        """One completion parsed with the environment's rules (too-long text is an invalid action)."""
        if len(text) > self.max_text_length:
            return ParsedAction(text=text, program=None, valid=False, finished=False, problems=[
                {"position": self.max_text_length,
                 "reason": f"action longer than max_text_length={self.max_text_length} characters"}])
        return parse_action(text, fmt=self.fmt, finish_token=self.finish_token, clamp=self.clamp, strict=self.strict)

    def execute(self, prompts: Sequence[object], completions: Sequence[str | Messages],
                columns: Mapping[str, Sequence[object]], *,
                completion_ids: Sequence[Sequence[int]] | None = None,
                environments: Sequence[object] | None = None) -> RewardBatch:
        """Rollouts of ``completions`` acting on their rows' photos (``image``/``images`` column)."""
        rows = env_rows_from_trl(len(completions), columns)
        return self.run([completion_text(c) for c in completions], rows)

    def run(self, texts: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> RewardBatch:
        """Execute ``texts[i]`` on ``rows[i]`` (one engine call) and return the batch the rewards score."""
        if len(texts) != len(rows):
            raise EnvConfigError(f"RetouchExecutor: {len(texts)} completions for {len(rows)} rows")
        self._seed += 1
        episodes = [episode_from_row(row, self.image_size, seed=self._seed * 100_003 + i, row_index=i)
                    for i, row in enumerate(rows)]
        actions = [self.parse(t) for t in texts]
        todo = [i for i, a in enumerate(actions) if a.valid and a.program is not None]
        errors = apply_programs([episodes[i] for i in todo], [actions[i].program for i in todo], self.device)
        batch = episode_batch(episodes, [a.rollout(e.current) for e, a in zip(episodes, actions)])
        for i, err in zip(todo, errors):
            if err is not None:
                batch.rollouts[i].execution_error, batch.rollouts[i].valid = err, False
        for r, a in zip(batch.rollouts, actions):
            if not a.valid:
                r.valid = False
            elif a.finished and a.program is None:
                r.valid = True  # a bare finish is a valid action that leaves the photo as it is
        return batch


class RetouchEnvReward(TrlRewardFunction):
    """trl reward function for single-turn GRPO: each completion executed as one environment step.

    ``reward`` (any rlkit reward, e.g. ``rlkit.rewards.retouchiq_policy_reward()``) scores the executed edits
    in one call; a malformed completion gets ``invalid_reward`` (0.0). Logs ``rewards/<name>/valid_fraction``
    and each reward component's mean. ``env_kwargs`` are :class:`RetouchExecutor`'s settings.
    """

    def __init__(self, reward: Reward, *, image_size: int | tuple[int, int] = 64, fmt: str = "auto",
                 name: str | None = None, invalid_reward: float = 0.0, **env_kwargs: Any) -> None:
        if "max_steps" in env_kwargs or "reward_mode" in env_kwargs:
            raise EnvConfigError("RetouchEnvReward runs one-step episodes: max_steps/reward_mode are fixed")
        self.executor = RetouchExecutor(image_size=image_size, fmt=fmt, **env_kwargs)
        name = name or f"retouch_{getattr(reward, 'name', 'reward')}"
        (func,), _ = to_trl_reward_funcs(reward, executor=self.executor, split=False, name=name,
                                         invalid_reward=invalid_reward)
        super().__init__(reward, func._shared, func.log_components, name=name, invalid_reward=invalid_reward)

    def score(self, completions: Sequence[str | Messages], rows: Sequence[Mapping[str, Any]]
              ) -> tuple[list[float], RewardBatch]:
        """Rewards for ``completions`` acting on ``rows`` (one step each), and the scored batch (rollouts with
        parse, executed image, validity)."""
        batch = self.executor.run([completion_text(c) for c in completions], rows)
        scores = self._out(batch, self.reward(batch), {})
        return [0.0 if s is None else float(s) for s in scores], batch

    def __repr__(self) -> str:
        return f"RetouchEnvReward({self.reward!r}, image_size={self.executor.image_size!r})"
