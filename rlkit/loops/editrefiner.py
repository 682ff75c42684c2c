"""EditRefiner's closed loop (Sec. 4.1, Eqs. 2-5): perception -> reasoning -> action -> evaluation, repeated.

Turn t (1..``max_turns``, at most 4 in the paper) on the current image I_{t-1}:

1. **perception** on the *current* image (the public code re-reads the first edited image every turn; here
   the maps always describe the image being repaired): ``perception.predict_maps([I_{t-1}], sources=[I_0],
   instructions=[T])`` -> one map per kind (artifact, failure), each thresholded at ``tau``, opened / closed
   and split into regions (``rlkit.policies.regions_from_map``; boxes for the reasoner, masks for the action);
   no region in any map -> the turn is ``clean`` and the loop stops;
2. **reasoning** per map kind with regions (Eq. 3): one batched call of the chat backend with
   ``rlkit.policies.editrefiner_reasoner_prompt`` (source, current image, instruction, that map's boxes),
   each answer read by ``rlkit.policies.parse_diagnosis``;
3. **action** (Eq. 4): the diagnoses of both kinds and the union of their masks become one tool call
   (``rlkit.policies.ActionAgent``), run by its tool (``rlkit.envs.InpaintTool`` / ``InstructionEditTool`` or
   any callable of the same signature) on the current image with the source;
4. **evaluation** (Eq. 5): the evaluation agent scores (I_0, I_t, T); overall = s_v^0.3 s_e^0.4 s_p^0.3.

Stopping: as soon as the overall score does not improve on the best so far, the turn is ``rejected`` and the
loop returns the best image (the input when no turn helped); otherwise the new image is kept and the loop
goes on. With ``run_all_turns`` (the paper's turn ablation, Table 5) every turn is kept and the loop runs all
``max_turns``; ``stop_turn`` still says which image the stopping rule would have returned. A turn that fails
(reasoning that does not parse, an unknown tool, a tool that fails or returns another size, an empty mask,
nothing affordable) is recorded with its reason, keeps its image and counts as no improvement.
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
    find_regions,
    iterate_rows,
    plan_action,
)
from rlkit.loops.trace import LoopTrace, Turn, overall_of
from rlkit.policies import FLAW_KINDS, ActionAgent, editrefiner_reasoner_prompt

__all__ = ["EditRefiner"]


class EditRefiner:
    """The EditRefiner loop built from its agents (see the module docstring).

    ``perception``: ``predict_maps(images, sources=, instructions=) -> {map name: (N, H, W)}`` with map names
    in :data:`rlkit.policies.FLAW_KINDS` (``rlkit.policies.VLMSaliencyNet``); ``reasoner``: a chat backend
    (``rlkit.rewards.TransformersBackend`` on a trained reasoner, or ``OpenAIBackend``); ``action``: an
    ``ActionAgent`` whose tool names are keys of ``tools``; ``evaluator``: ``score(sources, edited,
    instructions) -> (N, 3)`` (``rlkit.policies.EvaluationAgent``). ``budget``: total tool cost per run (None:
    unlimited). Region extraction: ``tau``, ``opening``, ``closing``, ``min_area``, ``dilation`` (the public
    code: tau 0.5, a small opening/closing, min area 50 px at full resolution, no dilation).
    """

    name = "editrefiner"

    def __init__(self, *, perception: Any, reasoner: ChatBackend, action: ActionAgent, tools: Mapping[str, ToolFn],
                 evaluator: Any, max_turns: int = 4, tau: float = 0.5, opening: int = 1, closing: int = 1,
                 min_area: int = 4, dilation: int = 0, budget: float | None = None, run_all_turns: bool = False,
                 seed: int = 0, name: str | None = None) -> None:
        for what, obj, method in (("perception", perception, "predict_maps"), ("reasoner", reasoner, "generate"),
                                  ("evaluator", evaluator, "score")):
            if not callable(getattr(obj, method, None)):
                raise TypeError(f"EditRefiner: {what} needs a {method}() method, got {type(obj).__name__}")
        if not isinstance(action, ActionAgent):
            raise TypeError(f"EditRefiner: action must be an rlkit.policies.ActionAgent, got {type(action).__name__}")
        missing = [t.name for t in action.tools if t.name not in tools]
        if missing:
            raise ValueError(f"EditRefiner: the action agent's tools {missing} have no callable in tools "
                             f"({sorted(tools)})")
        if int(max_turns) < 1:
            raise ValueError(f"EditRefiner: max_turns must be >= 1, got {max_turns}")
        names = tuple(getattr(perception, "map_names", FLAW_KINDS))
        unknown = [n for n in names if n not in FLAW_KINDS]
        if unknown:
            raise ValueError(f"EditRefiner: perception map names {unknown} are not flaw kinds {sorted(FLAW_KINDS)}")
        self.perception, self.reasoner, self.action, self.tools = perception, reasoner, action, dict(tools)
        self.evaluator = evaluator
        self.max_turns, self.run_all_turns, self.seed = int(max_turns), bool(run_all_turns), int(seed)
        self.region_kwargs = {"tau": tau, "opening": opening, "closing": closing, "min_area": min_area,
                              "dilation": dilation}
        self.budget = budget
        if name:
            self.name = name

    # ------------------------------------------------------------------ steps

    def _perceive(self, image: torch.Tensor, source: torch.Tensor, instruction: str, clock: Clock
                  ) -> dict[str, np.ndarray]:
        with clock("perception"):
            try:
                maps = self.perception.predict_maps([image], sources=[source], instructions=[instruction])
            except Exception as exc:  # noqa: BLE001 - a failing model is a failed turn, not a lost image
                raise TurnFailure(f"perception failed: {type(exc).__name__}: {exc}") from exc
        with clock("conversion"):
            return {k: np.asarray(v[0], dtype=np.float32) for k, v in maps.items()}

    def _score(self, source: torch.Tensor, image: torch.Tensor, instruction: str, clock: Clock) -> list[float]:
        with clock("evaluation"):
            try:
                s = np.asarray(self.evaluator.score([source], [image], [instruction]), dtype=np.float64)
            except Exception as exc:  # noqa: BLE001 - a failing model is a failed turn, not a lost image
                raise TurnFailure(f"the evaluator failed: {type(exc).__name__}: {exc}") from exc
        if s.shape != (1, 3) or not np.isfinite(s).all() or s.min() < 0:
            raise TurnFailure(f"the evaluator returned scores of shape {s.shape} / non-finite or negative values; "
                              "expected three scores on [0, 100]")
        return [float(v) for v in s[0]]

    def observe(self, image: torch.Tensor, *, source: torch.Tensor | None = None, instruction: str | None = None,
                clock: Clock | None = None, turn: Turn | None = None, **_: Any) -> Observation:
        """Perception on ``image`` (made from ``source`` by ``instruction``) and, for the maps with regions, the
        reasoning agent (Eqs. 2-3). Fills ``turn`` (maps, regions, answers, diagnosis) as it goes; TurnFailure
        when a model fails or the reasoning does not parse."""
        source = image if source is None else source
        instruction = instruction or ""
        clock = clock or Clock()
        turn = turn if turn is not None else Turn(0)
        obs = Observation(maps=self._perceive(image, source, instruction, clock))
        turn.maps = obs.maps
        with clock("regions"):
            regions = find_regions(obs.maps, **self.region_kwargs)
            turn.regions = {n: r.to_dict() for n, r in regions.items()}
            obs.regions = {n: r for n, r in regions.items() if len(r)}
        if not obs.regions:
            return obs
        prompts = {n: editrefiner_reasoner_prompt(instruction, r.boxes, kind=n) for n, r in obs.regions.items()}
        with clock("reasoning"):
            parses, obs.answers = ask_reasoner(self.reasoner, prompts, {n: [source, image] for n in obs.regions})
        turn.answers = obs.answers
        obs.diagnoses = {n: list(p.items) for n, p in parses.items()}
        turn.diagnosis = {n: [d.to_dict() for d in v] for n, v in obs.diagnoses.items()}
        return obs

    def _turn(self, k: int, current: torch.Tensor, source: torch.Tensor, instruction: str, spent: float
              ) -> tuple[Turn, float]:
        turn = Turn(k)
        clock = Clock()
        try:
            obs = self.observe(current, source=source, instruction=instruction, clock=clock, turn=turn)
            if not obs.regions:
                turn.status, turn.reason = "clean", f"no region of any map reaches tau={self.region_kwargs['tau']}"
                return turn, 0.0
            if not obs.flaws:
                turn.status, turn.reason = "clean", "the reasoning agent found no flaw in the marked regions"
                return turn, 0.0
            left = None if self.budget is None else self.budget - spent
            with clock("regions"):
                mask, boxes = obs.mask, obs.boxes
            with clock("action"):
                call = plan_action(self.action, obs.flaws, mask, boxes=boxes, instruction=instruction, image=current,
                                   budget_left=left)
            turn.tool_call = call.to_dict()
            with clock("tool"):
                new = apply_tool_call(call, self.tools, current, source=source, seed=self.seed * 1000 + k)
            turn.image = new
            turn.scores = self._score(source, new, instruction, clock)
            return turn, float(call.cost)
        except TurnFailure as exc:
            turn.status, turn.reason, turn.image, turn.scores = "failed", str(exc), None, None
            return turn, 0.0
        finally:
            turn.timings = {k2: round(v, 6) for k2, v in clock.seconds.items()}

    # ------------------------------------------------------------------ loop

    def run(self, image: Any, *, source: Any = None, instruction: str | None = None, prompt: str | None = None,
            max_turns: int | None = None) -> LoopTrace:
        """Refine ``image`` (the edited image) made from ``source`` by ``instruction``; returns the trace
        (``trace.best_image`` is the result). ``prompt`` is accepted for the eval suite's protocol and unused."""
        current = as_image(image, "image")
        src = as_image(source, "source") if source is not None else current
        if src.shape != current.shape:  # the source at the edited image's size: the agents compare them
            src = torch.nn.functional.interpolate(src[None], size=tuple(current.shape[-2:]), mode="bilinear",
                                                  align_corners=False, antialias=True)[0].clamp(0, 1)
        if instruction is not None and not isinstance(instruction, str):
            raise TypeError(f"instruction must be a string, got {type(instruction).__name__}")
        instruction = instruction or ""
        turns = self.max_turns if max_turns is None else int(max_turns)
        if turns < 0:
            raise ValueError(f"max_turns must be >= 0, got {max_turns}")
        trace = LoopTrace(self.name, current, src, instruction, score_names=("s_v", "s_e", "s_p"))
        clock = Clock()
        try:
            trace.input_scores = self._score(src, current, instruction, clock)
        except TurnFailure as exc:  # without a score of the input nothing can be compared: return the input
            trace.stop_reason = f"the input could not be scored: {exc}"
            return trace
        best, best_score, spent = 0, overall_of(trace.input_scores), 0.0
        rule_stop: int | None = None
        trace.stop_reason = f"reached max_turns={turns}"
        for k in range(1, turns + 1):
            turn, cost = self._turn(k, current, src, instruction, spent)
            spent += cost
            if turn.status == "clean":  # not a turn: the maps of the image the loop ends on
                trace.final_maps, trace.stop_reason = turn.maps, turn.reason or "nothing to repair"
                break
            trace.turns.append(turn)
            improved = turn.scores is not None and overall_of(turn.scores) > best_score  # type: ignore[operator]
            if improved and rule_stop is None:
                best, best_score = k, overall_of(turn.scores)
            elif rule_stop is None:
                rule_stop = best
                if turn.status == "ok":
                    turn.status = "rejected" if not self.run_all_turns else "ok"
                    turn.reason = (f"overall {overall_of(turn.scores):.3f} does not improve on the best "
                                   f"{best_score:.3f}")
                if not self.run_all_turns:
                    trace.stop_reason = f"turn {k}: no improvement" + (f" ({turn.reason})" if turn.reason else "")
                    break
            if turn.image is not None and (self.run_all_turns or improved):
                current = turn.image
        trace.best_turn = best if rule_stop is None else rule_stop
        return trace

    def run_dataset(self, rows: Sequence[Mapping[str, Any]], *, output_dir: str | Path | None = None,
                    max_turns: int | None = None, progress: bool = True) -> list[LoopTrace]:
        """:meth:`run` on EditFHF-style rows (``edited``/``image``, ``source``, ``instruction``); with
        ``output_dir`` each trace is saved to ``<output_dir>/<id or index>/``."""
        traces = []
        for key, row in iterate_rows(rows, progress=progress, what=self.name):
            image = row.get("edited", row.get("image"))
            trace = self.run(image, source=row.get("source"), instruction=row.get("instruction"),
                             max_turns=max_turns)
            if output_dir is not None:
                trace.save(Path(output_dir) / key)
            traces.append(trace)
        return traces
