"""Record dataclasses for the papers' data shapes, with HF ``datasets.Features`` and example round-trips.

- :class:`BlemishRecord`: GenBlemish (Agentic Retoucher): image, prompt, disk regions with category + text.
- :class:`EditFHFRecord`: EditFHF (EditRefiner): source, edited, instruction, artifact and editing-failure
  regions (box + disks + text), three MOS.
- :class:`RetouchRecord`: RetouchIQ: before, after, up to three instruction variants, reasoning, program.
- :class:`RewardPairRecord`: reward-model pairs: source, strong and weak edits, instruction, metrics, scores.

Images are PIL images or file paths (``str``/``Path``); ``to_example()`` gives a row that
``datasets.Dataset.from_list(rows, features=Record.features())`` encodes, and ``from_example`` reads a
decoded row back. :func:`records_to_dataset` / :func:`dataset_to_records` wrap both directions.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
from PIL import Image

from rlkit.data.regions import (
    FlawRegion,
    Region,
    default_radius,
    disk_mask,
    disk_masks,
    saliency_from_regions,
)
from rlkit.data.taxonomy import GENBLEMISH_TAXONOMY, Taxonomy
from rlkit.ops import EditProgram

if TYPE_CHECKING:
    import datasets

__all__ = [
    "ImageLike",
    "BlemishRecord",
    "EditFHFRecord",
    "RetouchRecord",
    "RewardPairRecord",
    "open_image",
    "image_size",
    "records_to_dataset",
    "dataset_to_records",
    "MOS_DIMENSIONS",
    "Record",
]

ImageLike = Image.Image | str | Path
MOS_DIMENSIONS = ("perceptual_quality", "instruction_following", "visual_consistency")


def open_image(img: ImageLike) -> Image.Image:
    """The image as RGB PIL (opens paths)."""
    if isinstance(img, Image.Image):
        return img.convert("RGB") if img.mode != "RGB" else img
    if isinstance(img, Mapping) and (img.get("bytes") or img.get("path")):  # undecoded datasets value
        return Image.open(io.BytesIO(img["bytes"]) if img.get("bytes") else img["path"]).convert("RGB")
    if isinstance(img, (str, Path)):
        return Image.open(img).convert("RGB")
    raise TypeError(f"expected a PIL image or a path, got {type(img).__name__}")


def image_size(img: ImageLike) -> tuple[int, int]:
    """(width, height) without decoding pixels for paths."""
    if isinstance(img, Image.Image):
        return img.size
    with Image.open(img) as im:
        return im.size


def _img_value(img: ImageLike | None) -> Image.Image | str | None:
    if img is None:
        return None
    return str(img) if isinstance(img, Path) else img


def _features() -> ModuleType:
    import datasets  # deferred: datasets adds ~1.1 s to `import rlkit.data`

    return datasets


@dataclass
class BlemishRecord:
    """GenBlemish-style sample: an image, its prompt and disk regions (centre, category, description)."""

    image: ImageLike
    prompt: str
    regions: list[Region] = field(default_factory=list)
    id: str = ""
    clean_image: ImageLike | None = None  # the undistorted image, when known (synthetic sets)

    kind: ClassVar[str] = "blemish"

    @staticmethod
    def features() -> datasets.Features:
        """HF schema: id, image, prompt, regions[{x, y, radius, category, dimension, description}], clean_image."""
        ds = _features()
        region = {"x": ds.Value("float32"), "y": ds.Value("float32"), "radius": ds.Value("float32"),
                  "category": ds.Value("string"), "dimension": ds.Value("string"),
                  "description": ds.Value("string")}
        return ds.Features({"id": ds.Value("string"), "image": ds.Image(), "prompt": ds.Value("string"),
                            "regions": ds.List(region), "clean_image": ds.Image()})

    def size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        return image_size(self.image)

    def radius(self) -> float:
        """The annotation radius H/20 of this image."""
        return default_radius(self.size()[1])

    def masks(self) -> np.ndarray:
        """Per-region boolean disk masks (K, H, W) of radius H/20."""
        w, h = self.size()
        return disk_masks(self.regions, h, w)

    def mask(self) -> np.ndarray:
        """Union of the region disks, (H, W) bool."""
        w, h = self.size()
        return disk_mask(self.regions, h, w)

    def saliency(self, **kw: float | str | None) -> np.ndarray:
        """Gaussian-aggregated saliency map (H, W) float32 (see ``saliency_from_regions``)."""
        w, h = self.size()
        return saliency_from_regions(self.regions, h, w, **kw)

    def to_example(self, taxonomy: Taxonomy | None = GENBLEMISH_TAXONOMY) -> dict[str, Any]:
        """A row for ``features()``; ``dimension`` filled from ``taxonomy`` when the category is in it."""
        regions = []
        for r in self.regions:
            dim = taxonomy.dimension_of(r.category) if taxonomy is not None and r.category in taxonomy else ""
            regions.append({"x": r.center[0], "y": r.center[1], "radius": r.radius, "category": r.category,
                            "dimension": dim, "description": r.description})
        return {"id": self.id, "image": _img_value(self.image), "prompt": self.prompt, "regions": regions,
                "clean_image": _img_value(self.clean_image)}

    @classmethod
    def from_example(cls, ex: Mapping[str, Any]) -> BlemishRecord:
        """Inverse of :meth:`to_example` (for decoded dataset rows)."""
        regions = [Region((r["x"], r["y"]), r.get("category") or "", r.get("description") or "", r.get("radius"))
                   for r in ex.get("regions") or []]
        return cls(ex["image"], ex.get("prompt") or "", regions, ex.get("id") or "", ex.get("clean_image"))


def _flaw_feature(ds):
    return ds.List({"box": ds.List(ds.Value("float32")), "disks": ds.List(ds.List(ds.Value("float32"))),
                    "radius": ds.Value("float32"), "flaw_type": ds.Value("string"),
                    "description": ds.Value("string")})


@dataclass
class EditFHFRecord:
    """EditFHF-style sample: source, edited image, instruction, two kinds of flaw regions and three MOS."""

    source: ImageLike
    edited: ImageLike
    instruction: str
    artifact_regions: list[FlawRegion] = field(default_factory=list)
    failure_regions: list[FlawRegion] = field(default_factory=list)
    scores: dict[str, float | None] = field(default_factory=dict)  # MOS per MOS_DIMENSIONS
    id: str = ""

    kind: ClassVar[str] = "editfhf"

    @staticmethod
    def features() -> datasets.Features:
        """HF schema: id, source, edited, instruction, artifact/failure regions, the three MOS columns."""
        ds = _features()
        f = {"id": ds.Value("string"), "source": ds.Image(), "edited": ds.Image(),
             "instruction": ds.Value("string"), "artifact_regions": _flaw_feature(ds),
             "failure_regions": _flaw_feature(ds)}
        f.update({k: ds.Value("float32") for k in MOS_DIMENSIONS})
        return ds.Features(f)

    def saliency_maps(self, **kw: float | str | None) -> tuple[np.ndarray, np.ndarray]:
        """(artifact, editing-failure) Gaussian-aggregated saliency maps of the edited image's size."""
        w, h = image_size(self.edited)
        return (saliency_from_regions(self.artifact_regions, h, w, **kw),
                saliency_from_regions(self.failure_regions, h, w, **kw))

    def to_example(self) -> dict[str, Any]:
        """A row for ``features()``."""
        def enc(rs: Sequence[FlawRegion]) -> list[dict[str, Any]]:
            return [{"box": list(r.box), "disks": [list(p) for p in r.disks], "radius": r.radius,
                     "flaw_type": r.flaw_type, "description": r.description} for r in rs]

        ex = {"id": self.id, "source": _img_value(self.source), "edited": _img_value(self.edited),
              "instruction": self.instruction, "artifact_regions": enc(self.artifact_regions),
              "failure_regions": enc(self.failure_regions)}
        unknown = set(self.scores) - set(MOS_DIMENSIONS)
        if unknown:
            raise ValueError(f"EditFHFRecord.scores: unknown dimension(s) {sorted(unknown)}; expected {MOS_DIMENSIONS}")
        ex.update({k: self.scores.get(k) for k in MOS_DIMENSIONS})
        return ex

    @classmethod
    def from_example(cls, ex: Mapping[str, Any]) -> EditFHFRecord:
        """Inverse of :meth:`to_example`."""
        def dec(rs: Sequence[Mapping[str, Any]] | None, kind: str) -> list[FlawRegion]:
            return [FlawRegion(r["box"], r["disks"], r.get("description") or "", r.get("flaw_type") or "", kind,
                               r.get("radius")) for r in rs or []]

        return cls(ex["source"], ex["edited"], ex.get("instruction") or "",
                   dec(ex.get("artifact_regions"), "artifact"), dec(ex.get("failure_regions"), "editing_failure"),
                   {k: ex.get(k) for k in MOS_DIMENSIONS if ex.get(k) is not None}, ex.get("id") or "")


def _program_json(program: object) -> str:
    if program is None:
        return ""
    if not isinstance(program, EditProgram):
        raise TypeError(f"expected an EditProgram, got {type(program).__name__}")
    return json.dumps(program.to_dict(), sort_keys=True)


def _program_from_json(text: str | None) -> EditProgram | None:
    if not text:
        return None
    return EditProgram.from_dict(json.loads(text))


@dataclass
class RetouchRecord:
    """RetouchIQ-style sample: before/after, 1-3 instruction variants, reasoning and the edit program."""

    before: ImageLike
    after: ImageLike | None
    instructions: list[str]
    program: EditProgram | None = None
    reasoning: str = ""
    split: str = ""
    id: str = ""

    kind: ClassVar[str] = "retouch"

    def __post_init__(self) -> None:
        if isinstance(self.instructions, str):
            self.instructions = [self.instructions]
        if not 1 <= len(self.instructions) <= 3:
            raise ValueError(f"RetouchRecord.instructions: expected 1 to 3 variants, got {len(self.instructions)}")

    @property
    def instruction(self) -> str:
        """The first (main) instruction variant."""
        return self.instructions[0]

    @staticmethod
    def features() -> datasets.Features:
        """HF schema: id, split, before, after, instruction, instructions, reasoning, program (canonical JSON)."""
        ds = _features()
        return ds.Features({"id": ds.Value("string"), "split": ds.Value("string"), "before": ds.Image(),
                            "after": ds.Image(), "instruction": ds.Value("string"),
                            "instructions": ds.List(ds.Value("string")), "reasoning": ds.Value("string"),
                            "program": ds.Value("string")})

    def to_example(self) -> dict[str, Any]:
        """A row for ``features()``; the program is stored as canonical JSON text."""
        return {"id": self.id, "split": self.split, "before": _img_value(self.before),
                "after": _img_value(self.after), "instruction": self.instruction,
                "instructions": list(self.instructions), "reasoning": self.reasoning,
                "program": _program_json(self.program)}

    @classmethod
    def from_example(cls, ex: Mapping[str, Any]) -> RetouchRecord:
        """Inverse of :meth:`to_example`."""
        ins = list(ex.get("instructions") or []) or [ex.get("instruction") or ""]
        return cls(ex["before"], ex.get("after"), ins, _program_from_json(ex.get("program")),
                   ex.get("reasoning") or "", ex.get("split") or "", ex.get("id") or "")


@dataclass
class RewardPairRecord:
    """Reward-model pair: source image, strong (reference) and weak edit, instruction, optional metrics/scores."""

    source: ImageLike
    strong: ImageLike
    weak: ImageLike
    instruction: str
    metrics: list[str] = field(default_factory=list)  # generated metric descriptions (GRM SFT target)
    score_strong: float | None = None
    score_weak: float | None = None
    strong_program: EditProgram | None = None
    weak_program: EditProgram | None = None
    id: str = ""

    kind: ClassVar[str] = "reward_pair"

    @staticmethod
    def features() -> datasets.Features:
        """HF schema: id, source, strong, weak, instruction, metrics, score_strong/weak, programs (JSON)."""
        ds = _features()
        return ds.Features({"id": ds.Value("string"), "source": ds.Image(), "strong": ds.Image(),
                            "weak": ds.Image(), "instruction": ds.Value("string"),
                            "metrics": ds.List(ds.Value("string")), "score_strong": ds.Value("float32"),
                            "score_weak": ds.Value("float32"), "strong_program": ds.Value("string"),
                            "weak_program": ds.Value("string")})

    def to_example(self) -> dict[str, Any]:
        """A row for ``features()``."""
        return {"id": self.id, "source": _img_value(self.source), "strong": _img_value(self.strong),
                "weak": _img_value(self.weak), "instruction": self.instruction, "metrics": list(self.metrics),
                "score_strong": self.score_strong, "score_weak": self.score_weak,
                "strong_program": _program_json(self.strong_program),
                "weak_program": _program_json(self.weak_program)}

    @classmethod
    def from_example(cls, ex: Mapping[str, Any]) -> RewardPairRecord:
        """Inverse of :meth:`to_example`."""
        return cls(ex["source"], ex["strong"], ex["weak"], ex.get("instruction") or "", list(ex.get("metrics") or []),
                   ex.get("score_strong"), ex.get("score_weak"), _program_from_json(ex.get("strong_program")),
                   _program_from_json(ex.get("weak_program")), ex.get("id") or "")


_RECORD_TYPES = (BlemishRecord, EditFHFRecord, RetouchRecord, RewardPairRecord)
#: any of the four record types
Record = BlemishRecord | EditFHFRecord | RetouchRecord | RewardPairRecord
R = TypeVar("R", BlemishRecord, EditFHFRecord, RetouchRecord, RewardPairRecord)


def records_to_dataset(records: Sequence[Record]) -> datasets.Dataset:
    """A ``datasets.Dataset`` with the record type's features (all records must share one type)."""
    import datasets  # deferred: datasets adds ~1.1 s to `import rlkit.data`

    if not records:
        raise ValueError("records_to_dataset: no records")
    cls = type(records[0])
    if cls not in _RECORD_TYPES:
        raise TypeError(f"records_to_dataset: unsupported record type {cls.__name__}")
    mixed = {type(r).__name__ for r in records if type(r) is not cls}
    if mixed:
        raise TypeError(f"records_to_dataset: mixed record types {sorted(mixed | {cls.__name__})}")
    return datasets.Dataset.from_list([r.to_example() for r in records], features=cls.features())


def dataset_to_records(ds: datasets.Dataset, cls: type[R]) -> list[R]:
    """Records of type ``cls`` from a dataset with its features (images decoded to PIL)."""
    if cls not in _RECORD_TYPES:
        raise TypeError(f"dataset_to_records: unsupported record type {cls!r}")
    missing = sorted(set(cls.features()) - set(ds.column_names) - {"clean_image"})
    if missing:
        raise ValueError(f"dataset_to_records: dataset lacks column(s) {missing} needed for {cls.__name__}")
    return [cls.from_example(ex) for ex in ds]
