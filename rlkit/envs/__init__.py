"""Retouching environments: Gymnasium envs over the edit engine and local tools, and trl environment adapters.

- :class:`RetouchEnv` / :class:`VectorRetouchEnv`: a policy's text (or an EditProgram) is parsed and
  executed by the engine on the current photo; any rlkit reward scores the result.
- :class:`RefineEnv`: the Agentic Retoucher / EditRefiner loop with inpainting, instruction editing
  and engine tools, masks from regions / boxes / saliency, history and undo.
- :class:`RetouchToolEnv` (and :class:`RefineToolEnv`, :class:`EditRefineToolEnv`): the same as tools
  for ``trl.GRPOTrainer(environment_factory=...)``.

Registered with Gymnasium as ``rlkit/Retouch-v0`` (``gymnasium.make`` and, vectorised,
``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``) and ``rlkit/Refine-v0``.
See docs/environments.md.
"""

import gymnasium as _gym

from rlkit.envs.core import TEXT_CHARSET, EnvConfigError, Episode, ParsedAction, parse_action
from rlkit.envs.executor import RetouchEnvReward, RetouchExecutor, env_rows_from_trl
from rlkit.envs.refine import REFINE_TOOLS, HistoryEntry, RefineEnv, mask_from_spec
from rlkit.envs.retouch import REWARD_MODES, RetouchEnv, VectorRetouchEnv
from rlkit.envs.tool_envs import (
    EditRefineToolEnv,
    RefineToolEnv,
    RetouchToolEnv,
    ToolEnvRollouts,
    tool_env_batch,
)
from rlkit.envs.tools import (
    ANNOTATION_RADIUS_FRACTION,
    InpaintTool,
    InstructionEditTool,
    MaskError,
    ToolError,
    boxes_from_mask,
    dilate_mask,
    load_pipeline,
    masks_from_boxes,
    masks_from_regions,
    masks_from_saliency,
)

__all__ = [
    "ANNOTATION_RADIUS_FRACTION",
    "REFINE_TOOLS",
    "REWARD_MODES",
    "TEXT_CHARSET",
    "EditRefineToolEnv",
    "EnvConfigError",
    "Episode",
    "HistoryEntry",
    "InpaintTool",
    "InstructionEditTool",
    "MaskError",
    "ParsedAction",
    "RefineEnv",
    "RefineToolEnv",
    "RetouchEnv",
    "RetouchEnvReward",
    "RetouchToolEnv",
    "ToolError",
    "VectorRetouchEnv",
    "boxes_from_mask",
    "dilate_mask",
    "env_rows_from_trl",
    "load_pipeline",
    "mask_from_spec",
    "masks_from_boxes",
    "masks_from_regions",
    "masks_from_saliency",
    "parse_action",
    "RetouchExecutor",
    "ToolEnvRollouts",
    "tool_env_batch",
]

if "rlkit/Retouch-v0" not in _gym.registry:
    _gym.register(
        id="rlkit/Retouch-v0",
        entry_point="rlkit.envs.retouch:RetouchEnv",
        vector_entry_point="rlkit.envs.retouch:VectorRetouchEnv",
    )
if "rlkit/Refine-v0" not in _gym.registry:
    _gym.register(id="rlkit/Refine-v0", entry_point="rlkit.envs.refine:RefineEnv")
