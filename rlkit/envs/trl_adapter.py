"""Environments for trl's ``GRPOTrainer(environment_factory=...)``: tools edit the image, a reward at the end.

trl (1.16) turns every public method of the environment class (type hints + Google-style docstring)
into a tool the policy can call, calls ``reset(**row)`` with the dataset row before generation
(the returned text is appended to the prompt's last user message), feeds each tool's return value
back as a ``tool`` message (a list of ``{"type": "image"}`` / ``{"type": "text"}`` blocks shows the
VLM the edited image), and calls ``get_reward()`` once per rollout as an extra reward column.

- :class:`RetouchToolEnv`: tools ``apply_edits(program)`` (the parametric engine) and ``finish()``.
- :class:`RefineToolEnv`: adds ``inpaint_region(x1, y1, x2, y2, prompt)`` and ``undo()``.
- :class:`EditRefineToolEnv`: adds ``edit_image(instruction)`` (instruction editing, EditRefiner).

Build with ``environment_factory=RetouchToolEnv.factory(reward=..., image_size=...)``. The dataset
needs a conversational ``prompt`` and the photo in ``image`` (trl's image column; also
``source_image``/``target_image``/``instruction`` and any reward columns). ``get_reward`` scores the
final image with the configured rlkit reward; an episode with no successful tool call gets
``invalid_reward`` (0.0); without a reward it returns None (trl ignores it), and
:func:`environment_reward_func` scores all rollouts of a batch in one reward call instead.

Chat-template requirement: trl checks that the template renders tool calls and tool messages and
parses tool calls only for templates it ships (``trl/chat_templates``: qwen2_5_vl, qwen3, qwen3_vl,
...). For any other template set ``processor.tokenizer.response_template`` (e.g.
``trl.chat_template_utils.qwen3_template``) before building the trainer; see docs/environments.md.
Tool-call text from the model is parsed as JSON by transformers; arguments are never evaluated.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from rlkit.envs._images import resize, to_chw, to_pil
from rlkit.envs.core import (
    EnvConfigError,
    Episode,
    apply_programs,
    episode_from_row,
    parse_action,
    score_episodes,
)
from rlkit.envs.tools.masks import MaskError, masks_from_boxes

__all__ = [
    "EditRefineToolEnv",
    "RefineToolEnv",
    "RetouchEnvReward",
    "RetouchToolEnv",
    "env_rows_from_trl",
    "environment_reward_func",
    "retouch_reward_func",
    "score_environments",
]

DEFAULT_RESET_TEXT = (
    "The image is {width}x{height} pixels. Edit it with the tools (at most {max_steps} calls), "
    "then call finish."
)


class RetouchToolEnv:
    """One rollout's retouching session for trl: ``apply_edits`` runs the engine, ``finish`` ends it."""

    def __init__(
        self,
        *,
        reward: Callable[[Any], Any] | None = None,
        image_size: tuple[int, int] | int = (256, 256),
        max_steps: int = 4,
        fmt: str = "auto",
        clamp: bool = False,
        return_image: bool = True,
        reset_text: str | None = DEFAULT_RESET_TEXT,
        invalid_reward: float = 0.0,
        device: str | torch.device = "cpu",
    ) -> None:
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        if min(self.image_size) < 8:
            raise EnvConfigError(f"image_size must be at least 8x8, got {self.image_size}")
        if int(max_steps) < 1:
            raise EnvConfigError(f"max_steps must be >= 1, got {max_steps}")
        if reward is not None and not callable(reward):
            raise EnvConfigError(
                f"reward must be an rlkit Reward or a callable(RewardBatch), got {type(reward).__name__}"
            )
        self._reward = reward
        self._max_steps = int(max_steps)
        self._fmt = fmt
        self._clamp = bool(clamp)
        self._return_image = bool(return_image)
        self._reset_text = reset_text
        self._invalid_reward = float(invalid_reward)
        self._device = device
        self._episode: Episode | None = None
        self._successes = 0
        self._finished = False
        self._log: list[str] = []
        self._history: list[tuple[torch.Tensor, bool]] = []  # (image before, whether it was an engine edit)
        self._resets = 0

    @classmethod
    def factory(cls, **kwargs: Any) -> Callable[[], RetouchToolEnv]:
        """A zero-argument callable building this environment with ``kwargs`` (trl's environment_factory)."""
        return functools.partial(cls, **kwargs)

    # -- trl protocol ----------------------------------------------------------------------------------
    def reset(self, **row: Any) -> str | None:
        """Start a rollout on a dataset row (trl passes every column); returns text appended to the prompt."""
        self._resets += 1
        self._episode = episode_from_row(row, self.image_size, seed=self._resets)
        self._successes = 0
        self._finished = False
        self._log = []
        self._history = []
        if self._reset_text is None:
            return None
        h, w = self.image_size
        return self._reset_text.format(
            width=w, height=h, max_steps=self._max_steps, instruction=self._episode.instruction
        )

    def get_reward(self) -> float | None:
        """Score of the final image with the configured reward (``invalid_reward`` if no tool call worked)."""
        if self._reward is None:
            return None
        return score_environments(self._reward, [self])[0]

    # -- tools (public methods = tools; keep type hints and Google docstrings) -------------------------------
    def apply_edits(self, program: str) -> list[dict[str, Any]] | str:
        """Apply global photo adjustments to the current image.

        Args:
            program: The adjustments, e.g. "exposure=+0.5; contrast=20; saturation=-10", or a JSON object
                of Lightroom develop settings such as {"Exposure2012": 0.5, "Contrast2012": 20}.

        Returns:
            The edited image and a short summary of the applied adjustments.
        """
        e, refusal = self._begin()
        if refusal:
            return refusal
        parsed = parse_action(
            program if isinstance(program, str) else "", fmt=self._fmt, finish_token=None, clamp=self._clamp
        )
        if not isinstance(program, str) or not parsed.valid or parsed.program is None:
            reasons = "; ".join(p["reason"] for p in parsed.problems) or "program must be a string"
            return self._fail(f"the program did not parse ({reasons}); the image is unchanged")
        before = e.current
        err = apply_programs([e], [parsed.program], self._device)[0]
        if err is not None:
            return self._fail(err)
        self._history.append((before, True))
        e.programs.append(parsed.program)
        values = ", ".join(f"{k}={v:+g}" for k, v in sorted(parsed.program.params.items()))
        return self._succeed(f"applied {values or 'no change (identity program)'}")

    def finish(self) -> str:
        """Finish editing and submit the current image.

        Returns:
            A confirmation message.
        """
        if self._episode is None:
            return "error: the episode has not started"
        if self._finished:
            return "error: already finished"
        self._finished = True
        self._successes += 1
        self._log.append("finish")
        return "finished; the current image is submitted"

    # -- internals ---------------------------------------------------------------------------------------
    def _begin(self) -> tuple[Episode, str | None]:
        e = self._episode
        if e is None:
            raise EnvConfigError("reset() must be called before a tool")
        if self._finished:
            return e, "error: the episode is finished; no more edits"
        if e.steps >= self._max_steps:
            return e, f"error: the budget of {self._max_steps} tool calls is used up; call finish"
        e.steps += 1
        return e, None

    def _fail(self, message: str) -> str:
        self._log.append(f"error: {message}")
        return f"error: {message}"

    def _succeed(self, message: str) -> list[dict[str, Any]] | str:
        self._successes += 1
        self._log.append(message)
        if not self._return_image:
            return message
        image = to_pil(self._episode.current)  # type: ignore[union-attr]
        return [{"type": "image", "image": image}, {"type": "text", "text": message}]

    # -- inspection ----------------------------------------------------------------------------------------
    @property
    def episode(self) -> Episode | None:
        """The current episode state (images, applied programs, steps)."""
        return self._episode

    @property
    def tool_log(self) -> list[str]:
        """The result text of every tool call this episode."""
        return list(self._log)


class RefineToolEnv(RetouchToolEnv):
    """Adds inpainting of a box and undo to :class:`RetouchToolEnv` (Agentic Retoucher's action tools)."""

    def __init__(self, *, inpaint_tool: Callable[..., torch.Tensor], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not callable(inpaint_tool):
            raise EnvConfigError(
                "RefineToolEnv needs an inpaint_tool (e.g. InpaintTool.from_pretrained(path))"
            )
        self._inpaint_tool = inpaint_tool

    def inpaint_region(self, x1: int, y1: int, x2: int, y2: int, prompt: str) -> list[dict[str, Any]] | str:
        """Repaint a rectangular region of the current image to fix a local flaw.

        Args:
            x1: Left edge of the region in pixels.
            y1: Top edge of the region in pixels.
            x2: Right edge of the region in pixels (exclusive).
            y2: Bottom edge of the region in pixels (exclusive).
            prompt: What the repainted region should show.

        Returns:
            The edited image and a short summary.
        """
        e, refusal = self._begin()
        if refusal:
            return refusal
        if not isinstance(prompt, str):
            return self._fail("prompt must be a string")
        try:
            mask = masks_from_boxes([[x1, y1, x2, y2]], self.image_size)
        except MaskError as exc:
            return self._fail(str(exc))
        if not mask.any():
            return self._fail(
                f"the box {[x1, y1, x2, y2]} lies outside the {self.image_size[1]}x{self.image_size[0]} image"
            )
        try:
            out = self._inpaint_tool(e.current, mask, prompt, seed=e.seed * 1000 + e.steps)
            new = resize(
                to_chw(out.detach().cpu() if isinstance(out, torch.Tensor) else out), self.image_size
            )
        except Exception as exc:  # a tool failure is reported to the policy, not raised into the trainer
            return self._fail(f"inpainting failed: {exc}")
        self._history.append((e.current, False))
        e.current = new
        return self._succeed(
            f"inpainted box [{x1}, {y1}, {x2}, {y2}] ({100 * mask.mean():.1f}% of the image)"
        )

    def undo(self) -> list[dict[str, Any]] | str:
        """Undo the last edit.

        Returns:
            The restored image and a short summary.
        """
        e, refusal = self._begin()
        if refusal:
            return refusal
        if not self._history:
            return self._fail("nothing to undo")
        e.current, was_program = self._history.pop()
        if was_program:
            e.programs.pop()
        return self._succeed("undid the last edit")


class EditRefineToolEnv(RefineToolEnv):
    """Adds instruction editing (any diffusers editing pipeline) to :class:`RefineToolEnv` (EditRefiner)."""

    def __init__(self, *, edit_tool: Callable[..., torch.Tensor], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not callable(edit_tool):
            raise EnvConfigError("EditRefineToolEnv needs an edit_tool (e.g. InstructionEditTool(pipeline))")
        self._edit_tool = edit_tool

    def edit_image(self, instruction: str) -> list[dict[str, Any]] | str:
        """Re-edit the current image by a text instruction.

        Args:
            instruction: What to change, e.g. "make the sky bluer".

        Returns:
            The edited image and a short summary.
        """
        e, refusal = self._begin()
        if refusal:
            return refusal
        if not isinstance(instruction, str) or not instruction.strip():
            return self._fail("instruction must be a non-empty string")
        try:
            out = self._edit_tool(
                e.current, instruction, mask=None, source=e.source, seed=e.seed * 1000 + e.steps
            )
            new = resize(
                to_chw(out.detach().cpu() if isinstance(out, torch.Tensor) else out), self.image_size
            )
        except Exception as exc:  # reported to the policy
            return self._fail(f"editing failed: {exc}")
        self._history.append((e.current, False))
        e.current = new
        return self._succeed(f"edited: {instruction[:80]}")


def score_environments(reward: Callable[[Any], Any], environments: Sequence[RetouchToolEnv]) -> list[float]:
    """Score the final images of several tool environments in one reward call."""
    scorable = [env for env in environments if env._episode is not None and env._successes > 0]
    scored = score_episodes(
        reward,
        [env._episode for env in scorable],  # type: ignore[misc]
        ["\n".join(env._log) for env in scorable],
    )
    by_id = {id(env): s for env, s in zip(scorable, scored)}
    out = []
    for env in environments:
        s = by_id.get(id(env))
        out.append(env._invalid_reward if s is None or s.score is None else float(s.score))
    return out


def environment_reward_func(
    reward: Callable[[Any], Any], name: str | None = None
) -> Callable[..., list[float]]:
    """A trl reward function scoring all rollouts' environments in one batched ``reward`` call.

    Use with environments built without ``reward`` (so their ``get_reward`` returns None):
    ``GRPOTrainer(reward_funcs=[environment_reward_func(my_reward)],
    environment_factory=RetouchToolEnv.factory())``.
    """

    def reward_func(
        prompts: Any = None, completions: Any = None, environments: Any = None, **kwargs: Any
    ) -> list[float]:
        if environments is None:
            raise EnvConfigError(
                "environment_reward_func needs trl's `environments` (use it with environment_factory)"
            )
        return score_environments(reward, environments)

    reward_func.__name__ = name or f"env_{getattr(reward, 'name', getattr(reward, '__name__', 'reward'))}"
    return reward_func


# trl's own keyword arguments to reward functions (everything else is a dataset column).
_TRL_CONTROL_KWARGS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric",
                       "environments")


def env_rows_from_trl(n: int, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One environment row per completion from the dataset columns trl passes (lists of length ``n``)."""
    cols = {k: v for k, v in kwargs.items()
            if k not in _TRL_CONTROL_KWARGS and isinstance(v, (list, tuple)) and len(v) == n}
    if "image" not in cols and "images" not in cols:
        raise EnvConfigError(f"the GRPO dataset needs an 'image' column for the environment (columns passed: "
                             f"{sorted(cols)}); keep GRPOConfig(remove_unused_columns=False)")
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def _component_means(comps: Any) -> dict[str, float]:
    """Mean of each reward component over the sub-environments that reported it.

    Gymnasium batches a dict-valued info as ``{name: array, "_name": mask}``; a list of dicts is accepted too.
    """
    if not comps:
        return {}
    values: dict[str, list[float]] = {}
    if isinstance(comps, Mapping):
        for k, arr in comps.items():
            if k.startswith("_"):
                continue
            mask = comps.get(f"_{k}")
            for i, v in enumerate(arr):
                if (mask is None or mask[i]) and v is not None:
                    values.setdefault(k, []).append(float(v))
    else:
        for c in comps:
            for k, v in (c or {}).items():
                if v is not None:
                    values.setdefault(k, []).append(float(v))
    return {k: sum(v) / len(v) for k, v in values.items() if v}


class RetouchEnvReward:
    """trl reward function for single-turn GRPO: execute each completion in a one-step ``VectorRetouchEnv``.

    Each completion's text is parsed (never evaluated) and applied to its row's photo (trl's
    ``image``/``images`` column, plus ``target_image``, ``instruction`` and any columns the reward needs) in
    one batched engine call; ``reward`` (any rlkit reward, e.g. ``rlkit.rewards.retouchiq_policy_reward()``)
    scores the results in one call. Malformed completions get ``invalid_reward`` (0.0). Logs
    ``rewards/<name>/valid_fraction`` and each reward component's mean through trl's ``log_metric``.
    """

    def __init__(self, reward: Callable[[Any], Any], *, image_size: int | tuple[int, int] = 64,
                 fmt: str = "auto", name: str | None = None, **env_kwargs: Any) -> None:
        if "max_steps" in env_kwargs or "reward_mode" in env_kwargs:
            raise EnvConfigError("RetouchEnvReward runs one-step episodes: max_steps/reward_mode are fixed")
        self.reward = reward
        self.image_size = image_size
        self.fmt = fmt
        self.env_kwargs = env_kwargs
        self.__name__ = name or f"retouch_{getattr(reward, 'name', getattr(reward, '__name__', 'reward'))}"
        self.last_infos: dict[str, Any] | None = None
        # One vector env per batch size, reused across calls: building one batches gymnasium spaces by
        # deep copy, which cost ~4x the whole step at tiny scale; reset(rows=...) re-arms it each call.
        self._envs: dict[int, Any] = {}
        self._lock = threading.Lock()

    def score(self, completions: Sequence[Any], rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], dict]:
        """Rewards and the env's batched infos for ``completions`` acting on ``rows`` (one step each)."""
        from rlkit.envs.retouch import VectorRetouchEnv
        from rlkit.rewards import completion_text

        texts = [completion_text(c) for c in completions]
        if len(texts) != len(rows):
            raise EnvConfigError(f"RetouchEnvReward: {len(texts)} completions for {len(rows)} rows")
        with self._lock:
            env = self._envs.get(len(texts))
            if env is None:
                env = self._envs[len(texts)] = VectorRetouchEnv(
                    len(texts), reward=self.reward, image_size=self.image_size, fmt=self.fmt, max_steps=1,
                    **self.env_kwargs)
            env.reset(options={"rows": list(rows)})
            _, rewards, _, _, infos = env.step(texts)
        return [float(r) for r in rewards], infos

    def __call__(self, prompts: Any = None, completions: Any = None, completion_ids: Any = None,
                 **kwargs: Any) -> list[float]:
        if completions is None:
            raise EnvConfigError(f"{self.__name__}: trl passed no completions")
        rows = env_rows_from_trl(len(completions), kwargs)
        rewards, infos = self.score(completions, rows)
        self.last_infos = infos
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            valid = infos.get("valid")
            if valid is not None:
                log_metric(f"rewards/{self.__name__}/valid_fraction",
                           float(sum(bool(v) for v in valid)) / max(len(rewards), 1))
            for k, v in _component_means(infos.get("reward_components")).items():
                log_metric(f"rewards/{self.__name__}/{k}", v)
        return rewards

    def __repr__(self) -> str:
        return f"RetouchEnvReward({self.reward!r}, image_size={self.image_size!r})"


def retouch_reward_func(
    reward: Callable[[Any], Any],
    *,
    image_size: tuple[int, int] | int = (256, 256),
    name: str | None = None,
    **env_kwargs: Any,
) -> RetouchEnvReward:
    """A trl reward function that executes each completion in a one-step env: see :class:`RetouchEnvReward`."""
    return RetouchEnvReward(reward, image_size=image_size, name=name, **env_kwargs)
