"""EditRefiner's reasoning agent on EditFHF rows: prompts with the source and edited image, and trl rows.

Eq. 3 of the paper: ``D_{i,t} = ReasoningAgent({I_0, T}, I_t, B_{i,t})`` for each map ``i`` (artifacts,
editing failures): the agent sees the source image, the instruction, the current edited image and the boxes
that the perception agent found in one map, and answers with the flaws there as the JSON list
``[{"flaw_type": ..., "description": ...}]`` (parsed by ``rlkit.policies.parse_diagnosis``).

- :func:`editrefiner_reasoner_prompt`: the chat prompt (two image blocks: source, then edited);
- :func:`editrefiner_reasoner_rows`: EditFHF dataset rows -> trl SFT rows (``prompt``, ``completion``,
  ``images``) or GRPO rows (``prompt``, ``images``, ``reference_diagnosis`` with each flaw's box), one row per
  (item, map kind) with regions of that kind (``include_empty`` adds rows whose answer is ``[]``).

The GRPO reward for these rows is the paper's: ``rlkit.rewards.editrefiner_reasoning_reward()``
(0.2 format + 0.4 flaw type + 0.4 description similarity).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rlkit.data import EditFHFRecord
from rlkit.policies.prompts import DatasetColumnError, reasoner_completion

__all__ = [
    "EDITREFINER_REASONER_SYSTEM_PROMPT",
    "FLAW_KINDS",
    "editrefiner_reasoner_prompt",
    "editrefiner_reasoner_rows",
    "editrefiner_reference",
]

EDITREFINER_REASONER_SYSTEM_PROMPT = (
    "You review image edits. You see the source image, the edited image, the editing instruction and boxes "
    "marking suspicious regions of the edited image. For each marked region answer with a JSON list "
    '[{"flaw_type": ..., "description": ...}]: the flaw type and one sentence saying what is wrong there.'
)
FLAW_KINDS = {"artifact": "artifacts (generation defects such as blur, noise, distortions, colour blotches)",
              "failure": "editing failures (the edit is missing, wrong, or changed what it should not)"}
"""The two maps of EditRefiner's perception agent and how the prompt names them."""
_REGIONS = {"artifact": "artifact_regions", "failure": "failure_regions"}


def _boxes_text(boxes: Sequence[Sequence[float]]) -> str:
    out = []
    for j, b in enumerate(boxes):
        if len(b) != 4:
            raise ValueError(f"region box {j} must be [x1, y1, x2, y2], got {list(b)!r}")
        out.append(f"<box>[{', '.join(str(int(round(float(c)))) for c in b)}]</box>")
    return " ".join(out)


def editrefiner_reasoner_prompt(instruction: str, boxes: Sequence[Sequence[float]] | None = None, *,
                                kind: str = "artifact",
                                system_prompt: str | None = EDITREFINER_REASONER_SYSTEM_PROMPT,
                                images: bool = True) -> list[dict[str, Any]]:
    """Chat prompt of EditRefiner's reasoning agent for one map ``kind`` (``artifact`` / ``failure``).

    User turn: ``[source image, edited image, text]`` (images as ``{"type": "image"}`` blocks, the trl
    convention; the images go in the row's ``images`` column in that order), the text holding the
    instruction, the kind of flaw to look for and the boxes (pixels of the edited image, ``<box>`` tags).
    """
    if kind not in FLAW_KINDS:
        raise ValueError(f"kind must be one of {sorted(FLAW_KINDS)}, got {kind!r}")
    lines = [f"Instruction: {instruction}", f"Look for {FLAW_KINDS[kind]}."]
    if boxes:
        lines.append(f"Regions: {_boxes_text(boxes)}")
    lines.append("Diagnose the flaws.")
    content: list[dict[str, Any]] = []
    if images:
        content += [{"type": "text", "text": "Source image:"}, {"type": "image"},
                    {"type": "text", "text": "Edited image:"}, {"type": "image"}]
    content.append({"type": "text", "text": "\n".join(lines)})
    system = [{"role": "system", "content": [{"type": "text", "text": system_prompt}]}] if system_prompt else []
    return [*system, {"role": "user", "content": content}]


def editrefiner_reference(record: EditFHFRecord, kind: str) -> list[dict[str, Any]]:
    """The reference flaws of one map kind: ``[{"flaw_type", "description", "bbox"}]`` from the record's regions."""
    if kind not in FLAW_KINDS:
        raise ValueError(f"kind must be one of {sorted(FLAW_KINDS)}, got {kind!r}")
    regions = record.artifact_regions if kind == "artifact" else record.failure_regions
    return [{"flaw_type": r.flaw_type, "description": r.description, "bbox": [float(c) for c in r.box]}
            for r in regions]


def _record(row: Mapping[str, Any] | EditFHFRecord, index: int) -> EditFHFRecord:
    if isinstance(row, EditFHFRecord):
        return row
    if not isinstance(row, Mapping):
        raise TypeError(f"row {index}: expected an EditFHF dataset row or EditFHFRecord, got {type(row).__name__}")
    missing = [k for k in ("source", "edited", "instruction", *_REGIONS.values()) if k not in row]
    if missing:
        raise DatasetColumnError(f"row {index}: no {missing} column(s) for the EditRefiner reasoner "
                                 f"(row has {sorted(row)})")
    return EditFHFRecord.from_example(row)


def editrefiner_reasoner_rows(rows: Sequence[Mapping[str, Any] | EditFHFRecord], *, stage: str,
                              kinds: Sequence[str] = ("artifact", "failure"), boxes_in_prompt: bool = True,
                              include_empty: bool = False, reference_column: str = "reference_diagnosis",
                              system_prompt: str | None = EDITREFINER_REASONER_SYSTEM_PROMPT) -> list[dict[str, Any]]:
    """trl rows for EditRefiner's reasoning agent from EditFHF rows, one per (item, kind).

    SFT rows: ``prompt``, ``completion`` (the reference JSON list, boxes left out of the answer), ``images``
    ([source, edited]). GRPO rows: ``prompt``, ``images``, ``reference_column`` (JSON with each flaw's
    ``bbox``, so rewards pair predictions with references per region), ``instruction``, ``kind``. Items with
    no region of a kind get no row for it unless ``include_empty`` (their answer is ``[]``).
    """
    if stage not in ("sft", "grpo"):
        raise ValueError(f"stage must be 'sft' or 'grpo', got {stage!r}")
    bad = [k for k in kinds if k not in FLAW_KINDS]
    if bad or not kinds:
        raise ValueError(f"kinds must be among {sorted(FLAW_KINDS)}, got {list(kinds)}")
    out = []
    for i, row in enumerate(rows):
        rec = _record(row, i)
        for kind in kinds:
            ref = editrefiner_reference(rec, kind)
            if not ref and not include_empty:
                continue
            boxes = [r["bbox"] for r in ref] if boxes_in_prompt else None
            new: dict[str, Any] = {
                "prompt": editrefiner_reasoner_prompt(rec.instruction, boxes, kind=kind, system_prompt=system_prompt),
                "images": [rec.source, rec.edited], "instruction": rec.instruction, "kind": kind}
            if stage == "sft":
                text = reasoner_completion([{"flaw_type": r["flaw_type"], "description": r["description"]} for r in ref])
                new["completion"] = [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
            else:
                new[reference_column] = json.dumps(ref)
            out.append(new)
    return out
