"""``RefineEnv``: the agentic refinement loop of Agentic Retoucher and EditRefiner as a Gymnasium environment.

Each step the agent calls one tool on the current image:

- ``{"tool": "inpaint", "prompt": str, <mask>}`` -- mask-based inpainting (:class:`InpaintTool`:
  SD-inpainting, Flux-Fill, ...), Agentic Retoucher's action agent;
- ``{"tool": "edit", "instruction": str, [<mask>]}`` -- instruction editing with any diffusers
  editing pipeline (:class:`InstructionEditTool`), EditRefiner's re-editing (source image passed);
- ``{"tool": "program", "program": str | dict}`` -- the parametric engine (policy text is parsed,
  never evaluated); plain policy text that is not a JSON tool call is treated as a program;
- ``{"tool": "undo"}`` -- restore the image before the last tool call;
- ``{"tool": "finish"}`` -- end the episode.

``<mask>`` is one of ``"regions": [[x, y] | {"center": [x, y], "radius": r}, ...]`` (disks, default
radius H/20 as the papers annotate), ``"boxes": [[x1, y1, x2, y2], ...]`` (pixels of the
observation; ``"normalized": true`` for fractions), ``"regions": true`` / ``"boxes": true`` (the
row's own annotations, rescaled from the row image to the observation), ``"saliency": true`` (the
row's ``saliency`` map,
thresholded at ``mask_threshold`` and dilated, as the perception agents do) or a 2-D ``"saliency"``
/ ``"mask"`` array. Text actions are JSON (``json.loads``) of the same objects.

Observation: ``image`` (current), ``instruction`` (the T2I prompt or editing instruction), and
``source`` when ``include_source`` (editing refinement). Reward: the configured rlkit reward on the
current image, by ``reward_mode`` (``"delta"`` default: the score change, so the return is the total
improvement; ``"step"``; ``"final"``). With ``stop_when_no_improvement`` (EditRefiner's rule) a step
that does not raise the score is reverted and ends the episode. ``max_iterations`` tool calls end
the episode (``terminated``, ``info["budget_exhausted"]``; ``truncated`` is left to TimeLimit).
A malformed or impossible action gets ``invalid_reward``, leaves the image unchanged and
the episode continues. ``history`` lists every applied tool call with the image before it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlkit.envs._images import resize, save_strip, to_chw
from rlkit.envs.core import (
    EnvConfigError,
    Episode,
    Observation,
    apply_programs,
    episode_from_row,
    observation_arrays,
    observe,
    parse_action,
    row_for_reset,
    score_episodes,
    text_image_spaces,
)
from rlkit.envs.retouch import REWARD_MODES
from rlkit.envs.tools.diffusion import ToolError
from rlkit.envs.tools.masks import MaskError, masks_from_boxes, masks_from_regions, masks_from_saliency
from rlkit.rewards import Reward, RewardBatch, RewardResult

__all__ = ["REFINE_TOOLS", "HistoryEntry", "RefineEnv", "mask_from_spec"]

REFINE_TOOLS = ("inpaint", "edit", "program", "undo", "finish")


class _InvalidAction(Exception):
    """Internal: the action cannot be executed; the message goes to info['error']."""


@dataclass
class HistoryEntry:
    """One applied tool call: the tool, its (JSON-able) arguments, the image and score before it."""

    tool: str
    arguments: dict[str, Any]  # JSON-able
    image_before: torch.Tensor
    score_before: float | None


def _saliency_map(value: np.ndarray | torch.Tensor | Sequence[Sequence[float]], size: tuple[int, int]) -> np.ndarray:
    s = (
        value.detach().cpu().float().numpy()
        if isinstance(value, torch.Tensor)
        else np.asarray(value, dtype=np.float64)
    )
    if s.ndim == 3 and s.shape[0] == 1:
        s = s[0]
    if s.ndim != 2:
        raise MaskError(f"saliency must be a 2-D map, got shape {s.shape}")
    if s.shape != tuple(size):
        t = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))[None, None]
        s = torch.nn.functional.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[
            0, 0
        ].numpy()
    return s


def _scaled_annotations(
    key: str, value: object, original: tuple[int, int] | None, size: tuple[int, int]
) -> list[list[float]] | list[dict[str, Any]]:
    """The row's regions / boxes rescaled from the row image's pixels to the observation's."""
    if value is None:
        raise MaskError(f"'{key}': true needs a '{key}' column in the data row")
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise MaskError(f"row column '{key}' must be a list, got {type(value).__name__}")
    oh, ow = original or size
    sy, sx = size[0] / oh, size[1] / ow
    if key == "boxes":
        out = []
        for i, b in enumerate(value):
            try:
                x1, y1, x2, y2 = (float(v) for v in b)
            except (TypeError, ValueError) as exc:
                raise MaskError(f"row box {i} must be [x1, y1, x2, y2], got {b!r}") from exc
            out.append([x1 * sx, y1 * sy, x2 * sx, y2 * sy])
        return out
    out = []
    for r in value:
        d = r.to_dict() if hasattr(r, "to_dict") else dict(r) if isinstance(r, Mapping) else {"center": r}
        if "disks" in d:
            d["disks"] = [[float(x) * sx, float(y) * sy] for x, y in d["disks"]]
        elif "center" in d:
            d["center"] = [float(d["center"][0]) * sx, float(d["center"][1]) * sy]
        elif "x" in d and "y" in d:
            d["center"] = [float(d.pop("x")) * sx, float(d.pop("y")) * sy]
        if d.get("radius") is not None:
            d["radius"] = float(d["radius"]) * sy  # None keeps the H/20 rule at the observation size
        out.append(d)
    return out


def mask_from_spec(
    spec: Mapping[str, Any],
    size: tuple[int, int],
    *,
    row_saliency: np.ndarray | torch.Tensor | None = None,
    threshold: float = 0.5,
    dilation: int | None = None,
    radius: float | None = None,
    required: bool = True,
) -> np.ndarray | None:
    """Build the (H, W) bool mask an action describes (regions, boxes, saliency or mask); None when absent."""
    keys = [k for k in ("regions", "boxes", "saliency", "mask") if k in spec and spec[k] is not None]
    if len(keys) > 1:
        raise MaskError(f"give one of regions / boxes / saliency / mask, got {keys}")
    if not keys:
        if required:
            raise MaskError("this tool needs a mask: give 'regions', 'boxes', 'saliency' or 'mask'")
        return None
    key = keys[0]
    value = spec[key]
    if key == "regions":
        return masks_from_regions(value, size, radius=radius)
    if key == "boxes":
        return masks_from_boxes(value, size, normalized=bool(spec.get("normalized", False)))
    if key == "saliency":
        if value is True:
            if row_saliency is None:
                raise MaskError("'saliency': true needs a 'saliency' map in the data row")
            value = row_saliency
        thr = float(spec.get("threshold", threshold))
        return masks_from_saliency(_saliency_map(value, size), threshold=thr, dilation=dilation)
    m = np.asarray(value)
    if m.shape != tuple(size):
        raise MaskError(f"'mask' must have the observation size {tuple(size)}, got shape {m.shape}")
    return m.astype(bool)


class RefineEnv(gym.Env):
    """Iterative local refinement with inpainting / instruction-editing / engine tools, history and undo.

    See the module docstring for the action format, observation, reward and termination rules.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        dataset: Sequence[Mapping[str, object]] | None = None,
        *,
        inpaint_tool: Callable[..., torch.Tensor] | None = None,
        edit_tool: Callable[..., torch.Tensor] | None = None,
        reward: Reward | Callable[[RewardBatch], RewardResult] | None = None,
        image_size: tuple[int, int] | int = (256, 256),
        max_iterations: int = 4,
        include_source: bool = False,
        reward_mode: str = "delta",
        stop_when_no_improvement: bool = False,
        mask_threshold: float = 0.5,
        mask_dilation: int | None = None,
        region_radius: float | None = None,
        fmt: str = "auto",
        invalid_reward: float = 0.0,
        max_text_length: int = 4096,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
    ) -> None:
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        h, w = (int(v) for v in image_size)
        if h < 8 or w < 8:
            raise EnvConfigError(f"image_size must be at least 8x8, got {(h, w)}")
        if int(max_iterations) < 1:
            raise EnvConfigError(f"max_iterations must be >= 1, got {max_iterations}")
        if reward_mode not in REWARD_MODES:
            raise EnvConfigError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if stop_when_no_improvement and reward is None:
            raise EnvConfigError("stop_when_no_improvement needs a reward to measure improvement")
        if not 0.0 <= float(mask_threshold) <= 1.0:
            raise EnvConfigError(f"mask_threshold must be in [0, 1], got {mask_threshold}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise EnvConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if dataset is not None and len(dataset) == 0:
            raise EnvConfigError("dataset is empty")
        self.dataset = dataset
        self.inpaint_tool = inpaint_tool
        self.edit_tool = edit_tool
        self.reward = reward
        self.image_size = (h, w)
        self.max_iterations = int(max_iterations)
        self.include_source = bool(include_source)
        self.reward_mode = reward_mode
        self.stop_when_no_improvement = bool(stop_when_no_improvement)
        self.mask_threshold = float(mask_threshold)
        self.mask_dilation = mask_dilation
        self.region_radius = region_radius
        self.fmt = fmt
        self.invalid_reward = float(invalid_reward)
        self.max_text_length = int(max_text_length)
        self.device = device
        self.render_mode = render_mode
        self.observation_space, self.action_space = text_image_spaces((h, w), self.max_text_length,
                                                                      self.include_source)
        self.episode: Episode | None = None
        self.history: list[HistoryEntry] = []
        self._score: float | None = None

    # -- gymnasium API ---------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        row, index = row_for_reset(options, self.dataset, self.np_random)
        if isinstance(row, Mapping) and "instruction" not in row and isinstance(row.get("prompt"), str):
            row = {**row, "instruction": row["prompt"]}  # Agentic Retoucher: the T2I prompt
        self.episode = episode_from_row(
            row, self.image_size, seed=int(self.np_random.integers(2**31 - 1)), row_index=index
        )
        self.history = []
        self._score = self._evaluate("") if self.reward is not None else None
        return self._observe(), {"row_index": index, "step": 0, "score": self._score}

    def step(self, action: str | Mapping[str, object]) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        e = self.episode
        if e is None:
            raise EnvConfigError("call reset() before step()")
        if e.done:
            raise EnvConfigError("step() called after the episode ended; call reset() first")
        e.steps += 1
        info: dict[str, Any] = {
            "step": e.steps,
            "valid": True,
            "tool": None,
            "error": None,
            "parse_problems": [],
            "program": None,
            "mask_area": None,
            "score": self._score,
            "reward_components": {},
            "reward_reason": None,
            "reverted": False,
        }
        terminated = False
        reward = 0.0
        try:
            call = self._decode(action)
            info["tool"] = call["tool"]
            tool = call["tool"]
            if tool == "finish":
                terminated = True
            elif tool == "undo":
                if not self.history:
                    raise _InvalidAction("nothing to undo")
                entry = self.history.pop()
                e.current = entry.image_before
                if e.programs and entry.tool == "program":
                    e.programs.pop()
                reward = self._rescore(info, restored=entry.score_before)
            else:
                before, score_before = e.current.clone(), self._score
                args = self._run_tool(call, info)
                self.history.append(HistoryEntry(tool, args, before, score_before))
                reward = self._rescore(info, restored=None, completion=json.dumps({"tool": tool, **args}))
                if self.stop_when_no_improvement and (
                    info["score"] is None or score_before is None or info["score"] <= score_before
                ):
                    self.history.pop()
                    if tool == "program":
                        e.programs.pop()
                    e.current = before
                    self._score = score_before
                    info.update(reverted=True, score=score_before)
                    reward = 0.0 if self.reward_mode == "delta" else (score_before or 0.0)
                    terminated = True
        except (_InvalidAction, MaskError, ToolError, EnvConfigError) as exc:
            info.update(valid=False, error=str(exc))
            reward = self.invalid_reward
        info["budget_exhausted"] = e.steps >= self.max_iterations
        terminated = terminated or info["budget_exhausted"]  # the iteration budget is part of the task
        truncated = False
        e.done = terminated
        if e.done and self.reward_mode == "final" and info["valid"]:
            reward = 0.0 if self._score is None else float(self._score)
        elif self.reward_mode == "final" and info["valid"]:
            reward = 0.0
        return self._observe(), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.episode is None:
            return None
        return observation_arrays(self.episode)["image"]

    # -- internals -------------------------------------------------------------------------------------
    def _observe(self) -> Observation:
        return observe(self.episode, self.max_text_length, self.include_source)  # type: ignore[arg-type]

    def _decode(self, action: object) -> dict[str, Any]:
        if isinstance(action, str):
            text = action.strip()
            if text.startswith("{"):
                try:
                    action = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise _InvalidAction(
                        f"action is not valid JSON: {exc.msg} at position {exc.pos}"
                    ) from None
            else:
                action = {"tool": "program", "program": action}
        if not isinstance(action, Mapping):
            raise _InvalidAction(f"action must be a tool call dict or JSON text, got {type(action).__name__}")
        tool = action.get("tool")
        if tool not in REFINE_TOOLS:
            raise _InvalidAction(f"unknown tool {tool!r}; tools: {list(REFINE_TOOLS)}")
        return dict(action)

    def _mask(self, call: Mapping[str, Any], required: bool) -> np.ndarray | None:
        e = self.episode
        assert e is not None
        call = dict(call)
        for key in ("regions", "boxes"):
            if call.get(key) is True:  # the row's own annotations, in the row image's pixels
                call[key] = _scaled_annotations(key, e.row.get(key), e.original_size, self.image_size)
        return mask_from_spec(
            call,
            self.image_size,
            row_saliency=e.row.get("saliency"),
            threshold=self.mask_threshold,
            dilation=self.mask_dilation,
            radius=self.region_radius,
            required=required,
        )

    def _run_tool(self, call: Mapping[str, Any], info: dict[str, Any]) -> dict[str, Any]:
        e = self.episode
        assert e is not None
        tool = call["tool"]
        seed = call.get("seed", e.seed + e.steps)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise _InvalidAction(f"seed must be an integer, got {seed!r}")
        if tool == "program":
            program = call.get("program")
            parsed = parse_action(program if program is not None else "", fmt=self.fmt, finish_token=None)
            info["parse_problems"] = parsed.problems
            if not parsed.valid or parsed.program is None:
                reasons = "; ".join(p["reason"] for p in parsed.problems) or "no program"
                raise _InvalidAction(f"program did not parse: {reasons}")
            err = apply_programs([e], [parsed.program], self.device)[0]
            if err is not None:
                raise _InvalidAction(err)
            e.programs.append(parsed.program)
            info["program"] = parsed.program
            return {"program": parsed.program.to_dict()}
        if tool == "inpaint":
            if self.inpaint_tool is None:
                raise _InvalidAction("no inpaint_tool was given to this environment")
            prompt = call.get("prompt", "")
            if not isinstance(prompt, str):
                raise _InvalidAction(f"inpaint prompt must be a string, got {type(prompt).__name__}")
            mask = self._mask(call, required=True)
            info["mask_area"] = float(mask.mean())
            e.current = self._tool_output(
                lambda: self.inpaint_tool(e.current, mask, prompt, seed=seed), "inpaint"
            )
            return {"prompt": prompt, "mask_area": info["mask_area"], "seed": seed}
        # tool == "edit"
        if self.edit_tool is None:
            raise _InvalidAction("no edit_tool was given to this environment")
        instruction = call.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise _InvalidAction("edit needs a non-empty 'instruction' string")
        mask = self._mask(call, required=False)
        info["mask_area"] = None if mask is None else float(mask.mean())
        e.current = self._tool_output(
            lambda: self.edit_tool(e.current, instruction, mask=mask, source=e.source, seed=seed), "edit"
        )
        return {"instruction": instruction, "mask_area": info["mask_area"], "seed": seed}

    def _tool_output(self, call: Callable[[], object], tool: str) -> torch.Tensor:
        """Run a tool; any failure (or a non-image result) becomes an invalid action naming the tool."""
        try:
            out = call()
            image = to_chw(
                out.detach().cpu() if isinstance(out, torch.Tensor) else out, f"{tool} tool output"
            )
        except Exception as exc:  # a tool failure must not kill the episode loop
            raise _InvalidAction(f"the {tool} tool failed: {type(exc).__name__}: {exc}") from exc
        return resize(image, self.image_size)

    def _evaluate(self, completion: str) -> float | None:
        s = score_episodes(self.reward, [self.episode], [completion])[0]  # type: ignore[list-item]
        self._last_scored = s
        return s.score

    def _rescore(self, info: dict[str, Any], restored: float | None, completion: str = "") -> float:
        """Score the current image (or reuse ``restored`` after undo); the reward for step/delta modes."""
        if self.reward is None:
            return 0.0
        previous = self._score
        if restored is not None:
            self._score = restored
        else:
            self._score = self._evaluate(completion)
            info["reward_components"] = self._last_scored.components
            info["reward_reason"] = self._last_scored.reason
        info["score"] = self._score
        now = 0.0 if self._score is None else self._score
        if self.reward_mode == "delta":
            return now - (0.0 if previous is None else previous)
        return now

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def current_image(self) -> torch.Tensor:
        """The current image as a (3, H, W) float tensor in [0, 1]."""
        if self.episode is None:
            raise EnvConfigError("call reset() first")
        return self.episode.current

    def save_png(self, path: str, *, height: int = 256) -> str:
        """Write source, every image in the history and the current image side by side as one PNG."""
        if self.episode is None:
            raise EnvConfigError("call reset() first")
        e = self.episode
        images = [h.image_before for h in self.history] or [e.initial]
        if e.source is not e.initial:
            images = [e.source, *images]
        return str(save_strip([*images, e.current], path, height=height))
