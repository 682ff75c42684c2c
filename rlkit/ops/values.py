"""Slider values as programs accept them: numbers from text, range checks, and the notes clamp mode writes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ProgramError
from .params import PARAM_SPECS

__all__ = ["ClampNote", "as_number", "check_param", "ZERO_EPS"]


@dataclass(frozen=True)
class ClampNote:
    """One value that clamp mode changed: where (op/param), the value given and the value used."""

    where: str
    given: float
    used: float
    lo: float
    hi: float

    def __str__(self) -> str:
        return f"{self.where}: {self.given:g} clamped to {self.used:g} (range [{self.lo:g}, {self.hi:g}])"


def as_number(where: str, value: object) -> float:
    """``value`` as a finite float (numbers, or numeric strings with an optional ``%``); else ProgramError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value.strip().rstrip("%"))
            except ValueError:
                raise ProgramError(f"{where}: expected a number, got {value!r}") from None
        else:
            raise ProgramError(f"{where}: expected a number, got {value!r}")
    try:
        v = float(value)
    except OverflowError:
        raise ProgramError(f"{where}: value {value!r} is too large") from None
    if not math.isfinite(v):
        raise ProgramError(f"{where}: value must be finite, got {value!r}")
    return v


#: Slider values closer to zero than this are exactly zero (sliders are meaningful to a few decimals).
ZERO_EPS = 1e-9


def check_param(op: str, name: str, value: object, clamp: bool, notes: list[ClampNote] | None,
                 local: bool = False) -> float:
    """``value`` for slider ``name`` checked against its range (a local offset may span the range either way);
    out of range: ProgramError, or with ``clamp`` the clamped value and a :class:`ClampNote` in ``notes``."""
    spec = PARAM_SPECS[name]
    where = f"{op}: parameter '{name}'"
    v = as_number(where, value)
    if abs(v) < ZERO_EPS:  # below any slider's meaning; a denormal would not survive a rescale to Lightroom's
        v = 0.0            # -1..+1 local scale, so a round trip could silently drop the adjustment
    lo, hi = spec.lo, spec.hi
    if local:  # a local offset may span the whole range in either direction
        lo, hi = -(spec.hi - spec.lo), spec.hi - spec.lo
    if not lo <= v <= hi:
        if not clamp:
            lr = f" (Lightroom '{spec.lightroom}')" if spec.lightroom else ""
            raise ProgramError(f"{where}{lr} = {v:g} is outside the allowed range [{lo:g}, {hi:g}]")
        used = min(max(v, lo), hi)
        if notes is not None:
            notes.append(ClampNote(f"{op}.{name}", v, used, lo, hi))
        v = used
    return v
