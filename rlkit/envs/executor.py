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

from typing_extensions import Unpack

from rlkit.envs.core import (
    EnvConfigError,
    apply_programs,
    episode_batch,
    episodes_from_rows,
)
from rlkit.envs.retouch import RetouchSettings, _RetouchConfig
from rlkit.rewards import Reward, RewardBatch, TrlRewardFunction, completion_text, to_trl_reward_funcs
from rlkit.rewards.batch import TRL_CONTROL_KWARGS, Messages

__all__ = ["RetouchExecutor", "RetouchEnvReward", "env_rows_from_trl"]


def env_rows_from_trl(n: int, kwargs: Mapping[str, Any]) -> list[dict[str, object]]:
    """One environment row per completion from the dataset columns trl passes (lists of length ``n``)."""
    cols = {k: v for k, v in kwargs.items()
            if k not in TRL_CONTROL_KWARGS and isinstance(v, (list, tuple)) and len(v) == n}
    if "image" not in cols and "images" not in cols:
        raise EnvConfigError(f"the GRPO dataset needs an 'image' column for the environment (columns passed: "
                             f"{sorted(cols)}); keep GRPOConfig(remove_unused_columns=False)")
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


class RetouchExecutor:
    """Execute completions as one-step retouching episodes: parse once, render once (batched), no gym overhead.

    The same settings and parsing rules as :class:`rlkit.envs.RetouchEnv` (``image_size`` = (H, W), ``fmt``,
    ``clamp``, ``strict``, ``finish_token``, ``max_text_length``, ``device``).
    """

    def __init__(self, **settings: Unpack[RetouchSettings]) -> None:
        if {"max_steps", "reward_mode", "reward"} & set(settings):
            raise EnvConfigError("RetouchExecutor runs one-step episodes scored by the bridge: max_steps, "
                                 "reward_mode and reward are fixed")
        self.cfg = _RetouchConfig(**settings)
        self._calls = 0

    @property
    def image_size(self) -> tuple[int, int]:
        return self.cfg.image_size

    def execute(self, prompts: Sequence[object], texts: Sequence[str], columns: Mapping[str, Sequence[object]], *,
                environments: Sequence[object] | None = None) -> RewardBatch:
        """Rollouts of ``texts`` acting on their rows' photos (``image``/``images`` column)."""
        return self.run(texts, env_rows_from_trl(len(texts), columns))

    def run(self, texts: Sequence[str], rows: Sequence[Mapping[str, object]]) -> RewardBatch:
        """Execute ``texts[i]`` on ``rows[i]`` (one engine call) and return the batch the rewards score."""
        if len(texts) != len(rows):
            raise EnvConfigError(f"RetouchExecutor: {len(texts)} completions for {len(rows)} rows")
        self._calls += 1
        episodes = episodes_from_rows(rows, self.cfg.image_size, seeds=[self._calls * 100_003 + i for i in range(len(rows))],
                                      row_indices=range(len(rows)))
        actions = [self.cfg.parse(t) for t in texts]
        todo = [i for i, a in enumerate(actions) if a.valid and a.program is not None]
        errors = apply_programs([episodes[i] for i in todo], [actions[i].program for i in todo], self.cfg.device)
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

    def __init__(self, reward: Reward, *, name: str | None = None, invalid_reward: float = 0.0,
                 **settings: Unpack[RetouchSettings]) -> None:
        if "max_steps" in settings or "reward_mode" in settings:
            raise EnvConfigError("RetouchEnvReward runs one-step episodes: max_steps/reward_mode are fixed")
        settings.setdefault("image_size", 64)
        self.executor = RetouchExecutor(**settings)
        name = name or f"retouch_{getattr(reward, 'name', 'reward')}"
        (func,), _ = to_trl_reward_funcs(reward, executor=self.executor, split=False, name=name,
                                         invalid_reward=invalid_reward)
        super().__init__(reward, func._shared, func.log_components, name=name, invalid_reward=invalid_reward)

    def score(self, completions: Sequence[str | Messages], rows: Sequence[Mapping[str, object]]
              ) -> tuple[list[float], RewardBatch]:
        """Rewards for ``completions`` acting on ``rows`` (one step each), and the scored batch (rollouts with
        parse, executed image, validity)."""
        batch = self.executor.run([completion_text(c) for c in completions], rows)
        scores = self._out(batch, self.reward(batch), {})
        return [0.0 if s is None else float(s) for s in scores], batch

    def __repr__(self) -> str:
        return f"RetouchEnvReward({self.reward!r}, image_size={self.executor.image_size!r})"
