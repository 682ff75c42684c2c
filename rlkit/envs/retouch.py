"""Gymnasium environments in which a policy retouches a photo with the parametric engine.

``RetouchEnv`` (one episode) and ``VectorRetouchEnv`` (N episodes, one batched engine call and one
reward call per step) share this contract, which is stable API:

- ``reset(seed=..., options={"row": row})`` or ``options={"index": i}`` (a row of the ``dataset``
  given at construction; with neither, a row is drawn with the seeded RNG). A row holds ``image``,
  optional ``instruction``, ``target_image``, ``source_image`` and any columns the reward needs.
- observation: ``{"image": uint8 (H, W, 3), "instruction": str}`` plus ``"source"`` when
  ``include_source`` (the pre-edit original for editing refinement; the starting photo otherwise).
  Images are resized to the configured ``image_size`` = (H, W) at reset.
- action: policy text (parsed, never evaluated), an ``EditProgram`` or a program dict. A valid
  program is applied to the *current* image. Text containing ``finish_token`` ends the episode
  (after applying any program in the same text).
- reward: ``reward(RewardBatch) -> RewardResult`` for any rlkit reward (or such a callable) on the
  current image. ``reward_mode="final"``: 0 on intermediate steps, the score when the episode ends;
  ``"step"``: the score after every valid step; ``"delta"``: the change of the score since the last
  scored step (the initial image is scored at reset). A malformed action gets ``invalid_reward``
  (0.0), the image is unchanged, and the episode continues (or ends if it was the last step).
- ``terminated``: the policy finished or used its budget of ``max_steps`` actions (the budget is part
  of the task; ``truncated`` is always False, left to ``gymnasium.wrappers.TimeLimit``).
- info: ``step``, ``valid``, ``finished``, ``budget_exhausted``, ``parse_problems``
  [{position, reason}], ``format``,
  ``reasoning``, ``program`` (the applied ``EditProgram`` or None), ``program_dict`` (its canonical dict;
  ``{}`` when nothing was applied, so gymnasium's vector envs can batch it: check ``valid``),
  ``execution_error``, ``reward_components`` {name: value}, ``reward_reason``, ``score``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from typing_extensions import TypedDict, Unpack

from rlkit.envs._images import save_strip
from rlkit.envs.core import (
    Action,
    EnvConfigError,
    Episode,
    Observation,
    ParsedAction,
    apply_programs,
    episode_from_row,
    observation_arrays,
    observe,
    parse_action,
    row_for_reset,
    score_episodes,
    text_image_spaces,
)
from rlkit.ops import EditProgram
from rlkit.rewards import Reward, RewardBatch, RewardResult

__all__ = ["REWARD_MODES", "RetouchEnv", "RetouchSettings", "VectorRetouchEnv"]

REWARD_MODES = ("final", "step", "delta")


class RetouchSettings(TypedDict, total=False):
    """The keyword settings both retouching environments take (defaults in :class:`_RetouchConfig`)."""

    reward: Reward | Callable[[RewardBatch], RewardResult] | None
    image_size: tuple[int, int] | int
    max_steps: int
    fmt: str
    include_source: bool
    reward_mode: str
    finish_token: str | None
    invalid_reward: float
    max_text_length: int
    clamp: bool
    strict: bool
    device: str | torch.device


class _RetouchConfig:
    """Validated settings shared by the single and vector environments."""

    def __init__(
        self,
        dataset: Sequence[Mapping[str, object]] | None = None,
        *,
        reward: Reward | Callable[[RewardBatch], RewardResult] | None = None,
        image_size: tuple[int, int] | int = (256, 256),
        max_steps: int = 1,
        fmt: str = "auto",
        include_source: bool = False,
        reward_mode: str = "final",
        finish_token: str | None = "<finish>",
        invalid_reward: float = 0.0,
        max_text_length: int = 4096,
        clamp: bool = False,
        strict: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        try:
            h, w = (int(v) for v in image_size)
        except (TypeError, ValueError) as exc:
            raise EnvConfigError(f"image_size must be (height, width) or an int, got {image_size!r}") from exc
        if h < 8 or w < 8:
            raise EnvConfigError(f"image_size must be at least 8x8, got {(h, w)}")
        if int(max_steps) < 1:
            raise EnvConfigError(f"max_steps must be >= 1, got {max_steps}")
        if reward_mode not in REWARD_MODES:
            raise EnvConfigError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if reward is not None and not callable(reward):
            raise EnvConfigError(
                f"reward must be an rlkit Reward or a callable(RewardBatch), got {type(reward).__name__}"
            )
        if dataset is not None and (not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__")):
            raise EnvConfigError(
                f"dataset must be an indexable sequence of rows, got {type(dataset).__name__}"
            )
        if dataset is not None and len(dataset) == 0:
            raise EnvConfigError("dataset is empty")
        if int(max_text_length) < 1:
            raise EnvConfigError(f"max_text_length must be >= 1, got {max_text_length}")
        self.dataset = dataset
        self.reward = reward
        self.image_size = (h, w)
        self.max_steps = int(max_steps)
        self.fmt = fmt
        self.include_source = bool(include_source)
        self.reward_mode = reward_mode
        self.finish_token = finish_token
        self.invalid_reward = float(invalid_reward)
        self.max_text_length = int(max_text_length)
        self.clamp = bool(clamp)
        self.device = device
        self.strict = bool(strict)

    def build_spaces(self) -> tuple[spaces.Dict, spaces.Text]:
        """The observation and action spaces of these settings."""
        return text_image_spaces(self.image_size, self.max_text_length, self.include_source)

    def parse(self, action: object) -> ParsedAction:
        """An action parsed with these settings; text longer than the action space allows is invalid."""
        if isinstance(action, str) and len(action) > self.max_text_length:
            return ParsedAction(text=action, program=None, valid=False, finished=False, problems=[
                {"position": self.max_text_length,
                 "reason": f"action longer than max_text_length={self.max_text_length} characters"}])
        return parse_action(action, fmt=self.fmt, finish_token=self.finish_token, clamp=self.clamp,
                            strict=self.strict)

    def observe(self, e: Episode) -> Observation:
        return observe(e, self.max_text_length, self.include_source)

    def row(
        self, options: Mapping[str, Any] | None, rng: np.random.Generator
    ) -> tuple[Mapping[str, object], int | None]:
        return row_for_reset(options, self.dataset, rng)


def _step_many(
    cfg: _RetouchConfig, episodes: Sequence[Episode], actions: Sequence[Action]
) -> list[tuple[float, bool, bool, dict[str, Any]]]:
    """Advance several episodes by one action each: one engine call, one reward call."""
    parsed = [cfg.parse(a) for a in actions]
    to_apply = [i for i, p in enumerate(parsed) if p.valid and p.program is not None]
    errors: dict[int, str | None] = dict.fromkeys(range(len(episodes)))
    if to_apply:
        for i, err in zip(
            to_apply,
            apply_programs(
                [episodes[i] for i in to_apply], [parsed[i].program for i in to_apply], cfg.device
            ),
        ):
            errors[i] = err
    results: list[tuple[float, bool, bool, dict[str, Any]]] = []
    ends: list[tuple[bool, bool]] = []
    for i, (e, p) in enumerate(zip(episodes, parsed)):
        e.steps += 1
        e.completions.append(p.text)
        ok = p.valid and errors[i] is None
        if ok and p.program is not None:
            e.programs.append(p.program)
        # The edit budget is part of the task (one program per episode in RetouchIQ), so using it up
        # terminates the episode; truncation is left to external time limits (gymnasium.wrappers.TimeLimit).
        terminated = p.finished or e.steps >= cfg.max_steps
        ends.append((terminated, False))
    # Which episodes are scored now: every valid step ("step"/"delta") or valid final steps ("final").
    to_score = []
    for i, p in enumerate(parsed):
        ok = p.valid and errors[i] is None
        ended = any(ends[i])
        if ok and (cfg.reward_mode != "final" or ended):
            to_score.append(i)
    scored = dict(
        zip(
            to_score,
            score_episodes(cfg.reward, [episodes[i] for i in to_score], [parsed[i] for i in to_score]),
        )
    )
    for i, (e, p) in enumerate(zip(episodes, parsed)):
        terminated, truncated = ends[i]
        ok = p.valid and errors[i] is None
        info = {
            "step": e.steps,
            **p.info(),
            "budget_exhausted": e.steps >= cfg.max_steps,
            "execution_error": errors[i],
            "reward_components": {},
            "reward_reason": None,
            "score": None,
        }
        if not ok:
            info["program"], info["program_dict"] = None, {}
            reward = cfg.invalid_reward
            info["valid"] = False
        elif i in scored:
            s = scored[i]
            info.update(reward_components=s.components, reward_reason=s.reason, score=s.score)
            if s.score is None:  # the reward could not score this sample (reason in info): no signal
                reward = 0.0
            elif cfg.reward_mode == "delta":
                reward = s.score - (0.0 if e.last_score is None else e.last_score)
                e.last_score = s.score
            else:
                reward = s.score
                e.last_score = s.score
        else:
            reward = 0.0
        e.done = terminated or truncated
        results.append((float(reward), terminated, truncated, info))
    return results


class RetouchEnv(gym.Env):
    """One retouching episode: photo + instruction in, policy edits executed by the engine, rlkit reward out.

    See the module docstring for the reset/step/observation/reward/info contract.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, dataset: Sequence[Mapping[str, object]] | None = None, *, render_mode: str | None = None,
                 **settings: Unpack[RetouchSettings]) -> None:
        self.cfg = _RetouchConfig(dataset, **settings)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise EnvConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space, self.action_space = self.cfg.build_spaces()
        self.episode: Episode | None = None

    # -- gymnasium API ---------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        row, index = self.cfg.row(options, self.np_random)
        ep_seed = int(self.np_random.integers(2**31 - 1))
        self.episode = episode_from_row(row, self.cfg.image_size, seed=ep_seed, row_index=index)
        info: dict[str, Any] = {"row_index": index, "step": 0}
        if self.cfg.reward_mode == "delta" and self.cfg.reward is not None:
            s = score_episodes(self.cfg.reward, [self.episode], [""])[0]
            self.episode.last_score = s.score
            info["score"] = s.score
        return self.cfg.observe(self.episode), info

    def step(self, action: Action) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        e = self._require_episode()
        if e.done:
            raise EnvConfigError("step() called after the episode ended; call reset() first")
        reward, terminated, truncated, info = _step_many(self.cfg, [e], [action])[0]
        return self.cfg.observe(e), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.episode is None:
            return None
        return observation_arrays(self.episode)["image"]

    # -- helpers -----------------------------------------------------------------------------------------
    def _require_episode(self) -> Episode:
        if self.episode is None:
            raise EnvConfigError("call reset() before step()")
        return self.episode

    @property
    def current_image(self) -> torch.Tensor:
        """The current image as a (3, H, W) float tensor in [0, 1]."""
        return self._require_episode().current

    @property
    def applied_programs(self) -> list[EditProgram]:
        """EditPrograms applied so far this episode, in order."""
        return list(self._require_episode().programs)

    def save_png(self, path: str, *, height: int = 256) -> str:
        """Write source | current side by side as a PNG (to look at what the policy did)."""
        e = self._require_episode()
        return str(save_strip([e.source, e.current], path, height=height))


class VectorRetouchEnv(VectorEnv):
    """``num_envs`` retouching episodes stepped together: one batched engine call, one reward call per step.

    Same contract as :class:`RetouchEnv` per sub-environment. Autoreset follows gymnasium's NEXT_STEP
    mode: the step after an episode ends resets that sub-environment (its action is ignored, reward 0).
    ``reset(options={"rows": [...]})`` gives one row per sub-environment; otherwise rows are drawn from
    ``dataset`` with each sub-environment's seeded RNG. Observations are batched: ``image`` (N, H, W, 3)
    uint8, ``instruction`` a tuple of N strings; infos follow gymnasium's ``info[key]`` / ``info["_key"]``.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, dataset: Sequence[Mapping[str, object]] | None = None,
                 **settings: Unpack[RetouchSettings]) -> None:
        if int(num_envs) < 1:
            raise EnvConfigError(f"num_envs must be >= 1, got {num_envs}")
        self.cfg = _RetouchConfig(dataset, **settings)
        self.num_envs = int(num_envs)
        self.single_observation_space, self.single_action_space = self.cfg.build_spaces()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        self.episodes: list[Episode | None] = [None] * self.num_envs
        self._rngs = [np.random.default_rng() for _ in range(self.num_envs)]
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)

    def _reset_one(self, i: int, row: Mapping[str, object] | None) -> dict[str, Any]:
        if row is None:
            row, index = self.cfg.row(None, self._rngs[i])
        else:
            index = None
        ep_seed = int(self._rngs[i].integers(2**31 - 1))
        self.episodes[i] = episode_from_row(row, self.cfg.image_size, seed=ep_seed, row_index=index)
        return {"row_index": -1 if index is None else index, "step": 0}

    def _observe(self) -> dict[str, np.ndarray | tuple[str, ...]]:
        obs = [self.cfg.observe(e) for e in self.episodes]  # type: ignore[arg-type]
        batched: dict[str, np.ndarray | tuple[str, ...]] = {
            "image": np.stack([o["image"] for o in obs]),
            "instruction": tuple(o["instruction"] for o in obs),
        }
        if self.cfg.include_source:
            batched["source"] = np.stack([o["source"] for o in obs])
        return batched

    def _score_initial(self, idx: Sequence[int]) -> None:
        if self.cfg.reward_mode == "delta" and self.cfg.reward is not None and idx:
            eps = [self.episodes[i] for i in idx]
            for e, s in zip(eps, score_episodes(self.cfg.reward, eps, [""] * len(eps))):
                e.last_score = s.score  # type: ignore[union-attr]

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray | tuple[str, ...]], dict[str, Any]]:
        super().reset(seed=seed if isinstance(seed, int) or seed is None else None)
        if isinstance(seed, int):
            seeds: list[int | None] = [seed + i for i in range(self.num_envs)]
        elif seed is None:
            seeds = [None] * self.num_envs
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise EnvConfigError(f"reset got {len(seeds)} seeds for {self.num_envs} environments")
        for i, s in enumerate(seeds):
            if s is not None:
                self._rngs[i] = np.random.default_rng(s)
        options = dict(options or {})
        rows = options.pop("rows", None)
        if options:
            raise EnvConfigError(f"VectorRetouchEnv.reset options accept only 'rows', got {sorted(options)}")
        if rows is not None and len(rows) != self.num_envs:
            raise EnvConfigError(f"reset got {len(rows)} rows for {self.num_envs} environments")
        infos: dict[str, Any] = {}
        for i in range(self.num_envs):
            infos = self._add_info(infos, self._reset_one(i, None if rows is None else rows[i]), i)
        self._score_initial(range(self.num_envs))
        self._needs_reset[:] = False
        return self._observe(), infos

    def step(self, actions: Sequence[Action]
             ) -> tuple[dict[str, np.ndarray | tuple[str, ...]], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if any(e is None for e in self.episodes):
            raise EnvConfigError("call reset() before step()")
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise EnvConfigError(f"step got {len(actions)} actions for {self.num_envs} environments")
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        resetting = [i for i in range(self.num_envs) if self._needs_reset[i]]
        for i in resetting:
            infos = self._add_info(infos, self._reset_one(i, None), i)
        self._score_initial(resetting)
        active = [i for i in range(self.num_envs) if not self._needs_reset[i]]
        results = _step_many(self.cfg, [self.episodes[i] for i in active], [actions[i] for i in active])
        for i, (r, term, trunc, info) in zip(active, results):
            rewards[i], terminated[i], truncated[i] = r, term, trunc
            infos = self._add_info(infos, info, i)
        self._needs_reset[:] = False
        self._needs_reset[active] = terminated[active] | truncated[active]
        return self._observe(), rewards, terminated, truncated, infos

    @property
    def current_images(self) -> torch.Tensor:
        """Current images as one (N, 3, H, W) float tensor."""
        return torch.stack([e.current for e in self.episodes])  # type: ignore[union-attr]
