"""The reward protocol: a batch of samples in, one score per sample (or None, with a reason) out.

A :class:`Reward` is the same object for trl's GRPOTrainer (through :func:`rlkit.rewards.to_trl_reward_funcs`),
for rlkit's environments and for evaluation: each calls it with a :class:`RewardBatch`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("rlkit.rewards")

__all__ = [
    "RewardBatch",
    "RewardResult",
    "Reward",
    "AsyncReward",
    "FunctionReward",
    "reward",
    "RewardValueError",
    "completion_text",
    "SOURCE_IMAGE_COLUMNS",
    "TARGET_IMAGE_COLUMNS",
    "OUTPUT_IMAGE_COLUMNS",
    "INSTRUCTION_COLUMNS",
]

# Column names (first present wins) for the standard roles. trl's own image column is "image"/"images".
SOURCE_IMAGE_COLUMNS = ("source_image", "image", "images", "source")
TARGET_IMAGE_COLUMNS = ("target_image", "target", "expert_image", "reference_image")
OUTPUT_IMAGE_COLUMNS = ("output_image", "edited_image", "output")
INSTRUCTION_COLUMNS = ("instruction", "edit_instruction", "prompt_text")


class RewardValueError(ValueError):
    """A reward produced NaN/inf or the wrong number of scores; the message names the reward."""


def completion_text(completion: Any) -> str:
    """Text of one completion as trl passes it: a ``str`` or a list of chat messages (assistant turns joined)."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    parts: list[str] = []
    for msg in completion:
        if not isinstance(msg, Mapping):
            parts.append(str(msg))
            continue
        if msg.get("role", "assistant") != "assistant":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(b.get("text", "")) for b in content if isinstance(b, Mapping) and b.get("type") == "text")
    return "\n".join(p for p in parts if p)


def _prompt_text(prompt: Any) -> str:
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    out = []
    for msg in prompt if isinstance(prompt, list) else [prompt]:
        if isinstance(msg, Mapping):
            c = msg.get("content")
            if isinstance(c, str):
                out.append(c)
            elif isinstance(c, list):
                out.extend(str(b.get("text", "")) for b in c if isinstance(b, Mapping) and b.get("type") == "text")
    return "\n".join(out)


def _prompt_key(prompt: Any) -> str:
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


def _fingerprint(image: Any) -> str:
    """Content hash of an image (PIL, numpy array or tensor), to group samples that share a source."""
    import hashlib

    if hasattr(image, "tobytes") and hasattr(image, "size") and hasattr(image, "mode"):  # PIL
        data = image.tobytes() + repr((image.size, image.mode)).encode()
    elif hasattr(image, "detach"):
        t = image.detach().cpu().contiguous()
        data = t.numpy().tobytes() + repr(tuple(t.shape)).encode()
    else:
        try:
            import numpy as np

            arr = np.ascontiguousarray(image)
            data = arr.tobytes() + repr(arr.shape).encode()
        except Exception:  # noqa: BLE001 - unknown objects fall back to their repr
            data = repr(image).encode()
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _first_image(value: Any) -> Any:
    """trl's ``images`` column holds a list of images per row; roles use the first."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


class RewardBatch:
    """Per-sample prompts, completion texts and dataset columns, with lazily parsed and rendered views.

    ``columns`` maps a dataset column name to one value per sample (trl passes every dataset column
    this way). Parsed edit programs (:attr:`programs`), diagnoses (:attr:`diagnoses`) and rendered
    output images (:meth:`output_images`) are computed once and shared by every reward scoring the batch.
    """

    def __init__(
        self,
        completions: Sequence[Any],
        prompts: Sequence[Any] | None = None,
        columns: Mapping[str, Sequence[Any]] | None = None,
        *,
        environments: Sequence[Any] | None = None,
        program_format: str = "auto",
        completion_ids: Sequence[Any] | None = None,
    ) -> None:
        self.raw_completions = list(completions)
        self.completions: list[str] = [completion_text(c) for c in self.raw_completions]
        n = len(self.completions)
        self.prompts: list[Any] = list(prompts) if prompts is not None else [None] * n
        if len(self.prompts) != n:
            raise ValueError(f"RewardBatch: {len(self.prompts)} prompts for {n} completions")
        self.columns: dict[str, list[Any]] = {}
        for name, values in (columns or {}).items():
            values = list(values)
            if len(values) != n:
                raise ValueError(f"RewardBatch: column {name!r} has {len(values)} values for {n} completions")
            self.columns[name] = values
        self.environments = list(environments) if environments is not None else None
        self.completion_ids = list(completion_ids) if completion_ids is not None else None
        self.program_format = program_format
        self._cache: dict[Any, Any] = {}
        self._lock = threading.Lock()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_trl(
        cls,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        *,
        program_format: str = "auto",
        **kwargs: Any,
    ) -> RewardBatch:
        """Build a batch from the keyword arguments trl's GRPOTrainer passes to a reward function."""
        environments = kwargs.pop("environments", None)
        for k in ("trainer_state", "log_extra", "log_metric"):
            kwargs.pop(k, None)
        n = len(completions)
        columns = {k: v for k, v in kwargs.items() if isinstance(v, (list, tuple)) and len(v) == n}
        return cls(completions, prompts, columns, environments=environments, program_format=program_format,
                   completion_ids=completion_ids)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], *, completion_key: str = "completion",
                     prompt_key: str = "prompt", program_format: str = "auto") -> RewardBatch:
        """Build a batch from row dicts (evaluation, JSONL): ``completion`` and ``prompt`` keys plus columns."""
        rows = list(records)
        missing = [i for i, r in enumerate(rows) if completion_key not in r]
        if missing:
            raise KeyError(f"RewardBatch.from_records: rows {missing[:10]} have no {completion_key!r} key")
        keys = sorted({k for r in rows for k in r} - {completion_key, prompt_key})
        columns = {k: [r.get(k) for r in rows] for k in keys}
        return cls([r[completion_key] for r in rows], [r.get(prompt_key) for r in rows], columns,
                   program_format=program_format)

    def __len__(self) -> int:
        return len(self.completions)

    def __repr__(self) -> str:
        return f"RewardBatch(n={len(self)}, columns={sorted(self.columns)})"

    # -- columns --------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.columns

    def column(self, name: str) -> list[Any]:
        """Values of dataset column ``name``; KeyError lists the columns this batch has."""
        if name not in self.columns:
            raise KeyError(f"column {name!r} is not in this batch (columns: {sorted(self.columns)})")
        return self.columns[name]

    def find_column(self, candidates: Sequence[str]) -> str | None:
        """First of ``candidates`` present in the batch, or None."""
        for c in candidates:
            if c in self.columns:
                return c
        return None

    def _role(self, candidates: Sequence[str]) -> list[Any]:
        name = self.find_column(candidates)
        if name is None:
            return [None] * len(self)
        return [_first_image(v) for v in self.columns[name]]

    @property
    def source_images(self) -> list[Any]:
        return self._role(SOURCE_IMAGE_COLUMNS)

    @property
    def target_images(self) -> list[Any]:
        return self._role(TARGET_IMAGE_COLUMNS)

    @property
    def instructions(self) -> list[str | None]:
        name = self.find_column(INSTRUCTION_COLUMNS)
        if name is not None:
            return [None if v is None else str(v) for v in self.columns[name]]
        return [(_prompt_text(p) or None) for p in self.prompts]

    @property
    def prompt_texts(self) -> list[str]:
        return [_prompt_text(p) for p in self.prompts]

    def group_ids(self) -> list[int]:
        """Group index per sample: samples with the same prompt text and the same source image (by content)
        share a group -- trl's G generations of one dataset row."""
        with self._lock:
            if "group_ids" in self._cache:
                return self._cache["group_ids"]
        prints: dict[int, str] = {}
        seen: dict[tuple[str, str], int] = {}
        ids = []
        for p, img in zip(self.prompts, self.source_images):
            if img is not None and id(img) not in prints:
                prints[id(img)] = _fingerprint(img)
            key = (_prompt_key(p), prints.get(id(img), "") if img is not None else "")
            ids.append(seen.setdefault(key, len(seen)))
        with self._lock:
            return self._cache.setdefault("group_ids", ids)

    # -- lazy parsed views ----------------------------------------------------------------------
    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Compute ``key`` once per batch (thread-safe); rewards use it to share expensive work."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = compute()
        with self._lock:
            return self._cache.setdefault(key, value)

    def parsed_programs(self, fmt: str | None = None) -> list[Any]:
        """``rlkit.ops.parse_program`` of each completion (a ``ParseResult``; never raises)."""
        fmt = fmt or self.program_format

        def compute() -> list[Any]:
            from rlkit.ops import parse_program

            return [parse_program(t, fmt) for t in self.completions]

        return self.cached(("programs", fmt), compute)

    @property
    def programs(self) -> list[Any]:
        return self.parsed_programs()

    @property
    def diagnoses(self) -> list[Any]:
        """``rlkit.policies.diagnosis.parse_diagnosis`` of each completion."""

        def compute() -> list[Any]:
            from rlkit.policies.diagnosis import parse_diagnosis

            return [parse_diagnosis(t) for t in self.completions]

        return self.cached("diagnoses", compute)

    def output_images(self, fmt: str | None = None, *, seed: int | None = 0) -> list[Any]:
        """Edited image per sample: the ``output_image`` column if present, else the parsed program applied
        to the source image (batched per image size). None where the program did not parse or no source."""
        name = self.find_column(OUTPUT_IMAGE_COLUMNS)
        if name is not None:
            return [_first_image(v) for v in self.columns[name]]
        fmt = fmt or self.program_format
        return self.cached(("outputs", fmt, seed), lambda: _render_outputs(self, fmt, seed))

    def select(self, indices: Sequence[int]) -> RewardBatch:
        """A sub-batch of the given samples (shares already-parsed programs/diagnoses)."""
        idx = list(indices)
        sub = RewardBatch(
            [self.raw_completions[i] for i in idx],
            [self.prompts[i] for i in idx],
            {k: [v[i] for i in idx] for k, v in self.columns.items()},
            environments=[self.environments[i] for i in idx] if self.environments is not None else None,
            program_format=self.program_format,
            completion_ids=[self.completion_ids[i] for i in idx] if self.completion_ids is not None else None,
        )
        with self._lock:
            for key, value in self._cache.items():
                if isinstance(value, list) and len(value) == len(self) and key != "group_ids":
                    sub._cache[key] = [value[i] for i in idx]
            if "group_ids" in self._cache:
                sub._cache["group_ids"] = [self._cache["group_ids"][i] for i in idx]
        return sub


def _render_outputs(batch: RewardBatch, fmt: str, seed: int | None) -> list[Any]:
    from rlkit.rewards.images import render_programs

    parsed = batch.parsed_programs(fmt)
    programs = [p.program if getattr(p, "ok", False) else None for p in parsed]
    return render_programs(batch.source_images, programs, seed=seed)


@dataclass
class RewardResult:
    """Scores (None = does not apply), named per-sample components, and a reason per sample (or None)."""

    scores: list[float | None]
    components: dict[str, list[float | None]] = field(default_factory=dict)
    reasons: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.reasons:
            self.reasons = [None] * len(self.scores)
        if len(self.reasons) != len(self.scores):
            raise ValueError(f"RewardResult: {len(self.reasons)} reasons for {len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.scores)

    def mean(self) -> float | None:
        vals = [s for s in self.scores if s is not None]
        return sum(vals) / len(vals) if vals else None

    def component_means(self) -> dict[str, float | None]:
        out = {}
        for k, v in self.components.items():
            vals = [x for x in v if x is not None]
            out[k] = sum(vals) / len(vals) if vals else None
        return out


_NAME_RE = re.compile(r"[^0-9A-Za-z_./-]+")


def _check_finite(name: str, scores: Sequence[Any], what: str = "score") -> list[float | None]:
    out: list[float | None] = []
    for i, s in enumerate(scores):
        if s is None:
            out.append(None)
            continue
        try:
            v = float(s)
        except (TypeError, ValueError):
            raise RewardValueError(f"reward {name!r} returned a non-number {what} {s!r} for sample {i}") from None
        if not math.isfinite(v):
            raise RewardValueError(f"reward {name!r} returned {v} ({what}) for sample {i}; rewards must be finite "
                                   "or None")
        out.append(v)
    return out


class Reward:
    """Base class: subclasses implement :meth:`compute`; ``__call__`` validates and logs the result.

    ``name`` is used for logging (trl's ``rewards/<name>/mean``) and for components; ``required_columns``
    lists the dataset columns the reward needs (checked by the trl adapter when it is built).
    """

    name: str = "reward"
    required_columns: tuple[str, ...] = ()
    is_async: bool = False

    def compute(self, batch: RewardBatch) -> RewardResult:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.compute")

    async def acompute(self, batch: RewardBatch) -> RewardResult:
        """Async variant; the default runs :meth:`compute` in a worker thread."""
        return await asyncio.to_thread(self.compute, batch)

    def missing_columns(self, available: Iterable[str]) -> list[str]:
        """Required columns absent from ``available`` (alternatives written ``"a|b"``; any one suffices)."""
        have = set(available)
        return [c for c in self.required_columns if not any(a in have for a in c.split("|"))]

    def _finish(self, batch: RewardBatch, result: Any) -> RewardResult:
        if not isinstance(result, RewardResult):
            result = RewardResult(list(result))
        if len(result.scores) != len(batch):
            raise RewardValueError(f"reward {self.name!r} returned {len(result.scores)} scores for "
                                   f"{len(batch)} samples")
        result.scores = _check_finite(self.name, result.scores)
        for k, v in result.components.items():
            if len(v) != len(batch):
                raise RewardValueError(f"reward {self.name!r}: component {k!r} has {len(v)} values for "
                                       f"{len(batch)} samples")
            result.components[k] = _check_finite(self.name, v, what=f"component {k!r}")
        if self.name not in result.components:
            result.components = {self.name: list(result.scores), **result.components}
        nones = [(i, r) for i, (s, r) in enumerate(zip(result.scores, result.reasons)) if s is None]
        if nones:
            shown = "; ".join(f"#{i}: {r or 'no reason given'}" for i, r in nones[:5])
            more = f" (+{len(nones) - 5} more)" if len(nones) > 5 else ""
            logger.info("reward %s: %d/%d samples not scored: %s%s", self.name, len(nones), len(batch), shown, more)
        return result

    def __call__(self, batch: RewardBatch) -> RewardResult:
        if not isinstance(batch, RewardBatch):
            raise TypeError(f"reward {self.name!r} expects a RewardBatch, got {type(batch).__name__}; build one "
                            "with RewardBatch(completions, prompts, columns)")
        return self._finish(batch, self.compute(batch))

    async def acall(self, batch: RewardBatch) -> RewardResult:
        """Score asynchronously (async rewards overlap their I/O; sync ones run in a thread)."""
        return self._finish(batch, await self.acompute(batch))

    def score(self, completions: Sequence[Any], **columns: Sequence[Any]) -> list[float | None]:
        """Convenience for evaluation: scores for ``completions`` with dataset ``columns`` as keyword lists."""
        prompts = columns.pop("prompts", None)
        return self(RewardBatch(completions, prompts, columns)).scores

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _run_coro_blocking(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, also when an event loop already runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class AsyncReward(Reward):
    """A reward whose natural form is a coroutine (e.g. an HTTP judge): implement :meth:`acompute`."""

    is_async = True

    async def acompute(self, batch: RewardBatch) -> RewardResult:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.acompute")

    def compute(self, batch: RewardBatch) -> RewardResult:
        return _run_coro_blocking(self.acompute(batch))


class FunctionReward(Reward):
    """Wrap ``fn(batch) -> list[float | None] | RewardResult`` (sync or ``async def``) as a :class:`Reward`."""

    def __init__(self, fn: Callable[[RewardBatch], Any], name: str | None = None,
                 required_columns: Sequence[str] = ()) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "reward")
        self.required_columns = tuple(required_columns)
        self.is_async = asyncio.iscoroutinefunction(fn)

    def compute(self, batch: RewardBatch) -> RewardResult:
        if self.is_async:
            return _run_coro_blocking(self.acompute(batch))
        return _as_result(self.fn(batch))

    async def acompute(self, batch: RewardBatch) -> RewardResult:
        if self.is_async:
            return _as_result(await self.fn(batch))
        return await asyncio.to_thread(self.compute, batch)


def _as_result(value: Any) -> RewardResult:
    if isinstance(value, RewardResult):
        return value
    return RewardResult(list(value))


def reward(name: str | None = None, *, columns: Sequence[str] = ()) -> Callable[[Callable], FunctionReward]:
    """Decorator: ``@reward("brightness", columns=["image"])`` turns ``fn(batch) -> scores`` into a Reward."""

    def wrap(fn: Callable[[RewardBatch], Any]) -> FunctionReward:
        return FunctionReward(fn, name=name, required_columns=columns)

    return wrap
