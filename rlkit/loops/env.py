"""The loops inside rlkit's environments: the gym ``RefineEnv`` and trl's ``environment_factory``.

- :func:`run_in_refine_env`: a loop's perception, reasoning and action agents drive a ``RefineEnv`` episode:
  each step observes the environment's current image, plans a tool call and executes it as a RefineEnv
  action (``inpaint`` / ``edit`` with the mask); the environment applies it, keeps the history and scores
  it. With ``RefineEnv(reward=EvaluatorReward(agent), stop_when_no_improvement=True)`` the environment
  enforces EditRefiner's stopping rule (a step that does not raise the score is reverted and ends the episode).
- :class:`EditRefinerToolEnv` / :class:`AgenticRetoucherToolEnv`: trl ``environment_factory`` classes for
  training the *action side* with GRPO: at ``reset`` the loop's perception and reasoning agents look at the
  row's image and their findings (regions per map, the diagnosis as JSON) are appended to the prompt; the
  policy then repairs with the tools (``inpaint_region`` / ``edit_image`` / ``undo`` / ``finish``) and the
  configured reward (e.g. ``rlkit.rewards.EvaluatorReward``) scores the final image.
"""

from __future__ import annotations

from typing import Any

from rlkit.envs import EditRefineToolEnv, RefineEnv, RefineToolEnv
from rlkit.loops.steps import Clock, Observation, TurnFailure
from rlkit.policies import ActionError

__all__ = ["run_in_refine_env", "tool_call_action", "EditRefinerToolEnv", "AgenticRetoucherToolEnv"]


def tool_call_action(call: Any) -> dict[str, Any]:
    """A ``RefineEnv`` action for an ``rlkit.policies.ToolCall``: ``inpaint`` with the prompt or ``edit`` with
    the instruction, under the call's mask."""
    if call.kind == "inpaint":
        return {"tool": "inpaint", "prompt": call.text, "mask": call.mask}
    return {"tool": "edit", "instruction": call.text, "mask": call.mask}


def _observe(loop: Any, image: Any, source: Any, text: str) -> Observation:
    return loop.observe(image, source=source, instruction=text, prompt=text, clock=Clock())


def run_in_refine_env(loop: Any, env: RefineEnv, row: dict[str, Any], *, seed: int | None = None
                      ) -> list[dict[str, Any]]:
    """One ``env`` episode on ``row`` driven by ``loop``'s agents; returns each step's ``info`` (plus the
    ``tool_call`` and ``observation`` summary). The episode ends when the environment ends it (budget, the
    stopping rule), when perception finds nothing, or when a step cannot be planned (recorded as the last info
    with ``valid=False`` and its ``error``)."""
    _, info = env.reset(seed=seed, options={"row": row})
    infos: list[dict[str, Any]] = []
    while True:
        e = env.episode
        assert e is not None
        try:
            obs = _observe(loop, env.current_image, e.source, e.instruction)
            if not obs.regions or not obs.flaws:
                infos.append({"valid": True, "tool": None, "error": None, "observation": "nothing to repair"})
                break
            call = loop.action.plan(obs.flaws, obs.mask, boxes=obs.boxes, instruction=e.instruction,
                                    image=env.current_image)
        except (TurnFailure, ActionError) as exc:
            infos.append({"valid": False, "tool": None, "error": str(exc)})
            break
        _, _, terminated, truncated, info = env.step(tool_call_action(call))
        info = dict(info, tool_call=call.to_dict(), observation=obs.describe())
        infos.append(info)
        if terminated or truncated:
            break
    return infos


class _Findings:
    """Mixin for the trl tool environments: the loop's findings on the row's image appended at reset."""

    _loop: Any
    last_observation: Observation | None

    def reset(self, **row: Any) -> str | None:
        text = super().reset(**row)  # type: ignore[misc]
        e = self.episode  # type: ignore[attr-defined]
        try:
            self.last_observation = _observe(self._loop, e.current, e.source, e.instruction)
            found = self.last_observation.describe()
        except TurnFailure as exc:
            self.last_observation = None
            found = f"the agents could not diagnose the image ({exc})"
        return f"{text}\n{found}" if text else found


class EditRefinerToolEnv(_Findings, EditRefineToolEnv):
    """``EditRefineToolEnv`` (inpaint, edit, undo, finish) whose reset text carries an ``EditRefiner``'s
    findings on the row's image (the row needs ``image`` and ``source_image`` / ``source`` and ``instruction``)."""

    def __init__(self, *, loop: Any, **kwargs: Any) -> None:
        if not callable(getattr(loop, "observe", None)):
            raise TypeError(f"EditRefinerToolEnv needs a loop with observe(), got {type(loop).__name__}")
        super().__init__(**kwargs)
        self._loop, self.last_observation = loop, None


class AgenticRetoucherToolEnv(_Findings, RefineToolEnv):
    """``RefineToolEnv`` (inpaint, undo, finish) whose reset text carries an ``AgenticRetoucher``'s findings
    on the row's image (the row's ``instruction`` or ``prompt`` is the T2I prompt)."""

    def __init__(self, *, loop: Any, **kwargs: Any) -> None:
        if not callable(getattr(loop, "observe", None)):
            raise TypeError(f"AgenticRetoucherToolEnv needs a loop with observe(), got {type(loop).__name__}")
        super().__init__(**kwargs)
        self._loop, self.last_observation = loop, None
