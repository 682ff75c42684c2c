"""Templated retouching instructions from an edit program, in three variants (standard, detailed, terse).

RetouchIQ pairs every training image with three instruction variants that differ in length and
complexity; the synthetic RetouchEval builder derives them from the hidden program's main adjustments.
"""

from __future__ import annotations

from rlkit.ops import PARAM_SPECS

__all__ = ["instructions_for", "main_adjustments"]

# name -> (positive, negative) phrase triples: (standard, detailed with {v}, terse)
_PHRASES: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "exposure": (("brighten the image", "raise the exposure by about {v:+.1f} EV", "brighter"),
                 ("darken the image", "lower the exposure by about {v:+.1f} EV", "darker")),
    "contrast": (("add contrast", "increase contrast ({v:+.0f})", "more contrast"),
                 ("soften the contrast", "reduce contrast ({v:+.0f})", "flatter")),
    "highlights": (("brighten the highlights", "raise highlights ({v:+.0f})", "brighter highlights"),
                   ("recover the highlights", "pull the highlights down ({v:+.0f})", "recover highlights")),
    "shadows": (("lift the shadows", "open up the shadows ({v:+.0f})", "lift shadows"),
                ("deepen the shadows", "darken the shadows ({v:+.0f})", "deeper shadows")),
    "whites": (("brighten the whites", "raise the whites ({v:+.0f})", "brighter whites"),
               ("tame the whites", "lower the whites ({v:+.0f})", "lower whites")),
    "blacks": (("lift the blacks for a faded look", "raise the black point ({v:+.0f})", "faded blacks"),
               ("deepen the blacks", "lower the black point ({v:+.0f})", "deeper blacks")),
    "temperature": (("warm it up", "warm the white balance (temperature {v:+.0f})", "warmer"),
                    ("cool it down", "cool the white balance (temperature {v:+.0f})", "cooler")),
    "tint": (("shift the tint toward magenta", "move the tint toward magenta ({v:+.0f})", "more magenta"),
             ("shift the tint toward green", "move the tint toward green ({v:+.0f})", "greener")),
    "vibrance": (("make the colours more vibrant", "boost vibrance ({v:+.0f})", "more vibrant"),
                 ("mute the colours", "reduce vibrance ({v:+.0f})", "muted")),
    "saturation": (("saturate the colours", "increase saturation ({v:+.0f})", "more saturated"),
                   ("desaturate the colours", "reduce saturation ({v:+.0f})", "less saturated")),
    "clarity": (("add clarity", "increase clarity ({v:+.0f})", "crisper"),
                ("soften the midtone detail", "reduce clarity ({v:+.0f})", "softer")),
    "texture": (("bring out fine texture", "increase texture ({v:+.0f})", "more texture"),
                ("smooth fine texture", "reduce texture ({v:+.0f})", "smoother")),
    "dehaze": (("cut through the haze", "dehaze ({v:+.0f})", "less haze"),
               ("add a hazy glow", "add haze ({v:+.0f})", "hazier")),
    "vignette_amount": (("add a light vignette", "lighten the corners (vignette {v:+.0f})", "light vignette"),
                        ("add a dark vignette", "darken the corners (vignette {v:+.0f})", "vignette")),
    "grain_amount": (("add film grain", "add grain ({v:.0f})", "grain"), ("", "", "")),
    "sharpening": (("sharpen the details", "sharpen ({v:.0f})", "sharper"), ("", "", "")),
    "noise_reduction": (("reduce the noise", "apply noise reduction ({v:.0f})", "less noise"), ("", "", "")),
}


def main_adjustments(params: dict[str, float], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` largest slider changes that have phrases, by |value| relative to the slider's scale."""
    scored = []
    for name, v in params.items():
        if name not in _PHRASES:
            continue
        spec = PARAM_SPECS[name]
        scored.append((abs(v - spec.default) / (spec.hi - spec.lo), name, v))
    scored.sort(reverse=True)
    return [(n, v) for _, n, v in scored[:k]]


def _join(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def instructions_for(params: dict[str, float], *, intent: str = "", where: str = "", k: int = 3) -> list[str]:
    """[standard, detailed, terse] instructions for a slider dict; ``intent`` prefixes, ``where`` localises.

    ``where`` is a prepositional phrase such as ``"at the top of the frame"``.

    Adjustments are ordered by size relative to their slider range. E.g. ``{"exposure": 1.5, "temperature": 25}``
    -> ``["Brighten the image and warm it up.", "Raise the exposure by about +1.5 EV and warm the white
    balance (temperature +25); keep everything else natural.", "brighter, warmer"]``.
    """
    adj = main_adjustments(params, k)
    if not adj:
        raise ValueError("instructions_for: no adjustment with a known phrase in the program")
    std, det, terse = [], [], []
    for name, v in adj:
        pos, neg = _PHRASES[name]
        s, d, t = pos if v >= 0 else neg
        std.append(s)
        det.append(d.format(v=v))
        terse.append(t)
    prefix = f"{intent}: " if intent else ""
    if where:  # a local edit: say where first, e.g. "Only at the top of the frame: darken the image."
        prefix = f"{prefix}only {where}: " if prefix else f"Only {where}: "
    standard = _cap(prefix + _join(std)) + "."
    detailed = _cap(prefix + _join(det)) + ("; leave the rest of the image unchanged." if where
                                             else "; keep everything else natural.")
    short = ", ".join(terse) + (f" ({where})" if where else "")
    return [standard, detailed, short]
