"""The agents' chat prompts, and rlkit dataset rows turned into trl's conversational SFT and GRPO rows.

Retoucher rows need ``image`` (or ``source_image``), ``instruction`` and, for SFT, the expert ``program``
(an ``EditProgram``, a program dict, or program text) with optional ``reasoning``; ``target_image`` is kept
for the image rewards. Reasoner rows need ``image``, the reference flaws in ``reference_diagnosis``
(JSON text or a list of ``{"flaw_type", "description"}``) and optional region ``boxes``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rlkit.ops import EditProgram, parse_program, render_program
from rlkit.policies.diagnosis import parse_diagnosis

__all__ = [
    "RETOUCHER_SYSTEM_PROMPT",
    "REASONER_SYSTEM_PROMPT",
    "DatasetColumnError",
    "retoucher_prompt",
    "retoucher_completion",
    "retoucher_rows",
    "reasoner_prompt",
    "reasoner_completion",
    "reasoner_rows",
]

RETOUCHER_SYSTEM_PROMPT = (
    "You are a photo retoucher. Think briefly about the photo and the request, then answer with an edit "
    "program such as {exposure=+0.5; contrast=+10}."
)
REASONER_SYSTEM_PROMPT = (
    "You diagnose flaws in generated images. For each marked region answer with a JSON list "
    '[{"flaw_type": ..., "description": ...}].'
)


class DatasetColumnError(KeyError):
    """A dataset row lacks a column a recipe needs; the message names the row and the columns it has."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def _get(row: Mapping[str, object], names: Sequence[str], index: int, what: str) -> object:
    for n in names:
        if n in row and row[n] is not None:
            return row[n]
    raise DatasetColumnError(f"row {index}: no {what} column (looked for {list(names)}; row has {sorted(row)})")


def _user(image: bool, text: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image"}] if image else []
    content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def _system(text: str | None) -> list[dict[str, Any]]:
    return [{"role": "system", "content": [{"type": "text", "text": text}]}] if text else []


def retoucher_prompt(instruction: str, *, system_prompt: str | None = RETOUCHER_SYSTEM_PROMPT,
                     image: bool = True) -> list[dict[str, Any]]:
    """Chat prompt of the RetouchIQ policy: (system,) user = [image, instruction]."""
    return [*_system(system_prompt), _user(image, str(instruction))]


def retoucher_completion(program: EditProgram | Mapping[str, object] | str, *, fmt: str = "retouchiq", reasoning: str | None = None,
                         where: str = "program") -> str:
    """Target text of the policy: reasoning, then the program rendered in ``fmt`` (round-trips the parser)."""
    if isinstance(program, str):
        parsed = parse_program(program, "auto")
        if parsed.program is None:
            reason = parsed.problems[0] if parsed.problems else "no program found"
            raise ValueError(f"{where}: expert program text does not parse ({reason})")
        program = parsed.program
    elif isinstance(program, Mapping):
        program = EditProgram.from_dict(dict(program))
    elif not isinstance(program, EditProgram):
        raise TypeError(f"{where}: expected an EditProgram, a dict or program text, got {type(program).__name__}")
    return render_program(program, fmt, reasoning=(reasoning or "").strip())


def retoucher_rows(rows: Sequence[Mapping[str, object]], *, stage: str, fmt: str = "retouchiq",
                   system_prompt: str | None = RETOUCHER_SYSTEM_PROMPT) -> list[dict[str, object]]:
    """SFT rows (``prompt``, ``completion``, ``image``) or GRPO rows (``prompt``, ``image`` + reward columns)."""
    if stage not in ("sft", "grpo"):
        raise ValueError(f"stage must be 'sft' or 'grpo', got {stage!r}")
    out = []
    for i, row in enumerate(rows):
        image = _get(row, ("image", "source_image"), i, "image")
        instruction = _get(row, ("instruction",), i, "instruction")
        new: dict[str, object] = {"prompt": retoucher_prompt(instruction, system_prompt=system_prompt),
                               "image": image, "instruction": str(instruction)}
        if stage == "sft":
            program = _get(row, ("program", "expert_program"), i, "expert program")
            text = retoucher_completion(program, fmt=fmt, reasoning=row.get("reasoning"), where=f"row {i}")
            new["completion"] = [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
        else:
            for k, v in row.items():
                if k not in ("image", "source_image", "prompt", "completion", "instruction", "reasoning"):
                    new[k] = _jsonable(v)
        out.append(new)
    return out


def _jsonable(v: object) -> object:
    """EditPrograms become their canonical dicts so Arrow can store them."""
    return json.dumps(v.to_dict()) if isinstance(v, EditProgram) else v


def _boxes_text(boxes: Sequence[Sequence[float]]) -> str:
    return " ".join(f"<box>[{', '.join(str(int(round(float(c)))) for c in b)}]</box>" for b in boxes)


def reasoner_prompt(boxes: Sequence[Sequence[float]] | None = None, *, prompt_text: str | None = None,
                    system_prompt: str | None = REASONER_SYSTEM_PROMPT, image: bool = True) -> list[dict[str, Any]]:
    """Chat prompt of the reasoning agent: image, the generation prompt if any, and the region boxes."""
    parts = []
    if prompt_text:
        parts.append(f"Image prompt: {prompt_text}")
    if boxes:
        for j, b in enumerate(boxes):
            if len(b) != 4:
                raise ValueError(f"region box {j} must be [x1, y1, x2, y2], got {list(b)!r}")
        parts.append(f"Regions: {_boxes_text(boxes)}")
    parts.append("Diagnose the flaws.")
    return [*_system(system_prompt), _user(image, "\n".join(parts))]


def reasoner_completion(reference: str | Mapping[str, object] | Sequence[Mapping[str, object]], *, reasoning: str | None = None) -> str:
    """Target text: the reference flaws as the JSON list the papers use (after ``<think>`` if reasoning)."""
    if isinstance(reference, str):
        parsed = parse_diagnosis(reference)
        if not parsed.ok:
            raise ValueError(f"reference diagnosis does not parse: {parsed.problems[0].reason}")
        items = [{"flaw_type": d.flaw_type, "description": d.description} for d in parsed.items]
    else:
        ref = [reference] if isinstance(reference, Mapping) else list(reference)
        items = []
        for j, d in enumerate(ref):
            if not isinstance(d, Mapping) or "flaw_type" not in d:
                raise ValueError(f"reference flaw {j} must be a dict with 'flaw_type' and 'description', got {d!r}")
            items.append({"flaw_type": str(d["flaw_type"]), "description": str(d.get("description", ""))})
    body = json.dumps(items)
    return f"<think>{reasoning.strip()}</think><answer>{body}</answer>" if reasoning else body


def reasoner_rows(rows: Sequence[Mapping[str, object]], *, stage: str, boxes_in_prompt: bool = True,
                  reference_column: str = "reference_diagnosis",
                  system_prompt: str | None = REASONER_SYSTEM_PROMPT) -> list[dict[str, object]]:
    """SFT rows (``prompt``, ``completion``, ``image``) or GRPO rows (``prompt``, ``image``, the reference)."""
    if stage not in ("sft", "grpo"):
        raise ValueError(f"stage must be 'sft' or 'grpo', got {stage!r}")
    out = []
    for i, row in enumerate(rows):
        image = _get(row, ("image",), i, "image")
        reference = _get(row, (reference_column,), i, "reference diagnosis")
        boxes = row.get("boxes") if boxes_in_prompt else None
        prompt = reasoner_prompt(boxes, prompt_text=row.get("prompt_text"), system_prompt=system_prompt)
        new: dict[str, object] = {"prompt": prompt, "image": image}
        if stage == "sft":
            text = reasoner_completion(reference, reasoning=row.get("reasoning"))
            new["completion"] = [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
        else:
            new[reference_column] = reference if isinstance(reference, str) else json.dumps(
                [dict(d) for d in ([reference] if isinstance(reference, Mapping) else reference)])
        out.append(new)
    return out
