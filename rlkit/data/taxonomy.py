"""Distortion taxonomies: high-level dimensions refined into fine-grained categories (GenBlemish-style).

Agentic Retoucher's GenBlemish-27K defines six dimensions (human anatomical distortion, attribute
inconsistency, spatial errors, object deformation or redundancy, action and interaction distortion,
miscellaneous) refined into twelve categories; the paper names only some of them (limb deformities, face
distortion, text anomalies, hand distortion). ``GENBLEMISH_TAXONOMY`` fills in the rest with our names;
pass your own :class:`Taxonomy` wherever one is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Taxonomy", "GENBLEMISH_TAXONOMY", "EDITFHF_FLAW_TYPES"]


def _canon(label: str) -> str:
    return re.sub(r"[\s_\-]+", "_", str(label).strip().lower()).strip("_")


@dataclass(frozen=True)
class Taxonomy:
    """Dimensions -> categories; category labels are matched case- and separator-insensitively."""

    dimensions: Mapping[str, tuple[str, ...]]
    name: str = "custom"
    _index: dict[str, tuple[str, str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.dimensions:
            raise ValueError("Taxonomy: needs at least one dimension")
        dims: dict[str, tuple[str, ...]] = {}
        for dim, cats in self.dimensions.items():
            if isinstance(cats, str) or not isinstance(cats, Iterable):
                raise ValueError(f"Taxonomy: dimension {dim!r} must list its categories, got {cats!r}")
            cats = tuple(cats)
            if not cats:
                raise ValueError(f"Taxonomy: dimension {dim!r} has no categories")
            dims[dim] = cats
            for c in cats:
                key = _canon(c)
                if key in self._index:
                    raise ValueError(f"Taxonomy: category {c!r} appears twice (in {self._index[key][1]!r} and {dim!r})")
                self._index[key] = (c, dim)
        object.__setattr__(self, "dimensions", dims)

    @property
    def categories(self) -> tuple[str, ...]:
        """All fine-grained categories, in dimension order."""
        return tuple(c for cats in self.dimensions.values() for c in cats)

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and _canon(label) in self._index

    def __len__(self) -> int:
        return len(self._index)

    def canonical(self, label: str) -> str:
        """The taxonomy's spelling of ``label``; KeyError listing the categories when unknown."""
        key = _canon(label) if isinstance(label, str) else None
        if key not in self._index:
            raise KeyError(f"unknown category {label!r} for taxonomy {self.name!r}; known: {', '.join(self.categories)}")
        return self._index[key][0]

    def dimension_of(self, label: str) -> str:
        """The high-level dimension a category belongs to."""
        return self._index[_canon(self.canonical(label))][1]

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-able ``{dimension: [categories]}``."""
        return {d: list(c) for d, c in self.dimensions.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Iterable[str]], name: str = "custom") -> Taxonomy:
        """Build from ``{dimension: [categories]}``."""
        return cls({k: tuple(v) for k, v in d.items()}, name=name)


GENBLEMISH_TAXONOMY = Taxonomy(
    {
        "human_anatomical_distortion": ("hand_distortion", "face_distortion", "limb_deformity"),
        "attribute_inconsistency": ("color_inconsistency", "texture_inconsistency"),
        "spatial_error": ("proportion_error", "perspective_error"),
        "object_deformation_or_redundancy": ("object_deformation", "object_redundancy"),
        "action_and_interaction_distortion": ("interaction_distortion",),
        "miscellaneous": ("text_anomaly", "local_artifact"),
    },
    name="genblemish",
)

# EditFHF's two region kinds; flaw types inside them are free text in the paper.
EDITFHF_FLAW_TYPES = ("artifact", "editing_failure")
