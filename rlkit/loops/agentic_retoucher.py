"""Agentic Retoucher's closed loop (Sec. 4.1, Eq. 1): perception -> reasoning -> action, until nothing is salient.

On the current image I_t of a text-to-image generation with prompt P:

1. **perception**: ``perception.predict_maps([I_t], prompts=[P])`` -> the distortion-saliency map S_t
   (``rlkit.policies.TextSaliencyNet``); it is binarised at ``tau`` and dilated into region masks
   (``rlkit.policies.regions_from_map``); regions whose peak saliency reaches ``tau_s`` are the ones to repair.
   None -> the loop stops ("all salient distortions are eliminated");
2. **reasoning**: one call of the chat backend with ``rlkit.policies.reasoner_prompt`` (the image, the prompt,
   the regions' boxes), read by ``rlkit.policies.parse_diagnosis`` (per-region or list answers);
3. **action**: the diagnoses and the union of the regions' masks become a tool call
   (``rlkit.policies.ActionAgent``: mask-guided inpainting such as SD-inpaint / Flux-Fill, or a VLM-based
   editor, by constraints and preference), run on I_t -> I_{t+1}; then perception again.

The loop stops when no region reaches ``tau_s``, after ``max_turns`` turns, or after a failed turn (recorded
with its reason; a rerun of the same step on the same image would fail the same way). It returns the last
image. Scores per image: the optional ``evaluator`` (``score(sources, edited, instructions)``, the input as
source and P as instruction, e.g. a RichHF-style scorer), else the perception score ``100 (1 - max S)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlkit.loops.steps import (
    ChatBackend,
    Clock,
    Observation,
    ToolFn,
    TurnFailure,
    apply_tool_call,
    as_image,
    ask_reasoner,
    iterate_rows,
    plan_action,
)
from rlkit.loops.trace import LoopTrace, Turn
from rlkit.policies import ActionAgent, reasoner_prompt, regions_from_map

__all__ = ["AgenticRetoucher"]


class AgenticRetoucher:
    """The Agentic Retoucher loop built from its agents (see the module docstring).

    ``perception``: ``predict_maps(images, prompts=) -> {name: (N, H, W)}`` with one map
    (``rlkit.policies.TextSaliencyNet``); ``reasoner``: a chat backend (``generate``); ``action``: an
    ``ActionAgent`` whose tool names are keys of ``tools``; ``tau_s``: the saliency a region must reach to be
    repaired; ``tau`` / ``dilation`` / ``min_area``: binarisation, dilation radius (default H/40) and the
    smallest region; ``budget``: total tool cost per run; ``evaluator``: optional scorer (see above).
    """

    name = "agentic_retoucher"

    def __init__(self, *, perception: Any, reasoner: ChatBackend, action: ActionAgent, tools: Mapping[str, ToolFn],
                 tau_s: float = 0.5, tau: float = 0.5, dilation: int | None = None, min_area: int = 4,
                 max_turns: int = 3, budget: float | None = None, evaluator: Any = None, seed: int = 0,
                 name: str | None = None) -> None:
        for what, obj, method in (("perception", perception, "predict_maps"), ("reasoner", reasoner, "generate")):
            if not callable(getattr(obj, method, None)):
                raise TypeError(f"AgenticRetoucher: {what} needs a {method}() method, got {type(obj).__name__}")
        if evaluator is not None and not callable(getattr(evaluator, "score", None)):
            raise TypeError(f"AgenticRetoucher: evaluator needs a score() method, got {type(evaluator).__name__}")
        if not isinstance(action, ActionAgent):
            raise TypeError(f"AgenticRetoucher: action must be an ActionAgent, got {type(action).__name__}")
        missing = [t.name for t in action.tools if t.name not in tools]
        if missing:
            raise ValueError(f"AgenticRetoucher: the action agent's tools {missing} have no callable in tools "
                             f"({sorted(tools)})")
        if not 0.0 <= float(tau_s) <= 1.0:
            raise ValueError(f"AgenticRetoucher: tau_s must be in [0, 1], got {tau_s}")
        if int(max_turns) < 1:
            raise ValueError(f"AgenticRetoucher: max_turns must be >= 1, got {max_turns}")
        self.perception, self.reasoner, self.action, self.tools = perception, reasoner, action, dict(tools)
        self.evaluator, self.tau_s, self.max_turns, self.budget, self.seed = evaluator, float(tau_s), int(max_turns), \
            budget, int(seed)
        self.region_kwargs = {"tau": tau, "dilation": dilation, "min_area": min_area}
        if name:
            self.name = name

    def _perceive(self, image: torch.Tensor, prompt: str, clock: Clock) -> dict[str, np.ndarray]:
        with clock("perception"):
            try:
                maps = self.perception.predict_maps([image], prompts=[prompt])
            except Exception as exc:  # noqa: BLE001 - a failing model is a failed turn, not a lost image
                raise TurnFailure(f"perception failed: {type(exc).__name__}: {exc}") from exc
        with clock("conversion"):
            return {k: np.asarray(v[0], dtype=np.float32) for k, v in maps.items()}

    def observe(self, image: torch.Tensor, *, prompt: str = "", maps: dict[str, np.ndarray] | None = None,
                clock: Clock | None = None, turn: Turn | None = None, **_: Any) -> Observation:
        """Perception on ``image`` (unless its ``maps`` are given), the regions reaching ``tau_s`` and, when there
        are some, the reasoning agent. Fills ``turn`` as it goes; TurnFailure when the reasoning fails."""
        clock = clock or Clock()
        turn = turn if turn is not None else Turn(0)
        obs = Observation(maps=maps if maps is not None else self._perceive(image, prompt, clock))
        turn.maps = obs.maps
        with clock("regions"):
            regions = {n: regions_from_map(m, **self.region_kwargs) for n, m in obs.maps.items()}
            kept = {n: [i for i, s in enumerate(r.scores) if s >= self.tau_s] for n, r in regions.items()}
            turn.regions = {n: {**r.to_dict(), "repair": kept[n]} for n, r in regions.items()}
            obs.regions = {n: r for n, r in regions.items() if kept[n]}
            obs.region_index = {n: kept[n] for n in obs.regions}
        if not obs.regions:
            return obs
        boxes = [r.boxes[i] for n, r in obs.regions.items() for i in kept[n]]
        with clock("reasoning"):
            parses, obs.answers = ask_reasoner(self.reasoner, {"saliency": reasoner_prompt(boxes, prompt_text=prompt)},
                                                {"saliency": [image]})
        turn.answers = obs.answers
        flaws = [d for p in parses.values() for d in p.items]
        # one answer covers every salient map's regions: attribute it to each map that has them
        obs.diagnoses = {n: flaws for n in obs.regions}
        turn.diagnosis = {"saliency": [d.to_dict() for d in flaws]}
        return obs

    def _score(self, image: torch.Tensor, maps: dict[str, np.ndarray], source: torch.Tensor, prompt: str,
               clock: Clock) -> list[float]:
        if self.evaluator is None:
            return [100.0 * (1.0 - max(float(m.max()) for m in maps.values()))]
        with clock("evaluation"):
            try:
                s = np.asarray(self.evaluator.score([source], [image], [prompt]), dtype=np.float64)
            except Exception as exc:  # noqa: BLE001 - a failing model is a failed turn, not a lost image
                raise TurnFailure(f"the evaluator failed: {type(exc).__name__}: {exc}") from exc
        if s.ndim != 2 or len(s) != 1 or not np.isfinite(s).all():
            raise TurnFailure(f"the evaluator returned scores of shape {s.shape} or non-finite values")
        return [float(v) for v in s[0]]

    def run(self, image: Any, *, prompt: str | None = None, source: Any = None, instruction: str | None = None,
            max_turns: int | None = None) -> LoopTrace:
        """Retouch ``image`` generated from ``prompt`` (``instruction`` is used when no prompt is given;
        ``source`` only as the evaluator's reference); returns the trace (``trace.best_image`` is the result)."""
        current = as_image(image, "image")
        ref = as_image(source, "source") if source is not None else current
        text = prompt if prompt is not None else instruction
        if text is not None and not isinstance(text, str):
            raise TypeError(f"prompt must be a string, got {type(text).__name__}")
        text = text or ""
        turns = self.max_turns if max_turns is None else int(max_turns)
        trace = LoopTrace(self.name, current, None, instruction, text,
                          score_names=("perception",) if self.evaluator is None else ())
        clock = Clock()
        try:
            maps = self._perceive(current, text, clock)
            trace.input_scores = self._score(current, maps, ref, text, clock)
        except TurnFailure as exc:
            trace.stop_reason = f"the input could not be scored: {exc}"
            return trace
        spent = 0.0
        trace.stop_reason = f"reached max_turns={turns}"
        for k in range(1, turns + 1):
            clock = Clock()
            turn = Turn(k)
            try:
                obs = self.observe(current, prompt=text, maps=maps, clock=clock, turn=turn)
                if not obs.regions:
                    trace.final_maps = maps
                    trace.stop_reason = f"no region reaches tau_s={self.tau_s}"
                    break
                if not obs.flaws:
                    raise TurnFailure("the reasoning agent found no flaw in the salient regions")
                with clock("regions"):
                    mask, boxes = obs.mask, obs.boxes
                left = None if self.budget is None else self.budget - spent
                with clock("action"):
                    call = plan_action(self.action, obs.flaws, mask, boxes=boxes, instruction=text, image=current,
                                       budget_left=left)
                turn.tool_call = call.to_dict()
                with clock("tool"):
                    new = apply_tool_call(call, self.tools, current, source=None, seed=self.seed * 1000 + k)
                spent += call.cost
                maps = self._perceive(new, text, clock)
                turn.image, turn.scores = new, self._score(new, maps, ref, text, clock)
                current = new
            except TurnFailure as exc:
                turn.status, turn.reason = "failed", str(exc)
                trace.stop_reason = f"turn {k} failed: {exc}"
            finally:
                turn.timings = {s: round(v, 6) for s, v in clock.seconds.items()}
            trace.turns.append(turn)
            if turn.status == "failed":
                break
        else:
            trace.final_maps = maps
        trace.best_turn = max((t.index for t in trace.turns if t.image is not None), default=0)
        return trace

    def run_dataset(self, rows: Sequence[Mapping[str, Any]], *, output_dir: str | Path | None = None,
                    max_turns: int | None = None, progress: bool = True) -> list[LoopTrace]:
        """:meth:`run` on GenBlemish-style rows (``image``, ``prompt``); with ``output_dir`` each trace is saved
        to ``<output_dir>/<id or index>/``."""
        traces = []
        for key, row in iterate_rows(rows, progress=progress, what=self.name):
            trace = self.run(row.get("image", row.get("edited")), prompt=row.get("prompt"),
                             instruction=row.get("instruction"), max_turns=max_turns)
            if output_dir is not None:
                trace.save(Path(output_dir) / key)
            traces.append(trace)
        return traces
