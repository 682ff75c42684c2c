"""rlkit.loops: the papers' closed refinement loops, built from the agents.

- :class:`EditRefiner`: perception (two maps, on the current image each turn) -> reasoning -> action ->
  evaluation; stops when the overall score does not improve (keeps the best image) or after 4 turns;
- :class:`AgenticRetoucher`: perception -> (if salient) reasoning -> action, until no region reaches tau_s;
- :class:`LoopTrace` / :class:`Turn`: what a run records (JSON + a PNG strip), in the shape the eval suite reads;
- :func:`run_in_refine_env`, :class:`EditRefinerToolEnv`, :class:`AgenticRetoucherToolEnv`: the loops inside
  ``RefineEnv`` and trl's ``environment_factory`` (training the action side).

Command line: ``rlkit refine editrefiner|agentic-retoucher`` (docs/agents.md).
"""

from rlkit.loops.agentic_retoucher import AgenticRetoucher
from rlkit.loops.editrefiner import EditRefiner
from rlkit.loops.env import AgenticRetoucherToolEnv, EditRefinerToolEnv, run_in_refine_env, tool_call_action
from rlkit.loops.steps import MODEL_STEPS, Observation, TurnFailure, as_image
from rlkit.loops.trace import TURN_STATUSES, LoopTrace, Turn

__all__ = [
    "EditRefiner", "AgenticRetoucher", "LoopTrace", "Turn", "TURN_STATUSES", "Observation", "TurnFailure",
    "MODEL_STEPS", "as_image", "run_in_refine_env", "tool_call_action", "EditRefinerToolEnv",
    "AgenticRetoucherToolEnv",
]
