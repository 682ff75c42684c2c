"""Loaders from a folder of images + a JSONL file, one record per line; bad lines are reported, not fatal.

Every loader returns a :class:`LoadResult` with the good records and a list of :class:`LoadProblem`
(file, line, reason) for each skipped line: invalid JSON, a missing or unreadable image, a region outside
the image, an unknown category, an unparsable edit program. Image paths are relative to the JSONL's folder
(or ``image_root``). JSONL line formats (keys; ``?`` = optional):

- blemish:  ``{"id"?, "image", "prompt", "regions": [{"center": [x, y], "category", "description", "radius"?}]}``
- editfhf:  ``{"id"?, "source", "edited", "instruction", "artifact_regions": [{"box": [x1, y1, x2, y2],
  "disks": [[x, y], ...], "description", "flaw_type"?}], "failure_regions": [...],
  "perceptual_quality"?, "instruction_following"?, "visual_consistency"?}``
- retouch:  ``{"id"?, "before", "after"?, "instructions": [1-3 strings] | "instruction", "reasoning"?,
  "program": {canonical or Lightroom keys} | "text in any parse_program format", "split"?}``
- reward pairs: ``{"id"?, "source", "strong", "weak", "instruction", "metrics"?: [str],
  "score_strong"?, "score_weak"?}``
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from rlkit.data.records import (
    MOS_DIMENSIONS,
    BlemishRecord,
    EditFHFRecord,
    Record,
    RetouchRecord,
    RewardPairRecord,
)
from rlkit.data.regions import FlawRegion, Region
from rlkit.data.taxonomy import GENBLEMISH_TAXONOMY, Taxonomy
from rlkit.ops import EditProgram, ProgramError, as_program

__all__ = [
    "LoadProblem",
    "LoadResult",
    "RecordError",
    "load_blemish",
    "load_editfhf",
    "load_retouch",
    "load_reward_pairs",
    "load_records",
    "find_jsonl",
]


class RecordError(ValueError):
    """One JSONL record is invalid (raised inside loaders, reported as a LoadProblem)."""


@dataclass(frozen=True)
class LoadProblem:
    """A skipped record: ``file:line: reason``."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class LoadResult:
    """Records that loaded, and problems for those that did not."""

    records: list[Record] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)

    def __iter__(self):
        return iter((self.records, self.problems))

    @property
    def ok(self) -> bool:
        """True when every line loaded."""
        return not self.problems


def find_jsonl(path: str | Path) -> Path:
    """``path`` if it is a file, else the single ``*.jsonl`` in that folder (``metadata.jsonl`` preferred)."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(f"no such file or folder: {p}")
    if (p / "metadata.jsonl").is_file():
        return p / "metadata.jsonl"
    found = sorted(p.glob("*.jsonl"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"{p}: expected exactly one *.jsonl (or metadata.jsonl), found {[f.name for f in found] or 'none'}")
    return found[0]


class _Ctx:
    def __init__(self, root: Path) -> None:
        self.root = root

    def image(self, d: Mapping[str, Any], key: str, *, required: bool = True) -> tuple[Path | None, tuple[int, int]]:
        v = d.get(key)
        if v is None or v == "":
            if required:
                raise RecordError(f"missing image field {key!r}")
            return None, (0, 0)
        if not isinstance(v, str):
            raise RecordError(f"{key!r} must be an image path, got {type(v).__name__}")
        p = Path(v) if Path(v).is_absolute() else self.root / v
        if not p.is_file():
            raise RecordError(f"{key!r}: image file not found: {p}")
        try:
            with Image.open(p) as im:
                size = im.size
        except (UnidentifiedImageError, OSError) as exc:
            raise RecordError(f"{key!r}: cannot read image {p}: {exc}") from None
        return p, size


def _text(d: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    v = d.get(key)
    if v is None:
        if required:
            raise RecordError(f"missing field {key!r}")
        return ""
    if not isinstance(v, str):
        raise RecordError(f"{key!r} must be a string, got {type(v).__name__}")
    return v


def _score(d: Mapping[str, Any], key: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RecordError(f"{key!r} must be a number, got {v!r}")
    return float(v)


def _load(path: str | Path, image_root: str | Path | None, parse: Callable[[dict, _Ctx, int], Record]) -> LoadResult:
    jsonl = find_jsonl(path)
    ctx = _Ctx(Path(image_root) if image_root is not None else jsonl.parent)
    out = LoadResult()
    with open(jsonl, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                out.problems.append(LoadProblem(str(jsonl), lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"))
                continue
            if not isinstance(d, dict):
                out.problems.append(LoadProblem(str(jsonl), lineno, f"expected a JSON object, got {type(d).__name__}"))
                continue
            try:
                rec = parse(d, ctx, lineno)
            except (RecordError, ValueError, TypeError, KeyError) as exc:
                msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
                out.problems.append(LoadProblem(str(jsonl), lineno, str(msg)))
                continue
            if not getattr(rec, "id", ""):
                rec.id = f"{jsonl.stem}-{lineno}"
            out.records.append(rec)
    return out


def load_blemish(path: str | Path, image_root: str | Path | None = None, *,
                 taxonomy: Taxonomy | None = GENBLEMISH_TAXONOMY) -> LoadResult:
    """GenBlemish-style records (see module doc). Categories must be in ``taxonomy`` (None: any text)."""

    def parse(d: dict, ctx: _Ctx, lineno: int) -> BlemishRecord:
        img, (w, h) = ctx.image(d, "image")
        regions = []
        raw = d.get("regions", [])
        if not isinstance(raw, list):
            raise RecordError("'regions' must be a list")
        for i, rd in enumerate(raw):
            try:
                r = Region.from_dict(rd)
                r.check_inside(w, h)
            except ValueError as exc:
                raise RecordError(f"regions[{i}]: {exc}") from None
            if taxonomy is not None:
                try:
                    r = Region(r.center, taxonomy.canonical(r.category), r.description, r.radius)
                except KeyError as exc:
                    raise RecordError(f"regions[{i}]: {exc.args[0]}") from None
            regions.append(r)
        return BlemishRecord(img, _text(d, "prompt"), regions, str(d.get("id") or ""))

    return _load(path, image_root, parse)


def load_editfhf(path: str | Path, image_root: str | Path | None = None) -> LoadResult:
    """EditFHF-style records (see module doc); regions must lie inside the edited image."""

    def parse(d: dict, ctx: _Ctx, lineno: int) -> EditFHFRecord:
        src, _ = ctx.image(d, "source")
        edited, (w, h) = ctx.image(d, "edited")
        groups = {}
        for key, kind in (("artifact_regions", "artifact"), ("failure_regions", "editing_failure")):
            raw = d.get(key, [])
            if not isinstance(raw, list):
                raise RecordError(f"{key!r} must be a list")
            rs = []
            for i, rd in enumerate(raw):
                try:
                    r = FlawRegion.from_dict(rd, kind=kind)
                    r.check_inside(w, h)
                except ValueError as exc:
                    raise RecordError(f"{key}[{i}]: {exc}") from None
                rs.append(r)
            groups[key] = rs
        scores = {k: s for k in MOS_DIMENSIONS if (s := _score(d, k)) is not None}
        return EditFHFRecord(src, edited, _text(d, "instruction"), groups["artifact_regions"],
                             groups["failure_regions"], scores, str(d.get("id") or ""))

    return _load(path, image_root, parse)


def _program(value: object) -> EditProgram:
    """A record's expert program (a dict or text in any format), or a RecordError saying what is wrong."""
    try:
        return as_program(value, where="program")  # type: ignore[arg-type]
    except ProgramError as exc:
        raise RecordError(str(exc)) from None


def load_retouch(path: str | Path, image_root: str | Path | None = None) -> LoadResult:
    """RetouchIQ-style records (see module doc); the program is validated by ``rlkit.ops``."""

    def parse(d: dict, ctx: _Ctx, lineno: int) -> RetouchRecord:
        before, _ = ctx.image(d, "before")
        after, _ = ctx.image(d, "after", required=False)
        ins = d.get("instructions", d.get("instruction"))
        if isinstance(ins, str):
            ins = [ins]
        if not isinstance(ins, list) or not all(isinstance(s, str) and s.strip() for s in ins):
            raise RecordError("'instructions' must be 1 to 3 non-empty strings (or 'instruction': a string)")
        if "program" not in d:
            raise RecordError("missing field 'program'")
        return RetouchRecord(before, after, ins, _program(d["program"]), _text(d, "reasoning", required=False),
                             _text(d, "split", required=False), str(d.get("id") or ""))

    return _load(path, image_root, parse)


def load_reward_pairs(path: str | Path, image_root: str | Path | None = None) -> LoadResult:
    """Reward-model pair records (see module doc)."""

    def parse(d: dict, ctx: _Ctx, lineno: int) -> RewardPairRecord:
        src, _ = ctx.image(d, "source")
        strong, _ = ctx.image(d, "strong")
        weak, _ = ctx.image(d, "weak")
        metrics = d.get("metrics", [])
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            raise RecordError("'metrics' must be a list of strings")
        return RewardPairRecord(src, strong, weak, _text(d, "instruction"), metrics, _score(d, "score_strong"),
                                _score(d, "score_weak"), id=str(d.get("id") or ""))

    return _load(path, image_root, parse)


_LOADERS = {"blemish": load_blemish, "editfhf": load_editfhf, "retouch": load_retouch,
            "reward_pairs": load_reward_pairs}


def load_records(kind: str, path: str | Path, image_root: str | Path | None = None,
                 **kw: Taxonomy | None) -> LoadResult:
    """Dispatch to the loader for ``kind`` in {blemish, editfhf, retouch, reward_pairs}."""
    if kind not in _LOADERS:
        raise ValueError(f"load_records: unknown kind {kind!r}; expected one of {sorted(_LOADERS)}")
    return _LOADERS[kind](path, image_root, **kw)
