"""rlkit.ops: the retouch engine (typed edit programs, safe text parsing, batched torch ops, masks, XMP).

Quick use::

    from rlkit.ops import parse_program, apply_program, to_tensor, to_pil
    res = parse_program("exposure=+0.5; contrast=20")
    out = apply_program(to_tensor(img), res.program)
"""

from .._mkl_warmup import warm_up_mkl_vml
from .blur import gaussian_blur
from .color import linear_to_srgb, luminance, srgb_to_linear
from .engine import apply_params, apply_program
from .errors import ProgramError
from .imageio import to_pil, to_tensor
from .local import LocalAdjustment
from .lut import curve_lut
from .masks import (
    BrushMask,
    ColorRangeMask,
    CompositeMask,
    LinearMask,
    LuminanceRangeMask,
    Mask,
    RadialMask,
    TensorMask,
    mask_from_dict,
)
from .params import HSL_BANDS, LIGHTROOM_ALIASES, LOCAL_PARAMS, PARAM_SPECS, ParamSpec, canonical_name
from .parser import ParseProblem, ParseResult, as_program, json_too_deep, parse_program, render_program
from .profiles import LookTable, Profile, RGBTable
from .program import EditProgram
from .values import ClampNote
from .xmp import XmpExport, XmpImport, export_xmp, from_xmp, import_xmp, to_xmp

warm_up_mkl_vml()  # before any batched op: MKL's first-call dispatch race gives low-accuracy results otherwise

__all__ = [
    "PARAM_SPECS", "ParamSpec", "LOCAL_PARAMS", "HSL_BANDS", "LIGHTROOM_ALIASES", "canonical_name",
    "EditProgram", "LocalAdjustment", "ClampNote", "ProgramError",
    "Mask", "RadialMask", "LinearMask", "BrushMask", "TensorMask", "LuminanceRangeMask", "ColorRangeMask",
    "CompositeMask", "mask_from_dict",
    "parse_program", "render_program", "ParseResult", "ParseProblem", "as_program", "json_too_deep",
    "apply_program", "apply_params", "curve_lut", "gaussian_blur",
    "to_tensor", "to_pil", "srgb_to_linear", "linear_to_srgb", "luminance",
    "export_xmp", "import_xmp", "to_xmp", "from_xmp", "XmpExport", "XmpImport",
    "Profile", "RGBTable", "LookTable",
]
