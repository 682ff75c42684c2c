"""What a reward scores: one :class:`~rlkit.rewards.rollout.Rollout` per completion, plus the dataset columns.

``RewardBatch`` holds the rollouts (text, parse, executed edit), the prompts and every dataset column trl
passes, and answers the column-role questions rewards ask (which column is the source image, the target,
the instruction). It parses and renders nothing itself: :meth:`RewardBatch.complete` asks
:func:`~rlkit.rewards.rollout.complete_rollouts` for what is still missing, once per rollout.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from rlkit.ops import EditProgram, ParseResult
from rlkit.policies import DiagnosisParse
from rlkit.rewards.rollout import Rollout, complete_rollouts

__all__ = [
    "RewardBatch",
    "completion_text",
    "SOURCE_IMAGE_COLUMNS",
    "TARGET_IMAGE_COLUMNS",
    "OUTPUT_IMAGE_COLUMNS",
    "INSTRUCTION_COLUMNS",
    "TRL_CONTROL_KWARGS",
    "usable_samples",
]

# Column names (first present wins) for the standard roles. trl's own image column is "image"/"images".
SOURCE_IMAGE_COLUMNS = ("source_image", "image", "images", "source")
TARGET_IMAGE_COLUMNS = ("target_image", "target", "expert_image", "reference_image")
OUTPUT_IMAGE_COLUMNS = ("output_image", "edited_image", "output")
INSTRUCTION_COLUMNS = ("instruction", "edit_instruction", "prompt_text")
#: keyword arguments trl passes to reward functions that are not dataset columns
TRL_CONTROL_KWARGS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric",
                      "environments")

#: a chat message list as trl passes prompts and completions
Messages = Sequence[Mapping[str, Any]]
T = TypeVar("T")


def _texts_of(messages: str | Messages | Mapping[str, Any] | None, role: str | None) -> list[str]:
    """Text blocks of a string or chat messages (only ``role``'s messages when given)."""
    if messages is None:
        return []
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        messages = [messages]
    parts: list[str] = []
    for msg in messages:
        if not isinstance(msg, Mapping):
            parts.append(str(msg))
            continue
        if role is not None and msg.get("role", role) != role:
            continue
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(b.get("text", "")) for b in content if isinstance(b, Mapping) and b.get("type") == "text")
    return [p for p in parts if p]


def completion_text(completion: str | Messages | Mapping[str, Any] | None) -> str:
    """Text of one completion as trl passes it: a ``str`` or a list of chat messages (assistant turns joined)."""
    return "\n".join(_texts_of(completion, "assistant"))


def _prompt_key(prompt: object) -> str:
    """Prompt identity without image objects (their repr holds memory addresses)."""
    if isinstance(prompt, str) or prompt is None:
        return str(prompt)
    parts = []
    for msg in prompt if isinstance(prompt, list) else [prompt]:
        if isinstance(msg, Mapping):
            c = msg.get("content")
            if isinstance(c, list):
                c = [b.get("text", b.get("type")) if isinstance(b, Mapping) else str(b) for b in c]
            parts.append(f"{msg.get('role')}:{c}")
        else:
            parts.append(str(msg))
    return "\n".join(parts)


def _fingerprint(image: object) -> str:
    """Content hash of an image (PIL, numpy array or tensor), to group samples that share a source."""
    if isinstance(image, Image.Image):
        data = image.tobytes() + repr((image.size, image.mode)).encode()
    elif isinstance(image, torch.Tensor):
        t = image.detach().cpu().contiguous()
        data = t.numpy().tobytes() + repr(tuple(t.shape)).encode()
    elif isinstance(image, np.ndarray):
        arr = np.ascontiguousarray(image)
        data = arr.tobytes() + repr(arr.shape).encode()
    else:
        data = repr(image).encode()
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def usable_samples(needs: Sequence[tuple[Sequence[object], str]]) -> tuple[list[int], list[str | None]]:
    """The samples a reward can score: indices where every ``(values, reason)`` pair has a value, and per
    sample the reason of the first missing one (None for the usable ones)."""
    n = len(needs[0][0]) if needs else 0
    usable: list[int] = []
    reasons: list[str | None] = [None] * n
    for i in range(n):
        reasons[i] = next((why for values, why in needs if values[i] is None), None)
        if reasons[i] is None:
            usable.append(i)
    return usable, reasons


def _first_image(value: object) -> object:
    """trl's ``images`` column holds a list of images per row; roles use the first."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


class RewardBatch:
    """Per-sample rollouts, prompts and dataset columns: what every reward of one scoring call reads.

    ``columns`` maps a dataset column name to one value per sample (trl passes every dataset column this
    way). ``rollouts`` carry each completion's parse and executed edit when the caller (the environment or
    the trl bridge) has them; otherwise they are made here on first need, once, and shared by every reward
    scoring the batch. An ``output_image`` column, when present, is the edited image of each sample.
    """

    def __init__(
        self,
        completions: Sequence[str | Messages],
        prompts: Sequence[object] | None = None,
        columns: Mapping[str, Sequence[object]] | None = None,
        *,
        rollouts: Sequence[Rollout] | None = None,
        environments: Sequence[object] | None = None,
        program_format: str = "auto",
        completion_ids: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self.raw_completions = list(completions)
        n = len(self.raw_completions)
        if rollouts is None:
            rollouts = [Rollout(completion_text(c)) for c in self.raw_completions]
        elif len(rollouts) != n:
            raise ValueError(f"RewardBatch: {len(rollouts)} rollouts for {n} completions")
        self.rollouts: list[Rollout] = list(rollouts)
        self.prompts: list[object] = list(prompts) if prompts is not None else [None] * n
        if len(self.prompts) != n:
            raise ValueError(f"RewardBatch: {len(self.prompts)} prompts for {n} completions")
        self.columns: dict[str, list[object]] = {}
        for name, values in (columns or {}).items():
            values = list(values)
            if len(values) != n:
                raise ValueError(f"RewardBatch: column {name!r} has {len(values)} values for {n} completions")
            self.columns[name] = values
        self.environments = list(environments) if environments is not None else None
        self.completion_ids = list(completion_ids) if completion_ids is not None else None
        self.program_format = program_format
        self._cache: dict[object, object] = {}
        self._lock = threading.Lock()
        out_col = self.find_column(OUTPUT_IMAGE_COLUMNS)
        if out_col is not None:  # the dataset gives the edited images: nothing to render
            for r, img in zip(self.rollouts, self.columns[out_col]):
                if not r.rendered:
                    r.output_image, r.rendered = _first_image(img), True

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_trl(
        cls,
        prompts: Sequence[object],
        completions: Sequence[str | Messages],
        completion_ids: Sequence[Sequence[int]] | None = None,
        *,
        program_format: str = "auto",
        rollouts: Sequence[Rollout] | None = None,
        **kwargs: object,
    ) -> RewardBatch:
        """Build a batch from the keyword arguments trl's GRPOTrainer passes to a reward function."""
        environments = kwargs.pop("environments", None)
        n = len(completions)
        columns = {k: v for k, v in kwargs.items()
                   if k not in TRL_CONTROL_KWARGS and isinstance(v, (list, tuple)) and len(v) == n}
        return cls(completions, prompts, columns, rollouts=rollouts, environments=environments,  # type: ignore[arg-type]
                   program_format=program_format, completion_ids=completion_ids)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, object]], *, completion_key: str = "completion",
                     prompt_key: str = "prompt", program_format: str = "auto") -> RewardBatch:
        """Build a batch from row dicts (evaluation, JSONL): ``completion`` and ``prompt`` keys plus columns."""
        rows = list(records)
        missing = [i for i, r in enumerate(rows) if completion_key not in r]
        if missing:
            raise KeyError(f"RewardBatch.from_records: rows {missing[:10]} have no {completion_key!r} key")
        keys = sorted({k for r in rows for k in r} - {completion_key, prompt_key})
        columns = {k: [r.get(k) for r in rows] for k in keys}
        return cls([r[completion_key] for r in rows], [r.get(prompt_key) for r in rows], columns,  # type: ignore[misc]
                   program_format=program_format)

    def __len__(self) -> int:
        return len(self.rollouts)

    def __repr__(self) -> str:
        return f"RewardBatch(n={len(self)}, columns={sorted(self.columns)})"

    # -- columns --------------------------------------------------------------------------------
    @property
    def completions(self) -> list[str]:
        """The completion texts."""
        return [r.text for r in self.rollouts]

    def has(self, name: str) -> bool:
        return name in self.columns

    def column(self, name: str) -> list[object]:
        """Values of dataset column ``name``; KeyError lists the columns this batch has."""
        if name not in self.columns:
            raise KeyError(f"column {name!r} is not in this batch (columns: {sorted(self.columns)})")
        return self.columns[name]

    def find_column(self, candidates: Sequence[str]) -> str | None:
        """First of ``candidates`` present in the batch, or None."""
        return next((c for c in candidates if c in self.columns), None)

    def _role(self, candidates: Sequence[str]) -> list[object]:
        name = self.find_column(candidates)
        if name is None:
            return [None] * len(self)
        return [_first_image(v) for v in self.columns[name]]

    @property
    def source_images(self) -> list[object]:
        return self._role(SOURCE_IMAGE_COLUMNS)

    @property
    def target_images(self) -> list[object]:
        return self._role(TARGET_IMAGE_COLUMNS)

    @property
    def instructions(self) -> list[str | None]:
        name = self.find_column(INSTRUCTION_COLUMNS)
        if name is not None:
            return [None if v is None else str(v) for v in self.columns[name]]
        return [(self._prompt_text(p) or None) for p in self.prompts]

    @staticmethod
    def _prompt_text(prompt: object) -> str:
        return "\n".join(_texts_of(prompt, None))  # type: ignore[arg-type]

    @property
    def prompt_texts(self) -> list[str]:
        return [self._prompt_text(p) for p in self.prompts]

    def group_ids(self) -> list[int]:
        """Group index per sample: samples with the same prompt text and the same source image (by content)
        share a group -- trl's G generations of one dataset row."""
        def compute() -> list[int]:
            prints: dict[int, str] = {}
            seen: dict[tuple[str, str], int] = {}
            ids = []
            for p, img in zip(self.prompts, self.source_images):
                if img is not None and id(img) not in prints:
                    prints[id(img)] = _fingerprint(img)
                key = (_prompt_key(p), prints.get(id(img), "") if img is not None else "")
                ids.append(seen.setdefault(key, len(seen)))
            return ids

        return self.cached("group_ids", compute)

    # -- rollouts ---------------------------------------------------------------------------------
    def cached(self, key: object, compute: Callable[[], T]) -> T:
        """Compute ``key`` once per batch (thread-safe); rewards use it to share expensive work."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            return self._cache.setdefault(key, value)  # type: ignore[return-value]

    def complete(self, needs: Iterable[str], fmt: str | None = None) -> RewardBatch:
        """Make sure every rollout has what ``needs`` asks for ("program", "output_image", "diagnosis"),
        parsing with ``fmt`` (default: the batch's ``program_format``) what was never parsed. Thread-safe."""
        needs = frozenset(needs)
        with self._lock:
            complete_rollouts(self.rollouts, needs, program_format=fmt or self.program_format,
                              sources=self.source_images if "output_image" in needs else None)
        return self

    def parsed_programs(self, fmt: str | None = None) -> list[ParseResult]:
        """Each completion's program parse (made once; ``fmt`` is used only if nothing parsed it yet)."""
        self.complete({"program"}, fmt)
        return [r.parse for r in self.rollouts]  # type: ignore[misc]

    @property
    def programs(self) -> list[ParseResult]:
        return self.parsed_programs()

    @property
    def diagnoses(self) -> list[DiagnosisParse]:
        """Each completion's diagnosis parse (``rlkit.policies.parse_diagnosis``, made once)."""
        self.complete({"diagnosis"})
        return [r.diagnosis for r in self.rollouts]  # type: ignore[misc]

    def output_images(self, fmt: str | None = None) -> list[object]:
        """Edited image per sample: the ``output_image`` column, the environment's image, or the parsed program
        executed on the source image (once, batched per size). None where nothing parsed or no source."""
        self.complete({"output_image"}, fmt)
        return [r.output_image for r in self.rollouts]

    def edit_programs(self, fmt: str | None = None) -> list[EditProgram | None]:
        """The executable program of each completion (None where the text did not parse cleanly)."""
        self.complete({"program"}, fmt)
        return [r.program for r in self.rollouts]

    def select(self, indices: Sequence[int]) -> RewardBatch:
        """A sub-batch of the given samples, sharing their rollouts (nothing is parsed or rendered again)."""
        idx = list(indices)
        sub = RewardBatch(
            [self.raw_completions[i] for i in idx],
            [self.prompts[i] for i in idx],
            {k: [v[i] for i in idx] for k, v in self.columns.items()},
            rollouts=[self.rollouts[i] for i in idx],
            environments=[self.environments[i] for i in idx] if self.environments is not None else None,
            program_format=self.program_format,
            completion_ids=[self.completion_ids[i] for i in idx] if self.completion_ids is not None else None,
        )
        with self._lock:
            for key, value in self._cache.items():
                if isinstance(value, list) and len(value) == len(self):
                    sub._cache[key] = [value[i] for i in idx]
        return sub
