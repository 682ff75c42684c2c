"""Local tools for the refinement environments: diffusers inpainting, instruction editing, mask builders."""

from rlkit.envs.tools.diffusion import InpaintTool, InstructionEditTool, ToolError, load_pipeline
from rlkit.envs.tools.masks import (
    ANNOTATION_RADIUS_FRACTION,
    MaskError,
    boxes_from_mask,
    default_dilation,
    dilate_mask,
    masks_from_boxes,
    masks_from_regions,
    masks_from_saliency,
)

__all__ = [
    "ANNOTATION_RADIUS_FRACTION",
    "InpaintTool",
    "InstructionEditTool",
    "MaskError",
    "ToolError",
    "boxes_from_mask",
    "default_dilation",
    "dilate_mask",
    "load_pipeline",
    "masks_from_boxes",
    "masks_from_regions",
    "masks_from_saliency",
]
