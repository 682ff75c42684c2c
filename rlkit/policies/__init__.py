"""Agents' output parsers and policies (the diagnosis parser for reasoning agents lives here)."""

from rlkit.policies.diagnosis import (
    Diagnosis,
    DiagnosisParse,
    DiagnosisProblem,
    normalize_flaw_type,
    parse_diagnosis,
)

__all__ = ["Diagnosis", "DiagnosisParse", "DiagnosisProblem", "normalize_flaw_type", "parse_diagnosis"]
