"""Lightroom develop-setting dicts (JarvisArt answers, XMP sidecars) <-> :class:`EditProgram`.

Global sliders use the Lightroom keys of :data:`PARAM_SPECS`; tone curves ``ToneCurvePV2012[Red|Green|Blue]``;
local adjustments ``MaskGroupBasedCorrections``: a list of correction groups whose ``Local*`` values use
Lightroom's -1..+1 scale (``LocalExposure2012`` x 4 = EV, the others x 100) and whose ``CorrectionMasks``
hold ``Mask/CircularGradient`` (Top/Left/Bottom/Right, Angle, Feather, Flipped), ``Mask/Gradient``
(ZeroX/ZeroY/FullX/FullY), ``Mask/Paint`` (rlkit: Dabs "x y r"), ``Mask/RangeMask`` (rlkit: Type
luminance|color) and ``Mask/Image`` (rlkit: Data, a 2-D list) entries combined by ``MaskBlendMode``
(add / intersect / subtract).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from . import masks
from .errors import ProgramError
from .local import LocalAdjustment
from .masks import CompositeMask, Mask
from .params import CURVE_LIGHTROOM, PARAM_SPECS
from .profiles import Profile, encode_table
from .values import ClampNote, check_param

__all__ = ["program_to_lightroom", "profile_to_lightroom", "corrections_from_lightroom", "LOCAL_LIGHTROOM"]

#: canonical local parameter -> (Lightroom Local* key, scale from the Lightroom value to ours)
LOCAL_LIGHTROOM: Mapping[str, tuple[str, float]] = {
    "exposure": ("LocalExposure2012", 4.0),
    "contrast": ("LocalContrast2012", 100.0),
    "highlights": ("LocalHighlights2012", 100.0),
    "shadows": ("LocalShadows2012", 100.0),
    "whites": ("LocalWhites2012", 100.0),
    "blacks": ("LocalBlacks2012", 100.0),
    "temperature": ("LocalTemperature", 100.0),
    "tint": ("LocalTint", 100.0),
    "vibrance": ("LocalVibrance", 100.0),
    "saturation": ("LocalSaturation", 100.0),
    "texture": ("LocalTexture", 100.0),
    "clarity": ("LocalClarity2012", 100.0),
    "dehaze": ("LocalDehaze", 100.0),
    "sharpening": ("LocalSharpness", 100.0),
    "noise_reduction": ("LocalLuminanceNoise", 100.0),
}
_LOCAL_FROM_LR = {lr.lower(): (name, scale) for name, (lr, scale) in LOCAL_LIGHTROOM.items()}
_LOCAL_FROM_LR.update({"localclarity": ("clarity", 100.0), "localexposure": ("exposure", 4.0),
                       "localcontrast": ("contrast", 100.0)})


def _r(v: float) -> float:
    return float(v)


def _mask_entries(mask: Mask, unsupported: list[str] | None) -> list[dict[str, Any]]:
    if isinstance(mask, CompositeMask) and not mask.invert:
        out = []
        for op, m in mask.parts:
            e = _mask_entry(m, unsupported)
            e["MaskBlendMode"] = op
            out.append(e)
        return out
    return [_mask_entry(mask, unsupported)]


def _mask_entry(m: Mask, unsupported: list[str] | None) -> dict[str, Any]:
    if isinstance(m, masks.RadialMask):
        return {"What": "Mask/CircularGradient", "Top": _r(m.cy - m.ry), "Left": _r(m.cx - m.rx),
                "Bottom": _r(m.cy + m.ry), "Right": _r(m.cx + m.rx), "Angle": _r(m.angle),
                "Feather": _r(m.feather), "Flipped": m.invert}
    if isinstance(m, masks.LinearMask):
        return {"What": "Mask/Gradient", "ZeroX": _r(m.x0), "ZeroY": _r(m.y0), "FullX": _r(m.x1),
                "FullY": _r(m.y1), "Invert": m.invert}
    if isinstance(m, masks.BrushMask):
        return {"What": "Mask/Paint", "Dabs": [f"{x!r} {y!r} {r!r}" for x, y, r in m.disks],
                "Feather": _r(m.feather), "Pixels": m.pixels, "Invert": m.invert}
    if isinstance(m, masks.LuminanceRangeMask):
        return {"What": "Mask/RangeMask", "Type": "luminance", "LumRange": f"{m.lo!r} {m.hi!r}",
                "Feather": _r(m.feather), "Invert": m.invert}
    if isinstance(m, masks.ColorRangeMask):
        return {"What": "Mask/RangeMask", "Type": "color", "Hue": _r(m.hue), "Width": _r(m.width),
                "Feather": _r(m.feather), "Invert": m.invert}
    if isinstance(m, masks.TensorMask):
        if unsupported is not None:
            unsupported.append("tensor mask (a pixel array; Lightroom masks are parametric)")
        return {"What": "Mask/Image", "Data": m.data.detach().cpu().tolist(), "Invert": m.invert}
    if isinstance(m, CompositeMask):
        return {"What": "Mask/Group", "Masks": _mask_entries(CompositeMask(m.parts), unsupported),
                "Invert": m.invert}
    raise ProgramError(f"cannot express mask {type(m).__name__} in Lightroom form")


class ProgramParts(Protocol):
    """What :func:`program_to_lightroom` reads of an :class:`~rlkit.ops.EditProgram` (which imports this module)."""

    params: Mapping[str, float]
    curves: Mapping[str, Sequence[tuple[float, float]]]
    local: Sequence[LocalAdjustment]
    profile: Profile | None


def program_to_lightroom(program: ProgramParts, unsupported: list[str] | None = None) -> dict[str, Any]:
    """Flat Lightroom develop dict for a program (JarvisArt answer form). Slider names without a Lightroom
    key keep their canonical name; ``unsupported`` (if given) receives what Lightroom cannot represent."""
    d: dict[str, Any] = {}
    for name, v in program.params.items():
        spec = PARAM_SPECS[name]
        if spec.lightroom is None and unsupported is not None:
            unsupported.append(f"parameter '{name}' (no Lightroom key)")
        d[spec.lightroom or name] = _r(v)
    if "monochrome" in program.params:  # a treatment in Lightroom: black and white or colour
        m = program.params["monochrome"]
        d["ConvertToGrayscale"] = m >= 0.5
        if 0.0 < m < 1.0 and unsupported is not None:
            unsupported.append(f"partial black and white (monochrome={m:g}; Lightroom's treatment is on or off, "
                               f"written as {'on' if m >= 0.5 else 'off'})")
    if program.profile is not None:
        d.update(profile_to_lightroom(program.profile))
    for ch, pts in program.curves.items():
        d[CURVE_LIGHTROOM[ch]] = [[_r(x), _r(y)] for x, y in pts]
    if program.local:
        groups = []
        for la in program.local:
            g: dict[str, Any] = {"What": "Correction", "CorrectionAmount": 1}
            for name, v in la.params.items():
                lr, scale = LOCAL_LIGHTROOM[name]
                g[lr] = _r(v / scale)
            g["CorrectionMasks"] = _mask_entries(la.mask, unsupported)
            groups.append(g)
        d["MaskGroupBasedCorrections"] = groups
    return d


def profile_to_lightroom(profile: Profile) -> dict[str, Any]:
    """``Look`` (name, amount, parameters naming the tables) and the ``Table_<fingerprint>`` values it needs."""
    params: dict[str, Any] = {}
    tables: dict[str, str] = {}
    for key, table in (("LookTable", profile.look_table), ("RGBTable", profile.rgb_table)):
        if table is not None:
            fp, text = encode_table(table)
            params[key] = fp
            tables[f"Table_{fp}"] = text
    if profile.rgb_table is not None:
        params["RGBTableAmount"] = _r(profile.rgb_table_amount)
    look = {"Name": profile.name, "Amount": _r(profile.amount), "SupportsAmount": True, "Parameters": params}
    return {"Look": look, **tables}


def _f(entry: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    v = entry.get(key, default)
    if v is None:
        raise ProgramError(f"{where}: missing '{key}'")
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise ProgramError(f"{where}: '{key}' must be a number, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProgramError(f"{where}: '{key}' must be a number, got {v!r}")
    return float(v)


def _snap(v: float) -> float:
    """``v`` to 12 significant digits: values rebuilt from Lightroom's forms (local values in its -1..+1 scale, a
    radial mask's centre and radii from its bounding box) come back as written (6.86, not 6.860000000000001)."""
    return float(f"{v:.12g}")


def _b(entry: Mapping[str, Any], *keys: str) -> bool:
    """True when any of ``keys`` is set true: Lightroom 11+ entries may carry both ``Flipped`` and
    ``MaskInverted`` (one of them false), so the first key present does not decide alone."""
    for k in keys:
        v = entry.get(k)
        if isinstance(v, str):
            v = v.strip().lower() in ("true", "1", "1.0", "yes")
        if v is not None and bool(v):
            return True
    return False


def _code(v: object) -> str:
    """A mode or type code as a lower-case string; numbers (XMP import turns ``"0"`` into ``0.0``) as integers."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer():
        return str(int(v))
    s = str(v).strip().lower()
    try:
        f = float(s)
    except ValueError:
        return s
    return str(int(f)) if f.is_integer() else s


def _numbers(s: object, n: int, where: str) -> list[float]:
    parts = s.replace(",", " ").split() if isinstance(s, str) else list(s) if isinstance(s, Sequence) else None
    if parts is None or len(parts) != n:
        raise ProgramError(f"{where}: expected {n} numbers, got {s!r}")
    try:
        return [float(p) for p in parts]
    except (TypeError, ValueError):
        raise ProgramError(f"{where}: expected {n} numbers, got {s!r}") from None


def _mask_from_entry(e: object, where: str) -> Mask:
    if not isinstance(e, Mapping):
        raise ProgramError(f"{where}: a correction mask must be an object, got {type(e).__name__}")
    what = str(e.get("What", ""))
    kind = what.split("/")[-1].lower()
    inv = _b(e, "Flipped", "Invert", "MaskInverted")
    if kind == "circulargradient":
        top, left = _f(e, "Top", where), _f(e, "Left", where)
        bottom, right = _f(e, "Bottom", where), _f(e, "Right", where)
        return masks.RadialMask(_snap((left + right) / 2), _snap((top + bottom) / 2), _snap(abs(right - left) / 2),
                          _snap(abs(bottom - top) / 2),
                          _f(e, "Angle", where, 0.0), _f(e, "Feather", where, 50.0), inv)
    if kind == "gradient":
        return masks.LinearMask(_f(e, "ZeroX", where), _f(e, "ZeroY", where), _f(e, "FullX", where),
                          _f(e, "FullY", where), inv)
    if kind == "paint":
        dabs = e.get("Dabs")
        if isinstance(dabs, str) or not isinstance(dabs, Sequence) or not dabs:
            raise ProgramError(f"{where}: Mask/Paint needs 'Dabs', a list of \"x y r\"")
        disks = tuple(tuple(_numbers(d, 3, f"{where} Dabs[{i}]")) for i, d in enumerate(dabs))
        return masks.BrushMask(disks, _f(e, "Feather", where, 0.0), _b(e, "Pixels"), inv)
    if kind == "rangemask":
        t = _code(e.get("Type", ""))
        if t in ("luminance", "2"):
            lo, hi = _numbers(e.get("LumRange"), 2, f"{where} LumRange")
            return masks.LuminanceRangeMask(lo, hi, _f(e, "Feather", where, 0.1), inv)
        if t in ("color", "colour", "1"):
            return masks.ColorRangeMask(_f(e, "Hue", where), _f(e, "Width", where, 30.0), _f(e, "Feather", where, 15.0),
                                  inv)
        raise ProgramError(f"{where}: Mask/RangeMask 'Type' must be luminance or color, got {e.get('Type')!r}")
    if kind == "image":
        return masks.TensorMask(e.get("Data"), inv)
    if kind == "group":
        return CompositeMask(_combine(e.get("Masks"), where).parts, inv)
    raise ProgramError(f"{where}: unsupported mask kind {what!r}; supported: Mask/CircularGradient, Mask/Gradient, "
                       "Mask/Paint, Mask/RangeMask, Mask/Image, Mask/Group")


def _combine(entries: object, where: str) -> CompositeMask:
    if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Sequence) or not entries:
        raise ProgramError(f"{where}: 'CorrectionMasks' must be a non-empty list of masks")
    parts = []
    for i, e in enumerate(entries):
        m = _mask_from_entry(e, f"{where}.CorrectionMasks[{i}]")
        op = _code(e.get("MaskBlendMode", "add")) if isinstance(e, Mapping) else "add"
        op = {"0": "add", "1": "intersect", "2": "subtract"}.get(op, op)
        parts.append((op, m))
    return CompositeMask(tuple(parts))


def corrections_from_lightroom(groups: object, *, clamp: bool = False,
                               notes: list[ClampNote] | None = None) -> list[LocalAdjustment]:
    """Parse ``MaskGroupBasedCorrections`` into :class:`LocalAdjustment` objects."""
    if isinstance(groups, (str, bytes, Mapping)) or not isinstance(groups, Sequence):
        raise ProgramError("MaskGroupBasedCorrections: expected a list of correction groups")
    out = []
    for gi, g in enumerate(groups):
        where = f"MaskGroupBasedCorrections[{gi}]"
        if not isinstance(g, Mapping):
            raise ProgramError(f"{where}: expected an object, got {type(g).__name__}")
        amount = _f(g, "CorrectionAmount", where, 1.0)
        params: dict[str, float] = {}
        for k in g:
            if k in ("What", "CorrectionAmount", "CorrectionMasks", "CorrectionActive", "CorrectionName",
                     "CorrectionSyncID", "MaskVersion"):
                continue
            hit = _LOCAL_FROM_LR.get(k.lower()) if isinstance(k, str) else None
            if hit is None:
                raise ProgramError(f"{where}: unknown local parameter {k!r}; supported: "
                                   f"{[lr for lr, _ in LOCAL_LIGHTROOM.values()]}")
            name, scale = hit
            val = _snap(_f(g, k, where) * scale * amount)
            params[name] = check_param(where, name, val, clamp, notes, local=True)
        mask = _combine(g.get("CorrectionMasks"), where)
        if len(mask.parts) == 1 and mask.parts[0][0] == "add":
            mask = mask.parts[0][1]
        out.append(LocalAdjustment(mask, params))
    return out
