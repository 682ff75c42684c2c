"""rlkit.data: the papers' data schemas (HF datasets Features), JSONL loaders, MOS, weak-edit perturbations,
synthetic benchmarks from bundled photos, and the bundled photos themselves.

``datasets`` and ``scipy`` are imported when first used (either would add over a second to ``import rlkit.data``).
"""

from rlkit.data.editfhf_synth import EDITS, FAILURE_TYPES, MOS_RATE, build_editfhf, editfhf_mos
from rlkit.data.loaders import (
    LoadProblem,
    LoadResult,
    RecordError,
    find_jsonl,
    load_blemish,
    load_editfhf,
    load_records,
    load_retouch,
    load_reward_pairs,
)
from rlkit.data.mos import MOSResult, mos_from_ratings, ratings_matrix
from rlkit.data.perturb import (
    WEAK_METRICS,
    WeakEdit,
    describe_changes,
    make_reward_pairs,
    perturb_program,
    weak_edits,
)
from rlkit.data.photos import PhotoInfo, list_photos, load_photo
from rlkit.data.records import (
    MOS_DIMENSIONS,
    BlemishRecord,
    EditFHFRecord,
    RetouchRecord,
    RewardPairRecord,
    dataset_to_records,
    open_image,
    records_to_dataset,
)
from rlkit.data.regions import (
    FlawRegion,
    Region,
    default_radius,
    disk_mask,
    disk_masks,
    saliency_from_regions,
)
from rlkit.data.synth import DISTORTIONS, RETOUCHEVAL_SPLITS, build_blemish, build_retoucheval, default_photos
from rlkit.data.taxonomy import EDITFHF_FLAW_TYPES, GENBLEMISH_TAXONOMY, Taxonomy

__all__ = [
    "load_photo", "list_photos", "PhotoInfo",
    "Region", "FlawRegion", "default_radius", "disk_mask", "disk_masks", "saliency_from_regions",
    "Taxonomy", "GENBLEMISH_TAXONOMY", "EDITFHF_FLAW_TYPES",
    "BlemishRecord", "EditFHFRecord", "RetouchRecord", "RewardPairRecord", "MOS_DIMENSIONS",
    "records_to_dataset", "dataset_to_records", "open_image",
    "LoadProblem", "LoadResult", "RecordError", "find_jsonl",
    "load_blemish", "load_editfhf", "load_retouch", "load_reward_pairs", "load_records",
    "MOSResult", "mos_from_ratings", "ratings_matrix",
    "perturb_program", "describe_changes", "weak_edits", "WeakEdit", "WEAK_METRICS", "make_reward_pairs",
    "build_retoucheval", "build_blemish", "RETOUCHEVAL_SPLITS", "DISTORTIONS", "default_photos",
    "build_editfhf", "editfhf_mos", "EDITS", "FAILURE_TYPES", "MOS_RATE",
]
