"""Typed edit programs: validated global sliders, point tone curves and local adjustments under masks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ProgramError
from .lightroom import corrections_from_lightroom
from .lightroom_keys import (
    TABLE_KEY,
    WHITE_BALANCE_KEYS,
    is_bookkeeping,
    monochrome_from_lightroom,
    profile_from_lightroom,
    white_balance_from_lightroom,
)
from .local import LocalAdjustment, mask_clamps
from .params import CURVE_CHANNELS, CURVE_LIGHTROOM, LIGHTROOM_OTHER_KEYS, PARAM_SPECS, canonical_name
from .profiles import Profile
from .values import ClampNote, as_number, check_param

__all__ = ["EditProgram", "LocalAdjustment", "ClampNote", "validate_curve"]

Curve = tuple[tuple[float, float], ...]

_CURVE_ALIASES = {"master": "master", "rgb": "master", "luma": "master", "red": "red", "r": "red",
                  "green": "green", "g": "green", "blue": "blue", "b": "blue"}
for _ch, _lr in CURVE_LIGHTROOM.items():
    _CURVE_ALIASES[_lr.lower()] = _ch
    _CURVE_ALIASES[f"tone_curve_{_ch}"] = _ch


def validate_curve(points: object, *, where: str = "tone curve", clamp: bool = False,
                   notes: list[ClampNote] | None = None) -> Curve:
    """Check a point curve: >= 2 points (x, y) in 0..255 with strictly increasing x; accepts [[x,y],..], flat
    [x0,y0,x1,y1,..] or "x, y" strings (XMP form). ``clamp=True`` clamps coordinates into 0..255 (noted)."""
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
        raise ProgramError(f"{where}: expected a list of [x, y] points, got {type(points).__name__}")
    pts: list[tuple[float, float]] = []
    items = list(points)
    if items and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        if len(items) % 2:
            raise ProgramError(f"{where}: a flat point list needs an even number of values, got {len(items)}")
        items = [items[i:i + 2] for i in range(0, len(items), 2)]
    for i, p in enumerate(items):
        if isinstance(p, str):
            p = [s for s in p.replace(",", " ").split() if s]
        if not isinstance(p, Sequence) or len(p) != 2:
            raise ProgramError(f"{where}: point {i} must be [x, y], got {p!r}")
        x = as_number(f"{where} point {i} x", p[0])
        y = as_number(f"{where} point {i} y", p[1])
        for nm, v in (("x", x), ("y", y)):
            if not 0.0 <= v <= 255.0:
                if not clamp:
                    raise ProgramError(f"{where}: point {i} {nm}={v:g} is outside the allowed range [0, 255]")
                if notes is not None:
                    notes.append(ClampNote(f"{where}: point {i} {nm}", v, min(max(v, 0.0), 255.0), 0.0, 255.0))
        pts.append((min(max(x, 0.0), 255.0), min(max(y, 0.0), 255.0)))
    if len(pts) < 2:
        raise ProgramError(f"{where}: needs at least 2 points, got {len(pts)}")
    if len(pts) > 64:
        raise ProgramError(f"{where}: at most 64 points, got {len(pts)}")
    for i in range(1, len(pts)):
        if pts[i][0] <= pts[i - 1][0]:
            raise ProgramError(f"{where}: x must increase strictly, point {i} has x={pts[i][0]:g} "
                               f"after x={pts[i - 1][0]:g}")
    return tuple(pts)


def _is_identity_curve(c: Curve) -> bool:
    return all(abs(x - y) < 1e-9 for x, y in c)


@dataclass(frozen=True)
class EditProgram:
    """A retouch: non-default global sliders (canonical names), point tone curves, local adjustments and an
    optional Lightroom profile (:class:`~rlkit.ops.profiles.Profile`, from an imported sidecar or preset).

    ``EditProgram()`` is the identity. Construction validates everything; build from text or dicts with
    :meth:`from_dict` (accepts Lightroom names) or :func:`rlkit.ops.parse_program`.
    """

    params: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict)
    local: list[LocalAdjustment] = field(default_factory=list)
    profile: Profile | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.params, Mapping):
            raise ProgramError(f"program: 'params' must be a mapping, got {type(self.params).__name__}")
        clean: dict[str, float] = {}
        for k, v in self.params.items():
            if k not in PARAM_SPECS:
                alias = canonical_name(k) if isinstance(k, str) else None
                hint = f" (did you mean '{alias}'? use EditProgram.from_dict for aliases)" if alias else ""
                raise ProgramError(f"program: unknown parameter {k!r}{hint}")
            val = check_param("program", k, v, clamp=False, notes=None)
            if val != PARAM_SPECS[k].default:
                clean[k] = val
        object.__setattr__(self, "params", dict(sorted(clean.items())))
        if not isinstance(self.curves, Mapping):
            raise ProgramError("program: 'curves' must map channel -> points")
        curves: dict[str, Curve] = {}
        for ch, pts in self.curves.items():
            if ch not in CURVE_CHANNELS:
                raise ProgramError(f"program: unknown tone-curve channel {ch!r}; expected one of {list(CURVE_CHANNELS)}")
            c = validate_curve(pts, where=f"tone curve '{ch}'")
            if not _is_identity_curve(c):
                curves[ch] = c
        object.__setattr__(self, "curves", curves)
        if isinstance(self.local, (str, bytes, Mapping)) or not isinstance(self.local, Sequence):
            raise ProgramError("program: 'local' must be a list of local adjustments")
        loc = []
        for i, la in enumerate(self.local):
            if isinstance(la, Mapping):
                la = LocalAdjustment.from_dict(la, where=f"local[{i}]")
            if not isinstance(la, LocalAdjustment):
                raise ProgramError(f"program: local[{i}] must be a LocalAdjustment, got {type(la).__name__}")
            if la.params:
                loc.append(la)
        object.__setattr__(self, "local", loc)
        if self.profile is not None and not isinstance(self.profile, Profile):
            object.__setattr__(self, "profile", Profile.from_dict(self.profile))

    # -- identity / equality helpers
    def is_identity(self) -> bool:
        """True when the program changes nothing (no non-default slider, curve, local adjustment or profile)."""
        return not self.params and not self.curves and not self.local and self.profile is None

    def get(self, name: str) -> float:
        """Value of a global slider (its default when not set)."""
        if name not in PARAM_SPECS:
            raise KeyError(f"unknown parameter {name!r}")
        return self.params.get(name, PARAM_SPECS[name].default)

    def replace(self, **params: float) -> EditProgram:
        """A copy with some global sliders changed (canonical names)."""
        return EditProgram({**self.params, **params}, self.curves, self.local, self.profile)

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    # -- dict forms
    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able dict: flat snake_case sliders, plus ``tone_curve``, ``local`` and ``profile`` (its
        tables as Camera Raw table text) when present."""
        d: dict[str, Any] = dict(self.params)
        if self.curves:
            d["tone_curve"] = {ch: [list(p) for p in c] for ch, c in self.curves.items()}
        if self.local:
            d["local"] = [la.to_dict() for la in self.local]
        if self.profile is not None:
            d["profile"] = self.profile.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, clamp: bool = False, notes: list[ClampNote] | None = None,
                  warnings: list[str] | None = None, unsupported: list[str] | None = None) -> EditProgram:
        """Build from canonical or Lightroom keys. Invalid -> :class:`ProgramError` naming op/param/value/range.

        With ``clamp=True`` out-of-range values are clamped instead, and each clamp is appended to ``notes``
        (pass a list to receive the report). Lightroom's white balance is read relative to the as-shot values
        (:mod:`rlkit.ops.lightroom_keys`), ``Treatment`` / ``ConvertToGrayscale`` set ``monochrome``, and a
        ``Look`` whose tables are in the dict (``Table_<fingerprint>``) becomes the program's profile. What had to
        be assumed is appended to ``warnings``, what cannot be rendered (a profile without its tables, auto white
        balance) to ``unsupported`` (to ``warnings`` when no ``unsupported`` list is given); with neither list, a
        ``Look`` that cannot be rendered is an error.
        """
        if not isinstance(d, Mapping):
            raise ProgramError(f"program: expected an object of parameters, got {type(d).__name__}")
        params: dict[str, float] = {}
        curves: dict[str, Any] = {}
        local: list[LocalAdjustment] = []
        profile: Profile | None = None
        items = list(d.items())
        if "params" in d and isinstance(d["params"], Mapping):  # nested form {"params": {...}, ...}
            items = [(k, v) for k, v in items if k != "params"] + list(d["params"].items())
        flat = dict(items)
        wb = white_balance_from_lightroom(flat) if WHITE_BALANCE_KEYS & set(flat) - {"Temperature"} \
            or _is_kelvin(flat.get("Temperature")) else None
        if wb is not None:
            _report(warnings, wb.warnings)
            _report(unsupported if unsupported is not None else warnings, wb.unsupported)
            for name, v in (("temperature", wb.temperature), ("tint", wb.tint)):
                if v is not None:
                    params[name] = check_param("program", name, v, True, notes)
        for key, value in items:
            if not isinstance(key, str):
                raise ProgramError(f"program: parameter names must be strings, got {key!r}")
            low = key.lower()
            if low in ("tone_curve", "tone_curves", "curves"):
                if not isinstance(value, Mapping):
                    raise ProgramError(f"program: '{key}' must map channel -> points")
                for ch, pts in value.items():
                    cname = _CURVE_ALIASES.get(str(ch).lower())
                    if cname is None:
                        raise ProgramError(f"program: unknown tone-curve channel {ch!r}; expected {list(CURVE_CHANNELS)}")
                    curves[cname] = validate_curve(pts, where=f"tone curve '{cname}'", clamp=clamp, notes=notes)
                continue
            if low in _CURVE_ALIASES and low.startswith(("tonecurve", "tone_curve_")):
                curves[_CURVE_ALIASES[low]] = validate_curve(value, where=f"tone curve '{key}'", clamp=clamp,
                                                             notes=notes)
                continue
            if low in ("local", "local_adjustments"):
                if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
                    raise ProgramError(f"program: '{key}' must be a list of {{mask, params}} objects")
                for i, la in enumerate(value):
                    local.append(LocalAdjustment.from_dict(la, clamp=clamp, notes=notes, where=f"local[{i}]"))
                continue
            if low in ("maskgroupbasedcorrections", "corrections"):
                with mask_clamps(clamp, notes, key):
                    local.extend(corrections_from_lightroom(value, clamp=clamp, notes=notes))
                continue
            if wb is not None and key in WHITE_BALANCE_KEYS:
                continue  # resolved above, relative to the as-shot values
            if low == "profile":
                profile = Profile.from_dict(value) if value is not None else None
                continue
            if key == "Look":
                look = profile_from_lightroom(value, {k: v for k, v in flat.items() if TABLE_KEY.fullmatch(k)})
                sink = unsupported if unsupported is not None else warnings
                if look.unsupported and sink is None:
                    raise ProgramError(f"program: {'; '.join(look.unsupported)}")
                _report(warnings, look.warnings)
                _report(sink, look.unsupported)
                profile = look.profile or profile
                if look.monochrome is not None:
                    params["monochrome"] = max(params.get("monochrome", 0.0), look.monochrome)
                continue
            if key in ("Treatment", "ConvertToGrayscale"):
                mono = monochrome_from_lightroom(key, value)
                if mono is None:
                    raise ProgramError(f"program: {key}={value!r} is not a Lightroom treatment (Color or Black & "
                                       "White)" if key == "Treatment" else f"program: {key} must be True or False, "
                                       f"got {value!r}")
                params["monochrome"] = max(params.get("monochrome", 0.0), mono) if key == "Treatment" else mono
                continue
            if is_bookkeeping(key.removeprefix("crs:")):
                continue  # Lightroom bookkeeping keys with no effect on the edit
            name = canonical_name(key)
            if name is None:
                if key.removeprefix("crs:") in LIGHTROOM_OTHER_KEYS:
                    raise ProgramError(f"program: {key!r} is a Lightroom lens-correction setting, which rlkit does "
                                       "not model (the post-crop vignette slider is PostCropVignetteAmount)")
                raise ProgramError(f"program: unknown parameter {key!r}")
            params[name] = check_param("program", name, value, clamp, notes)
        return cls(params, curves, local, profile)

    def __repr__(self) -> str:
        parts = [f"{k}={v:g}" for k, v in self.params.items()]
        if self.curves:
            parts.append(f"curves={sorted(self.curves)}")
        if self.local:
            parts.append(f"local={len(self.local)}")
        if self.profile is not None:
            parts.append(f"profile={self.profile.name!r}")
        return f"EditProgram({', '.join(parts)})"


def _is_kelvin(v: object) -> bool:
    """A Lightroom absolute Temperature (raw files), as opposed to our incremental slider value."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 1500 <= v <= 50000


def _report(warnings: list[str] | None, messages: list[str]) -> None:
    """Append ``messages`` to ``warnings`` when the caller asked for them."""
    if warnings is not None:
        warnings.extend(messages)
