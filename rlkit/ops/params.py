"""Parameter table of the retouch engine: canonical names, ranges, defaults, Lightroom aliases.

Every global scalar slider of an :class:`~rlkit.ops.program.EditProgram` is described by one
:class:`ParamSpec`. Names are snake_case; ``lightroom`` is the Adobe Camera Raw / Lightroom develop
key (``crs:`` namespace in XMP) that carries the same meaning, or ``None`` when there is none.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "ParamSpec",
    "PARAM_SPECS",
    "LOCAL_PARAMS",
    "HSL_BANDS",
    "HSL_BAND_HUES",
    "LIGHTROOM_ALIASES",
    "CURVE_CHANNELS",
    "CURVE_LIGHTROOM",
    "canonical_name",
    "LIGHTROOM_OTHER_KEYS",
    "kelvin_to_incremental",
    "incremental_to_kelvin",
]


@dataclass(frozen=True)
class ParamSpec:
    """One global slider: canonical name, default, inclusive range [lo, hi], Lightroom key, meaning."""

    name: str
    default: float
    lo: float
    hi: float
    lightroom: str | None
    doc: str
    group: str = "basic"

    def contains(self, value: float) -> bool:
        """True if ``value`` lies in the allowed range."""
        return self.lo <= value <= self.hi


HSL_BANDS: tuple[str, ...] = ("red", "orange", "yellow", "green", "aqua", "blue", "purple", "magenta")
#: centre hue (degrees, on the display-encoded image) of each HSL band
HSL_BAND_HUES: Mapping[str, float] = MappingProxyType(
    {"red": 0.0, "orange": 30.0, "yellow": 60.0, "green": 120.0, "aqua": 180.0, "blue": 240.0,
     "purple": 270.0, "magenta": 300.0}
)

_SPECS: list[ParamSpec] = [
    ParamSpec("exposure", 0.0, -5.0, 5.0, "Exposure2012", "Exposure in EV stops: +1 doubles linear light."),
    ParamSpec("contrast", 0.0, -100.0, 100.0, "Contrast2012",
              "S-curve around mid grey; black and white points stay fixed."),
    ParamSpec("highlights", 0.0, -100.0, 100.0, "Highlights2012",
              "Brightens (+) or recovers (-) the bright tones, including values pushed past white."),
    ParamSpec("shadows", 0.0, -100.0, 100.0, "Shadows2012", "Lifts (+) or deepens (-) the dark tones."),
    ParamSpec("whites", 0.0, -100.0, 100.0, "Whites2012", "Moves the white end of the tonal range."),
    ParamSpec("blacks", 0.0, -100.0, 100.0, "Blacks2012", "Moves the black end of the tonal range."),
    ParamSpec("temperature", 0.0, -100.0, 100.0, "IncrementalTemperature",
              "White balance blue (-) to yellow (+); +100 is about one stop of R/B ratio."),
    ParamSpec("tint", 0.0, -100.0, 100.0, "IncrementalTint", "White balance green (-) to magenta (+)."),
    ParamSpec("vibrance", 0.0, -100.0, 100.0, "Vibrance",
              "Saturation that acts most on the least saturated colours."),
    ParamSpec("saturation", 0.0, -100.0, 100.0, "Saturation",
              "Scales chroma around luminance; -100 gives grey equal to the luminance."),
    ParamSpec("texture", 0.0, -100.0, 100.0, "Texture", "Fine-detail contrast (small-radius).", "detail"),
    ParamSpec("clarity", 0.0, -100.0, 100.0, "Clarity2012", "Mid-tone local contrast (medium radius).",
              "detail"),
    ParamSpec("dehaze", 0.0, -100.0, 100.0, "Dehaze", "Removes (+) or adds (-) atmospheric haze.", "detail"),
    ParamSpec("sharpening", 0.0, 0.0, 150.0, "Sharpness", "Unsharp-mask amount on luminance.", "detail"),
    ParamSpec("sharpen_radius", 1.0, 0.5, 3.0, "SharpenRadius", "Unsharp-mask radius in pixels.", "detail"),
    ParamSpec("noise_reduction", 0.0, 0.0, 100.0, "LuminanceSmoothing",
              "Luminance noise reduction (blends towards a blurred luminance).", "detail"),
    ParamSpec("vignette_amount", 0.0, -100.0, 100.0, "PostCropVignetteAmount",
              "Darkens (-) or brightens (+) the frame edges.", "effects"),
    ParamSpec("vignette_midpoint", 50.0, 0.0, 100.0, "PostCropVignetteMidpoint",
              "How far from the centre the vignette starts.", "effects"),
    ParamSpec("vignette_feather", 50.0, 0.0, 100.0, "PostCropVignetteFeather",
              "Softness of the vignette transition.", "effects"),
    ParamSpec("grain_amount", 0.0, 0.0, 100.0, "GrainAmount", "Seeded film-grain strength.", "effects"),
    ParamSpec("grain_size", 25.0, 0.0, 100.0, "GrainSize", "Grain particle size.", "effects"),
    ParamSpec("tone_shadows", 0.0, -100.0, 100.0, "ParametricShadows",
              "Parametric curve: shadows region.", "tone_curve"),
    ParamSpec("tone_darks", 0.0, -100.0, 100.0, "ParametricDarks", "Parametric curve: darks region.",
              "tone_curve"),
    ParamSpec("tone_lights", 0.0, -100.0, 100.0, "ParametricLights", "Parametric curve: lights region.",
              "tone_curve"),
    ParamSpec("tone_highlights", 0.0, -100.0, 100.0, "ParametricHighlights",
              "Parametric curve: highlights region.", "tone_curve"),
    ParamSpec("tone_shadow_split", 25.0, 10.0, 50.0, "ParametricShadowSplit",
              "Boundary between shadows and darks (percent).", "tone_curve"),
    ParamSpec("tone_midtone_split", 50.0, 25.0, 75.0, "ParametricMidtoneSplit",
              "Boundary between darks and lights (percent).", "tone_curve"),
    ParamSpec("tone_highlight_split", 75.0, 50.0, 90.0, "ParametricHighlightSplit",
              "Boundary between lights and highlights (percent).", "tone_curve"),
]

#: per band: (kind, Lightroom key prefix, meaning); one slider each of hue, saturation, luminance per band
_HSL_KINDS = (
    ("hue", "HueAdjustment", "Rotates the hue of {band} colours (+: towards higher hue angle, 30 deg at +-100 in "
                             "linear light, about 34-39 deg as displayed)."),
    ("saturation", "SaturationAdjustment", "Scales the chroma of {band} colours."),
    ("luminance", "LuminanceAdjustment", "Brightens or darkens {band} colours (at most one stop)."),
)
_SPECS += [ParamSpec(f"hsl_{kind}_{band}", 0.0, -100.0, 100.0, f"{lr}{band.capitalize()}", doc.format(band=band),
                     "hsl") for band in HSL_BANDS for kind, lr, doc in _HSL_KINDS]

#: colour-grading zone -> Lightroom keys of its hue, saturation and luminance (split toning's names where they exist)
_GRADE_LR = {
    "shadow": ("SplitToningShadowHue", "SplitToningShadowSaturation", "ColorGradeShadowLum"),
    "midtone": ("ColorGradeMidtoneHue", "ColorGradeMidtoneSat", "ColorGradeMidtoneLum"),
    "highlight": ("SplitToningHighlightHue", "SplitToningHighlightSaturation", "ColorGradeHighlightLum"),
    "global": ("ColorGradeGlobalHue", "ColorGradeGlobalSat", "ColorGradeGlobalLum"),
}
#: (kind, lo, hi, meaning) of the three colour-grading sliders of a zone
_GRADE_KINDS = (
    ("hue", 0.0, 359.0, "Colour-grading tint hue for {zone}s (deg)."),
    ("saturation", 0.0, 100.0, "Colour-grading tint strength for {zone}s."),
    ("luminance", -100.0, 100.0, "Colour-grading brightness for {zone}s."),
)
_SPECS += [ParamSpec(f"grade_{zone}_{kind}", 0.0, lo, hi, lr, doc.format(zone=zone), "color_grading")
           for zone, lrs in _GRADE_LR.items() for (kind, lo, hi, doc), lr in zip(_GRADE_KINDS, lrs)]
_SPECS += [
    ParamSpec("grade_balance", 0.0, -100.0, 100.0, "SplitToningBalance",
              "Shifts the shadow/highlight split of colour grading (+: more highlights).", "color_grading"),
    ParamSpec("grade_blending", 50.0, 0.0, 100.0, "ColorGradeBlending",
              "Overlap of the colour-grading zones (0 hard, 100 broad).", "color_grading"),
    # detail and effects settings that modify the sliders above (Lightroom's detail / effects panels)
    ParamSpec("noise_reduction_detail", 50.0, 0.0, 100.0, "LuminanceNoiseReductionDetail",
              "Luminance noise reduction: detail kept (+: a smaller blur radius).", "detail"),
    ParamSpec("noise_reduction_contrast", 0.0, 0.0, 100.0, "LuminanceNoiseReductionContrast",
              "Luminance noise reduction: gives back the structured (not pixel-scale) part of what it removes.",
              "detail"),
    ParamSpec("color_noise_reduction", 0.0, 0.0, 100.0, "ColorNoiseReduction",
              "Colour noise reduction (blends chroma towards a blurred chroma; luminance kept).", "detail"),
    ParamSpec("color_noise_reduction_detail", 50.0, 0.0, 100.0, "ColorNoiseReductionDetail",
              "Colour noise reduction: colour detail kept (+: a smaller chroma blur).", "detail"),
    ParamSpec("color_noise_reduction_smoothness", 50.0, 0.0, 100.0, "ColorNoiseReductionSmoothness",
              "Colour noise reduction: smoothness (+: a wider chroma blur for low-frequency blotches).", "detail"),
    ParamSpec("sharpen_detail", 25.0, 0.0, 100.0, "SharpenDetail",
              "Sharpening: below 25 damps strong edges (fewer halos), above 25 boosts fine texture.", "detail"),
    ParamSpec("sharpen_masking", 0.0, 0.0, 100.0, "SharpenEdgeMasking",
              "Sharpening only on edges: flat areas below a gradient threshold are left unsharpened.", "detail"),
    ParamSpec("grain_roughness", 50.0, 0.0, 100.0, "GrainFrequency",
              "Grain roughness: below 50 smoother (wider) grain, above 50 mixes in pixel-fine grain.", "effects"),
    ParamSpec("vignette_roundness", 0.0, -100.0, 100.0, "PostCropVignetteRoundness",
              "Vignette shape: 0 an ellipse fitting the frame, +100 a circle, -100 a rounded rectangle.",
              "effects"),
    ParamSpec("vignette_style", 1.0, 1.0, 3.0, "PostCropVignetteStyle",
              "Vignette style (integer): 1 highlight priority, 2 colour priority, 3 paint overlay.", "effects"),
    ParamSpec("vignette_highlight_contrast", 0.0, 0.0, 100.0, "PostCropVignetteHighlightContrast",
              "Highlight priority vignette: keeps bright tones out of the darkening.", "effects"),
    ParamSpec("monochrome", 0.0, 0.0, 1.0, "ConvertToGrayscale",
              "Black and white treatment: 1 converts to grey through the gray mixer (0..1 blends).",
              "black_white"),
]
#: the 8-band gray mixer of the black and white treatment (Lightroom's GrayMixerRed ... GrayMixerMagenta)
_SPECS += [ParamSpec(f"gray_mix_{band}", 0.0, -100.0, 100.0, f"GrayMixer{band.capitalize()}",
                     f"Black and white: brightens (+) or darkens (-) the grey of {band} colours (at most one "
                     "stop).", "black_white") for band in HSL_BANDS]
#: camera calibration (Lightroom's calibration panel): moves the red / green / blue primaries
_SPECS += [ParamSpec(f"calibration_{c.lower()}_{kind}", 0.0, -100.0, 100.0, f"{c}{kind.capitalize()}", doc,
                     "calibration")
           for c in ("Red", "Green", "Blue")
           for kind, doc in (("hue", f"Rotates the {c.lower()} primary's hue (30 deg at +-100)."),
                             ("saturation", f"Scales the {c.lower()} primary's chroma (x0.5..x1.5)."))]
_SPECS += [ParamSpec("calibration_shadow_tint", 0.0, -100.0, 100.0, "ShadowTint",
                     "Calibration: shadows towards green (-) or magenta (+).", "calibration")]

PARAM_SPECS: Mapping[str, ParamSpec] = MappingProxyType({s.name: s for s in _SPECS})

#: parameters a local adjustment may carry (they add to the global values per pixel)
LOCAL_PARAMS: tuple[str, ...] = (
    "exposure", "contrast", "highlights", "shadows", "whites", "blacks", "temperature", "tint",
    "vibrance", "saturation", "texture", "clarity", "dehaze", "sharpening", "noise_reduction",
)

CURVE_CHANNELS: tuple[str, ...] = ("master", "red", "green", "blue")
CURVE_LIGHTROOM: Mapping[str, str] = MappingProxyType(
    {"master": "ToneCurvePV2012", "red": "ToneCurvePV2012Red", "green": "ToneCurvePV2012Green",
     "blue": "ToneCurvePV2012Blue"}
)


def _norm_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_alias: dict[str, str] = {}
for _s in _SPECS:
    _alias[_norm_key(_s.name)] = _s.name
    if _s.lightroom:
        _alias[_norm_key(_s.lightroom)] = _s.name
# Lightroom names without the process-version suffix, and a few common spellings
for _s in _SPECS:
    if _s.lightroom and _s.lightroom.endswith("2012"):
        _alias.setdefault(_norm_key(_s.lightroom[:-4]), _s.name)
_alias.update({
    _norm_key(k): v for k, v in {
        "Tint": "tint", "Temp": "temperature", "WhiteBalance": "temperature", "Sharpen": "sharpening",
        "SharpenAmount": "sharpening", "Grain": "grain_amount", "Vignette": "vignette_amount",
        "NoiseReduction": "noise_reduction", "LuminanceNoiseReduction": "noise_reduction",
        "SplitToningShadowLum": "grade_shadow_luminance", "SplitToningHighlightLum": "grade_highlight_luminance",
        "ColorGradeShadowHue": "grade_shadow_hue", "ColorGradeShadowSat": "grade_shadow_saturation",
        "ColorGradeHighlightHue": "grade_highlight_hue", "ColorGradeHighlightSat": "grade_highlight_saturation",
    }.items()
})
for _band in HSL_BANDS:
    for _kind in ("hue", "saturation", "luminance"):
        _alias[_norm_key(f"hsl_{_band}_{_kind}")] = f"hsl_{_kind}_{_band}"
        _alias[_norm_key(f"{_band}_{_kind}")] = f"hsl_{_kind}_{_band}"

#: normalised spelling (lower case, alphanumerics only) -> canonical name
LIGHTROOM_ALIASES: Mapping[str, str] = MappingProxyType(_alias)


#: Lightroom keys, in Lightroom's own spelling, whose normalised form collides with one of our aliases but which
#: mean something else: lens-correction vignetting (``VignetteAmount`` is not the post-crop ``vignette_amount``).
#: rlkit has no equivalent: they are not aliases.
LIGHTROOM_OTHER_KEYS: frozenset[str] = frozenset(["VignetteAmount", "VignetteMidpoint"])

#: Lightroom keys in Lightroom's exact spelling whose normalised form is also one of our snake_case aliases:
#: calibration's ``RedHue`` (``calibration_red_hue``) against ``red_hue`` (``hsl_hue_red``)
_EXACT_LIGHTROOM = {s.lightroom: s.name for s in _SPECS if s.lightroom and s.group == "calibration"}


def canonical_name(name: str) -> str | None:
    """Map a canonical, Lightroom or common alias spelling (any case, ``_``/``-``/spaces) to the canonical name.

    Lightroom's calibration keys in their exact spelling (with or without ``crs:``) come first: ``RedHue`` is
    ``calibration_red_hue``, while ``red_hue`` stays an alias of ``hsl_hue_red``. None for unknown names and for
    :data:`LIGHTROOM_OTHER_KEYS` (lens vignetting).
    """
    if not isinstance(name, str):
        return None
    return _canonical_str(name)


@functools.lru_cache(maxsize=4096)  # parsers ask once per operation of every completion; the answer never changes
def _canonical_str(name: str) -> str | None:
    bare = name.removeprefix("crs:")
    if bare in LIGHTROOM_OTHER_KEYS:
        return None
    return _EXACT_LIGHTROOM.get(bare) or LIGHTROOM_ALIASES.get(_norm_key(name))


# Lightroom's absolute white balance (raw files: Temperature in Kelvin, Tint) is read relative to the photo's
# as-shot values: the temperature edit is the mired difference, 150 mired == 100 on our incremental scale
# (documented approximation), and the tint edit the tint difference (one Lightroom tint unit == one of ours).
# Without as-shot values, 5500 K and tint 0 are assumed (and said so on import).
KELVIN_REFERENCE = 5500.0
MIRED_PER_100 = 150.0


def kelvin_to_incremental(kelvin: float, as_shot: float = KELVIN_REFERENCE) -> float:
    """The incremental ``temperature`` edit (unclamped) that takes a photo shot at ``as_shot`` K to ``kelvin``."""
    return (1e6 / as_shot - 1e6 / kelvin) * 100.0 / MIRED_PER_100


def incremental_to_kelvin(temperature: float, as_shot: float = KELVIN_REFERENCE) -> float:
    """Inverse of :func:`kelvin_to_incremental`: the absolute Temperature (K) Lightroom writes for a raw file."""
    return 1e6 / (1e6 / as_shot - temperature * MIRED_PER_100 / 100.0)
