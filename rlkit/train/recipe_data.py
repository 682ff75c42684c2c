"""Load a recipe's dataset: rlkit's synthetic builders, the quickstart photos, a saved dataset, JSON(L), a hub id.

Every source ends as two lists of row dicts (train, test) with PIL images resized so their longer side
is ``image_size``; :mod:`rlkit.train.prompts` turns them into trl rows.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from PIL import Image

from rlkit.data import build_blemish, build_retoucheval
from rlkit.train.quickstart import HELDOUT_PHOTOS, TRAIN_PHOTOS, build_quickstart_rows

__all__ = ["load_rows", "resize_images", "retoucher_row", "reasoner_row"]

_IMAGE_KEYS = ("image", "source_image", "target_image")


def resize_images(row: Mapping[str, object], image_size: int) -> dict[str, object]:
    """Copy of ``row`` with its PIL images resized so the longer side is ``image_size`` (aspect kept)."""
    out = dict(row)
    for k in _IMAGE_KEYS:
        im = out.get(k)
        if isinstance(im, Image.Image):
            w, h = im.size
            s = image_size / max(w, h)
            if s != 1:
                out[k] = im.convert("RGB").resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
            else:
                out[k] = im.convert("RGB")
    return out


def retoucher_row(row: Mapping[str, object]) -> dict[str, object]:
    """RetouchRecord columns (``before``/``after``) under the names the recipe uses (``image``/``target_image``)."""
    out = dict(row)
    if "image" not in out and "before" in out:
        out["image"] = out.pop("before")
    if "target_image" not in out and out.get("after") is not None:
        out["target_image"] = out.pop("after")
    out.pop("after", None)
    return out


def reasoner_row(row: Mapping[str, object], image_size: int) -> dict[str, object]:
    """A BlemishRecord row (``image``, ``prompt``, ``regions`` [{x, y, radius, category, description}]) as the
    reasoner's: ``boxes`` (scaled with the image), ``prompt_text`` and ``reference_diagnosis``."""
    out = dict(row)
    if "reference_diagnosis" in out:
        return out
    regions = out.get("regions")
    if not regions:
        raise ValueError(f"reasoner row {out.get('id', '')!r}: needs 'reference_diagnosis' or non-empty 'regions' "
                         f"(columns: {sorted(out)})")
    image = out.get("image")
    w, h = image.size
    s = image_size / max(w, h)
    boxes, ref = [], []
    for j, r in enumerate(regions):
        try:
            x, y, rad = float(r["x"]), float(r["y"]), float(r.get("radius") or h / 20)
            cat = str(r["category"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"reasoner row {out.get('id', '')!r}, region {j}: needs x, y, category ({exc})") from exc
        boxes.append([round((x - rad) * s), round((y - rad) * s), round((x + rad) * s), round((y + rad) * s)])
        ref.append({"flaw_type": cat, "description": str(r.get("description") or "")})
    out["boxes"] = boxes
    out["reference_diagnosis"] = ref
    out["prompt_text"] = out.pop("prompt", None)
    out.pop("regions", None)
    out.pop("clean_image", None)
    return out


def _as_splits(ds: Dataset | DatasetDict | Mapping[str, Dataset]) -> dict[str, Dataset]:
    """A Dataset -> {"train": ds}; a DatasetDict (or dict of datasets) -> itself as a dict."""
    if isinstance(getattr(ds, "column_names", None), list):
        return {"train": ds}
    return dict(ds)


def _seeded_cut(rows: list[dict[str, object]], seed: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    n_test = max(1, len(rows) // 10) if len(rows) > 1 else 0
    return rows[n_test:], rows[:n_test]


def _synthetic(task: str, size: int, seed: int) -> Dataset | DatasetDict:
    if task == "retoucher":
        return build_retoucheval(size, seed)
    return build_blemish(size, seed)


def load_rows(name: str, *, task: str, train_split: str = "train", test_split: str = "test",
              image_size: int = 448, size: int = 64, seed: int = 0, max_train_samples: int | None = None
              ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(train rows, test rows) of dataset ``name`` for ``task`` in {'retoucher', 'reasoner'}.

    ``name``: ``"synthetic"`` (rlkit.data builders: RetouchEval-style for the retoucher, GenBlemish-style for
    the reasoner), ``"quickstart"`` (the quickstart's bundled-photo instructions; retoucher only), a folder
    written by ``save_to_disk``, a ``.json``/``.jsonl`` file, or a hub id. A source with one split is cut
    90/10 (seeded) into train and test.
    """
    if task not in ("retoucher", "reasoner"):
        raise ValueError(f"task must be 'retoucher' or 'reasoner', got {task!r}")
    if name == "quickstart":
        if task != "retoucher":
            raise ValueError("dataset_name='quickstart' is the retoucher's instruction dataset")
        n = max(1, size // (4 * len(TRAIN_PHOTOS)))
        train = build_quickstart_rows(TRAIN_PHOTOS, n, image_size=image_size, seed=seed)
        test = build_quickstart_rows(HELDOUT_PHOTOS, max(1, n // 2), image_size=image_size, seed=seed + 100)
    else:
        if name == "synthetic":
            ds = _synthetic(task, size, seed)
        elif Path(name).is_dir():
            ds = load_from_disk(name)
        elif name.endswith((".json", ".jsonl")):
            if not Path(name).is_file():
                raise FileNotFoundError(f"dataset_name={name!r}: no such file")
            ds = load_dataset("json", data_files=name)
        else:
            ds = load_dataset(name)
        splits = _as_splits(ds)
        if train_split in splits:
            train = [dict(r) for r in splits[train_split]]
            if test_split in splits:
                test = [dict(r) for r in splits[test_split]]
            else:
                train, test = _seeded_cut(train, seed)
        else:
            # e.g. RetouchEval's quality/style/local splits: train on all of them, keep a seeded 10% out
            train, test = _seeded_cut([dict(r) for sp in splits.values() for r in sp], seed)
    if max_train_samples is not None:
        train = train[:max_train_samples]
    if task == "retoucher":
        train, test = [retoucher_row(r) for r in train], [retoucher_row(r) for r in test]
    else:
        train, test = [reasoner_row(r, image_size) for r in train], [reasoner_row(r, image_size) for r in test]
    if not train:
        raise ValueError(f"dataset {name!r} gave no training rows")
    return [resize_images(r, image_size) for r in train], [resize_images(r, image_size) for r in test]
