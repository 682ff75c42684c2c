"""Errors raised by the retouch engine."""

from __future__ import annotations

__all__ = ["ProgramError"]


class ProgramError(ValueError):
    """An invalid edit program; the message names the op, parameter, value and allowed range."""
