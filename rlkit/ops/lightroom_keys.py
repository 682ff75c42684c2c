"""What Lightroom's develop keys mean to rlkit: white balance, the B&W treatment, profiles, and the keys it skips.

Every ``crs:`` key of a sidecar or preset is one of:

- a setting rlkit renders (the Lightroom keys of :data:`~rlkit.ops.params.PARAM_SPECS`, tone curves, local
  corrections, white balance, ``Treatment`` / ``ConvertToGrayscale``, a profile whose tables are in the file);
- bookkeeping that never changes pixels (:data:`BOOKKEEPING`: versions, names, UUIDs, ``Supports*``, groups,
  digests, the settings of a switched-off tool) or a pixel setting at its neutral value (:data:`NEUTRAL`);
- a setting that changes pixels and that rlkit does not model: reported as unsupported (lens corrections,
  transforms, crop, spot removal, ``PointColors``, ...), never silently dropped.

White balance (raw files store absolute ``Temperature`` in Kelvin and ``Tint``; rendered files the incremental
``IncrementalTemperature`` / ``IncrementalTint``): absolute values are read relative to the photo's as-shot
values (``AsShotTemperature`` / ``AsShotTint``; 5500 K and tint 0 assumed, with a warning, when absent);
``WhiteBalance="As Shot"`` is no edit; ``Auto`` and the named presets (Daylight, Cloudy, ...) use the
Temperature / Tint the file stores, or else are reported (auto white balance is computed per photo by
Lightroom, and the presets' Kelvin depends on the camera).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ProgramError
from .params import kelvin_to_incremental
from .profiles import LookTable, Profile, RGBTable, decode_table

__all__ = ["BOOKKEEPING", "NEUTRAL", "LEGACY_PV2010", "WHITE_BALANCE_KEYS", "LookResolution", "WhiteBalanceEdit", "white_balance_from_lightroom",
           "monochrome_from_lightroom", "profile_from_lightroom", "is_bookkeeping", "is_neutral", "TABLE_KEY"]

#: keys that never change pixels: identification, versions, presentation, digests, caches
BOOKKEEPING: frozenset[str] = frozenset("""
    Version ProcessVersion CompatibleVersion HasSettings HasCrop AlreadyApplied RawFileName PresetType Name SortName
    UUID Cluster Group Groups Description Copyright ContactInfo CameraModelRestriction ShowInPresets
    ShowInQuickActions RequiresRGBTables SupportsAmount SupportsAmount2 SupportsColor SupportsMonochrome
    SupportsHighDynamicRange SupportsNormalDynamicRange SupportsSceneReferred SupportsOutputReferred
    ToneCurveName ToneCurveName2010 ToneCurveName2012 CameraProfileDigest LensProfileDigest LensProfileName
    LensProfileFilename LensProfileSetup LensProfileIsEmbedded LensProfileDistortionScale
    LensProfileChromaticAberrationScale LensProfileVignettingScale UprightVersion UprightCenterMode
    UprightCenterNormX UprightCenterNormY UprightFocalMode UprightFocalLength35mm UprightPreview
    UprightTransformCount UprightFourSegmentsCount UprightDependentDigest UprightGuidedDependentDigest
    DefringePurpleHueLo DefringePurpleHueHi DefringeGreenHueLo DefringeGreenHueHi AutoWhiteVersion
    GrainSeed OverrideLookVignette ConvertToGrayscaleVersion LookName JPEGHandling Amount
    EnableCalibration EnableColorAdjustments EnableDetail EnableEffects EnableGrayscaleMix EnableLensCorrections
    EnableLocalAdjustments EnableRedEye EnableRetouch EnableSplitToning EnableToneCurve EnableTransform
    EnableCircularGradientBasedCorrections EnableGradientBasedCorrections EnablePaintBasedCorrections
    EnableMaskGroupBasedCorrections AutoGrayscaleMix CurveRefineSaturation
""".split())

#: pixel-changing settings rlkit does not model, with the value at which they do nothing (any other value is
#: reported as unsupported)
NEUTRAL: Mapping[str, Any] = {
    "AutoLateralCA": 0, "LensProfileEnable": 0, "LensManualDistortionAmount": 0, "VignetteAmount": 0,
    "VignetteMidpoint": None, "DefringePurpleAmount": 0, "DefringeGreenAmount": 0, "PerspectiveUpright": 0,
    "PerspectiveVertical": 0, "PerspectiveHorizontal": 0, "PerspectiveRotate": 0, "PerspectiveScale": 100,
    "PerspectiveAspect": 0, "PerspectiveX": 0, "PerspectiveY": 0, "CropTop": 0, "CropLeft": 0, "CropBottom": 1,
    "CropRight": 1, "CropAngle": 0, "CropConstrainToWarp": None, "CropConstrainAspectRatio": None,
    "CropWidth": None, "CropHeight": None, "CropUnit": None, "Saturation2012": 0, "ToneMapStrength": 0,
    "LensBlur": None, "PointColors": [], "ColorVariance": 0, "HDREditMode": 0, "SDRBrightness": None,
    "SDRContrast": None, "SDRClarity": None, "SDRHighlights": None, "SDRShadows": None, "SDRWhites": None,
    "SDRBlend": None, "RetouchInfo": [], "RetouchAreas": [], "RedEyeInfo": [], "CircularGradientBasedCorrections": [],
    "GradientBasedCorrections": [], "PaintBasedCorrections": [], "FillLight": 0, "HighlightRecovery": 0,
    "CameraProfile": None, "LocalToningHue": 0, "LocalToningSaturation": 0, "Saturation2010": 0,
}
#: keys that only modify another key (their own value alone changes nothing: listed as bookkeeping)
_MODIFIERS = {"VignetteMidpoint", "CropConstrainToWarp", "CropConstrainAspectRatio", "CropWidth", "CropHeight",
              "CropUnit", "SDRBrightness", "SDRContrast", "SDRClarity", "SDRHighlights", "SDRShadows", "SDRWhites",
              "SDRBlend"}
#: the default camera profiles: the baseline rendering, which rlkit's engine stands in for
_DEFAULT_CAMERA_PROFILES = {"Adobe Standard", "Embedded", "Camera Standard", ""}
#: process-version 2010 (and earlier) basic sliders and curves: not in effect under process version 2012 and later
#: (``ProcessVersion`` >= 6.7), where Lightroom keeps them only for reverting; under an older process version
#: they are reported as unsupported (their formulas differ from the 2012 sliders')
LEGACY_PV2010: frozenset[str] = frozenset({"ToneCurve", "ToneCurveRed", "ToneCurveGreen", "ToneCurveBlue",
                                           "Shadows", "Brightness", "Contrast", "Exposure", "Clarity", "FillLight",
                                           "HighlightRecovery"})

WHITE_BALANCE_KEYS = frozenset({"WhiteBalance", "Temperature", "Tint", "AsShotTemperature", "AsShotTint"})
TABLE_KEY = re.compile(r"Table_[0-9A-Fa-f]{32}")
_AS_SHOT = {"asshot", "as shot"}
_NAMED_KELVIN = {"daylight": 5500.0, "cloudy": 6500.0, "shade": 7500.0, "tungsten": 2850.0,
                 "fluorescent": 3800.0, "flash": 5500.0}


def _number(v: object) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def is_bookkeeping(key: str, value: object = None) -> bool:
    """True for keys that never change pixels (and for modifiers of a setting that is not in effect)."""
    return key in BOOKKEEPING or key in _MODIFIERS or TABLE_KEY.fullmatch(key) is not None


def is_neutral(key: str, value: object) -> bool:
    """True when ``key`` is a setting rlkit does not model but ``value`` is its do-nothing value."""
    if key not in NEUTRAL:
        return False
    if key == "CameraProfile":
        return str(value) in _DEFAULT_CAMERA_PROFILES
    neutral = NEUTRAL[key]
    if isinstance(neutral, list):
        return value in (None, "", []) or value == neutral
    if neutral is None:
        return True
    n = _number(value)
    return n is not None and n == float(neutral)


@dataclass(frozen=True)
class WhiteBalanceEdit:
    """The incremental white-balance edit a Lightroom dict asks for, and what was assumed to read it."""

    temperature: float | None = None
    tint: float | None = None
    warnings: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def white_balance_from_lightroom(d: Mapping[str, Any]) -> WhiteBalanceEdit:
    """Resolve ``WhiteBalance`` / ``Temperature`` / ``Tint`` / ``AsShot*`` of a Lightroom dict into our incremental
    ``temperature`` / ``tint`` edits (None: not set by these keys). ``Temperature`` outside 1500..50000 is taken
    as already incremental (our own dicts and policy text), as before."""
    mode = str(d.get("WhiteBalance", "")).strip().lower()
    kelvin, tint = _number(d.get("Temperature")), _number(d.get("Tint"))
    shot_k, shot_t = _number(d.get("AsShotTemperature")), _number(d.get("AsShotTint"))
    warnings: list[str] = []
    unsupported: list[str] = []
    absolute_k = kelvin is not None and 1500.0 <= kelvin <= 50000.0
    if mode in _AS_SHOT:
        return WhiteBalanceEdit(0.0 if kelvin is not None else None, 0.0 if tint is not None else None)
    if mode in _NAMED_KELVIN and not absolute_k:
        kelvin, absolute_k = _NAMED_KELVIN[mode], True
        warnings.append(f"WhiteBalance={d['WhiteBalance']!r} without a Temperature: read as its nominal {kelvin:g} K "
                        "(Lightroom's value depends on the camera)")
    if mode == "auto" and not absolute_k and tint is None:
        unsupported.append("WhiteBalance='Auto' (Lightroom computes it per photo; not modelled, no white-balance "
                           "edit applied)")
        return WhiteBalanceEdit(None, None, warnings, unsupported)
    temperature = None
    if absolute_k:
        if shot_k is None or not 1500.0 <= shot_k <= 50000.0:
            warnings.append(f"Temperature {kelvin:g} K read relative to an assumed as-shot 5500 K (the file has no "
                            "AsShotTemperature)")
            temperature = kelvin_to_incremental(kelvin)
        else:
            temperature = kelvin_to_incremental(kelvin, shot_k)
    elif kelvin is not None:
        temperature = kelvin
    if tint is not None:
        if shot_t is not None:
            tint = tint - shot_t
        elif absolute_k:
            warnings.append(f"Tint {tint:+g} read relative to an assumed as-shot tint 0 (the file has no AsShotTint)")
    return WhiteBalanceEdit(temperature, tint, warnings, unsupported)


def monochrome_from_lightroom(key: str, value: object) -> float | None:
    """1.0 / 0.0 for ``ConvertToGrayscale`` (True / False) and ``Treatment`` ("Black & White", "Monochrome" /
    "Color"); None when the value is not one of those."""
    if key == "Treatment":
        v = str(value).strip().lower().replace("&", "and")
        if v in ("black and white", "blackandwhite", "monochrome", "grayscale", "greyscale", "bw", "b/w"):
            return 1.0
        return 0.0 if v in ("color", "colour") else None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return float(value.strip().lower() == "true")
    return None


def _look_name(look: Mapping[str, Any]) -> str:
    name = look.get("Name", "")
    if isinstance(name, list):  # rdf:Alt of language variants
        name = name[0] if name else ""
    return str(name)


@dataclass(frozen=True)
class LookResolution:
    """What a ``Look`` asks for: the profile to render (if its tables are in the file), the B&W treatment its
    parameters set, and the parts that cannot be rendered."""

    profile: Profile | None = None
    monochrome: float | None = None
    warnings: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def profile_from_lightroom(look: object, tables: Mapping[str, Any]) -> LookResolution:
    """Resolve a ``crs:Look`` struct against the ``Table_<fingerprint>`` values in ``tables`` (the same file)."""
    if not isinstance(look, Mapping):
        return LookResolution(unsupported=[f"Look {look!r} (not a profile struct)"])
    name = _look_name(look)
    params = look.get("Parameters") if isinstance(look.get("Parameters"), Mapping) else {}
    amount = _number(look.get("Amount"))
    amount = 1.0 if amount is None else min(max(amount, 0.0), 2.0)
    decoded: dict[str, RGBTable | LookTable] = {}
    missing = []
    for ref in ("LookTable", "RGBTable"):
        fp = params.get(ref)
        if not fp:
            continue
        text = tables.get(f"Table_{fp}")
        if text is None:
            missing.append(f"{ref} {fp}")
            continue
        try:
            decoded[ref] = decode_table(text, f"profile {name!r} {ref}")
        except ProgramError as e:
            missing.append(f"{ref} {fp} ({e})")
    mono = monochrome_from_lightroom("ConvertToGrayscale", params.get("ConvertToGrayscale")) \
        if "ConvertToGrayscale" in params else None
    rest = sorted(k for k in params if k not in ("LookTable", "RGBTable", "RGBTableAmount", "ConvertToGrayscale")
                  and not is_bookkeeping(k) and not is_neutral(k, params[k]))
    warnings, unsupported = [], []
    if missing:
        unsupported.append(f"profile {name!r}: its table data is not in the file ({', '.join(missing)}); rendered "
                           "without the profile's look")
    if rest:
        unsupported.append(f"profile {name!r}: its own settings {rest} are not applied")
    look_t, rgb_t = decoded.get("LookTable"), decoded.get("RGBTable")
    if isinstance(look_t, RGBTable) or isinstance(rgb_t, LookTable):
        unsupported.append(f"profile {name!r}: a table of the wrong kind is referenced; profile not applied")
        look_t = rgb_t = None
    prof = None
    if look_t is not None or rgb_t is not None:
        rgb_amount = _number(params.get("RGBTableAmount"))
        prof = Profile(name, amount, look_t, rgb_t, 1.0 if rgb_amount is None else min(max(rgb_amount, 0.0), 2.0))
    return LookResolution(prof, mono, warnings, unsupported)
