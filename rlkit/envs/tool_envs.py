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
``invalid_reward`` (0.0); without a reward it returns None (trl ignores it), and the trl bridge with
:class:`ToolEnvRollouts` scores all rollouts of a step in one reward call instead:
``reward_funcs, weights = to_trl_reward_funcs(reward, executor=ToolEnvRollouts(), invalid_reward=0.0)``.

Chat-template requirement: trl checks that the template renders tool calls and tool messages and
parses tool calls only for templates it ships (``trl/chat_templates``: qwen2_5_vl, qwen3, qwen3_vl,
...). For any other template set ``processor.tokenizer.response_template`` (e.g.
``trl.chat_template_utils.qwen3_template``) before building the trainer; see docs/environments.md.
Tool-call text from the model is parsed as JSON by transformers; arguments are never evaluated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from rlkit.envs._images import resize, to_chw, to_pil
from rlkit.envs.core import (
    EnvConfigError,
    Episode,
    apply_programs,
    episode_batch,
    episode_from_row,
    parse_action,
)
from rlkit.envs.tools.masks import MaskError, masks_from_boxes
from rlkit.rewards import Reward, RewardBatch, RewardResult, Rollout

__all__ = ["EditRefineToolEnv", "RefineToolEnv", "RetouchToolEnv", "ToolEnvRollouts", "tool_env_batch"]

DEFAULT_RESET_TEXT = (
    "The image is {width}x{height} pixels. Edit it with the tools (at most {max_steps} calls), "
    "then call finish."
)


class RetouchToolEnv:
    """One rollout's retouching session for trl: ``apply_edits`` runs the engine, ``finish`` ends it."""

    def __init__(
        self,
        *,
        reward: Reward | Callable[[RewardBatch], RewardResult] | None = None,
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
        if not self.succeeded:
            return self._invalid_reward
        score = self._reward(tool_env_batch([self])).scores[0]
        return self._invalid_reward if score is None else float(score)

    @property
    def succeeded(self) -> bool:
        """Whether at least one tool call of this rollout worked (otherwise it scores ``invalid_reward``)."""
        return self._episode is not None and self._successes > 0

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


class ToolEnvRollouts:
    """The trl bridge's executor under ``environment_factory``: each rollout's environment holds its final image.

    ``to_trl_reward_funcs(reward, executor=ToolEnvRollouts(), invalid_reward=0.0)`` scores every rollout of
    a trl step in one reward call (use environments built without ``reward``; a rollout with no successful
    tool call scores ``invalid_reward``).
    """

    def execute(self, prompts: Sequence[object], texts: Sequence[str], columns: Mapping[str, Sequence[object]], *,
                environments: Sequence[object] | None = None) -> RewardBatch:
        if environments is None:
            raise EnvConfigError("ToolEnvRollouts scores trl's `environments`: use it with environment_factory")
        envs = list(environments)
        for i, env in enumerate(envs):
            if not isinstance(env, RetouchToolEnv):
                raise EnvConfigError(f"environment {i} is a {type(env).__name__}, not an rlkit RetouchToolEnv")
        return tool_env_batch(envs)


def tool_env_batch(environments: Sequence[RetouchToolEnv]) -> RewardBatch:
    """One reward batch over the final images of ``environments`` (the tool log is each rollout's text)."""
    missing = [i for i, env in enumerate(environments) if env.episode is None]
    if missing:
        raise EnvConfigError(f"environments {missing} were never reset: no episode to score")
    episodes = [env.episode for env in environments]
    rollouts = [Rollout("\n".join(env.tool_log), program=(e.programs[-1] if e.programs else None),  # type: ignore[union-attr]
                        output_image=e.current, rendered=True, valid=env.succeeded)  # type: ignore[union-attr]
                for env, e in zip(environments, episodes)]
    return episode_batch(episodes, rollouts)  # type: ignore[arg-type]
