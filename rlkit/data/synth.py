"""Synthetic benchmarks built from the bundled real photos (no download).

- :func:`build_retoucheval`: RetouchEval-style quality / style / local splits. Each item is a photo
  (``before``), a hidden expert program, the target ``after = apply_program(before, program)`` and three
  instruction variants templated from the program. Quality items start from a degraded photo (exposure,
  contrast, colour-cast faults) and the program corrects it; style items apply a look (warm golden, moody,
  black and white, ...); local items use masked edits (radial, linear-gradient and brush masks).
- :func:`build_blemish`: GenBlemish-style distortion set: local distortions of known category (swirl
  warps, bulges, colour blotches, duplicated texture, ghost duplicates, blur / noise / blocking) placed at
  disks of radius H/20, with categories from the taxonomy and templated descriptions. The undistorted
  photo is kept as ``clean_image``; masks and saliency maps derive from the regions.
"""

from __future__ import annotations

import colorsys
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image
from rich.progress import track

from rlkit.data.instructions import instructions_for
from rlkit.data.photos import list_photos, load_photo
from rlkit.data.records import BlemishRecord, RetouchRecord, records_to_dataset
from rlkit.data.regions import Region, default_radius
from rlkit.data.taxonomy import GENBLEMISH_TAXONOMY, Taxonomy
from rlkit.ops import (
    BrushMask,
    EditProgram,
    LinearMask,
    LocalAdjustment,
    RadialMask,
    apply_program,
    to_pil,
    to_tensor,
)

if TYPE_CHECKING:
    import datasets

T = TypeVar("T")

__all__ = ["build_retoucheval", "build_blemish", "RETOUCHEVAL_SPLITS", "DISTORTIONS", "default_photos"]

RETOUCHEVAL_SPLITS = ("quality", "style", "local")


def default_photos() -> list[str]:
    """The bundled colour photos (greyscale ones are skipped: colour edits need colour)."""
    return [p.name for p in list_photos() if not p.greyscale and p.name not in ("hubble", "retina", "ihc")]


def _progress(it: Iterable[T], total: int, desc: str, show: bool) -> Iterable[T]:
    if not show:
        return it
    return track(it, total=total, description=desc)


# ------------------------------------------------------------------ RetouchEval

_FAULTS: dict[str, tuple[str, float, float]] = {  # fault -> (param, lo, hi) applied to make the "before"
    "underexposed": ("exposure", -1.2, -0.6),
    "overexposed": ("exposure", 0.4, 0.9),
    "flat": ("contrast", -45.0, -25.0),
    "too cool": ("temperature", -40.0, -20.0),
    "too warm": ("temperature", 20.0, 40.0),
    "green-tinted": ("tint", -35.0, -15.0),
    "dull": ("vibrance", -50.0, -30.0),
}

_STYLES: dict[str, dict[str, tuple[float, float]]] = {
    "warm golden-hour": {"temperature": (25, 45), "vibrance": (10, 30), "highlights": (-30, -10), "exposure": (0.1, 0.4)},
    "moody dark": {"exposure": (-0.9, -0.4), "contrast": (20, 40), "saturation": (-40, -20), "vignette_amount": (-50, -25)},
    "black and white": {"saturation": (-100, -100), "contrast": (15, 35), "clarity": (10, 30)},
    "cool cinematic": {"temperature": (-35, -15), "contrast": (15, 30), "shadows": (-30, -10), "dehaze": (5, 20)},
    "faded vintage": {"blacks": (25, 45), "contrast": (-30, -15), "saturation": (-30, -15), "temperature": (10, 25)},
    "bright and airy": {"exposure": (0.4, 0.9), "shadows": (20, 45), "contrast": (-25, -10), "vibrance": (5, 20)},
    "vivid and punchy": {"vibrance": (30, 55), "saturation": (10, 25), "contrast": (20, 35), "clarity": (10, 25)},
}

_LOCAL_EDITS: dict[str, dict[str, tuple[float, float]]] = {
    "brighten": {"exposure": (0.5, 1.2)},
    "darken": {"exposure": (-1.2, -0.5)},
    "lift the shadows in": {"shadows": (30, 60)},
    "warm": {"temperature": (25, 50)},
    "cool": {"temperature": (-50, -25)},
    "saturate": {"saturation": (30, 60)},
    "desaturate": {"saturation": (-70, -40)},
    "add clarity to": {"clarity": (30, 60), "contrast": (10, 25)},
}


def _draw(rng: random.Random, ranges: dict[str, tuple[float, float]]) -> dict[str, float]:
    out = {}
    for k, (a, b) in ranges.items():
        v = rng.uniform(a, b)
        out[k] = round(v, 2) if k == "exposure" else float(round(v))
    return out


#: (degrading program or None, expert program, intent, where) of one RetouchEval item
_Item = tuple[EditProgram | None, EditProgram, str, str]


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _quality_item(rng: random.Random) -> _Item:
    want = rng.randint(1, 3)
    faults: list[str] = []
    degrade: dict[str, float] = {}
    for f in rng.sample(sorted(_FAULTS), len(_FAULTS)):  # at most one fault per slider (no "under- and over-exposed")
        p, a, b = _FAULTS[f]
        if p not in degrade and len(faults) < want:
            faults.append(f)
            degrade[p] = round(rng.uniform(a, b), 2)
    fix = {p: round(-v * rng.uniform(0.85, 1.0), 2) if p == "exposure" else float(round(-v * rng.uniform(0.85, 1.0)))
           for p, v in degrade.items()}
    fix["clarity"] = float(rng.randint(5, 15))
    intent = "Improve the photo (it looks " + _join_words(faults) + ")"
    return EditProgram(degrade), EditProgram(fix), intent, ""


def _style_item(rng: random.Random) -> _Item:
    name = rng.choice(sorted(_STYLES))
    return None, EditProgram(_draw(rng, _STYLES[name])), f"Give it a {name} look", ""


def _local_item(rng: random.Random) -> _Item:
    kind = rng.choice(["radial", "top", "bottom", "brush"])
    if kind == "radial":
        cx, cy = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65)
        mask, where = RadialMask(cx, cy, rng.uniform(0.2, 0.35), rng.uniform(0.2, 0.35), feather=60.0), "in the centre"
    elif kind == "top":
        mask, where = LinearMask(0.5, rng.uniform(0.45, 0.6), 0.5, 0.0), "at the top of the frame"
    elif kind == "bottom":
        mask, where = LinearMask(0.5, rng.uniform(0.4, 0.55), 0.5, 1.0), "at the bottom of the frame"
    else:
        x = rng.choice([0.25, 0.75])
        mask = BrushMask(((x, 0.5, 0.18), (x, 0.3, 0.12)), feather=50.0)
        where = "on the left side" if x < 0.5 else "on the right side"
    verb = rng.choice(sorted(_LOCAL_EDITS))
    params = _draw(rng, _LOCAL_EDITS[verb])
    return None, EditProgram({}, {}, [LocalAdjustment(mask, params)]), "", where


_ITEMS: dict[str, Callable[[random.Random], _Item]] = {"quality": _quality_item, "style": _style_item, "local": _local_item}


def _split_records(split: str, n: int, seed: int, size: int, photos: Sequence[str], progress: bool) -> list[RetouchRecord]:
    split_idx = RETOUCHEVAL_SPLITS.index(split)
    recs = []
    for i in _progress(range(n), n, f"retoucheval/{split}", progress):
        rng = random.Random(seed * 1_000_003 + split_idx * 10_007 + i)
        photo = photos[rng.randrange(len(photos))]
        img = to_tensor(load_photo(photo, size=size))
        degrade, program, intent, where = _ITEMS[split](rng)
        if degrade is not None:
            img = to_tensor(to_pil(apply_program(img, degrade))[0])  # the stored 8-bit "before" is what is edited
        params = program.params if program.params else program.local[0].params
        ins = instructions_for(params, intent=intent, where=where)
        after = apply_program(img, program)
        before_pil, after_pil = to_pil(img)[0], to_pil(after)[0]
        reasoning = (f"The user asks: \"{ins[0]}\" The main adjustments are "
                     + ", ".join(f"{k} {v:+g}" for k, v in params.items())
                     + (f", applied only {where}" if where else "") + ".")
        recs.append(RetouchRecord(before_pil, after_pil, ins, program, reasoning, split, f"{split}-{i:04d}-{photo}"))
    return recs


def build_retoucheval(
    n: int,
    seed: int = 0,
    *,
    size: int = 128,
    photos: Sequence[str] | None = None,
    splits: Sequence[str] = RETOUCHEVAL_SPLITS,
    progress: bool = False,
) -> datasets.DatasetDict:
    """A RetouchEval-style ``datasets.DatasetDict`` with ``n`` items per split (quality / style / local).

    Photos are resized to ``size`` px on the short side. Deterministic for a given seed. Columns follow
    ``RetouchRecord.features()`` (``program`` holds the hidden expert program as canonical JSON).
    """
    import datasets  # deferred: datasets adds ~1.1 s to `import rlkit.data`

    if n < 1:
        raise ValueError(f"build_retoucheval: n must be >= 1, got {n}")
    bad = [s for s in splits if s not in RETOUCHEVAL_SPLITS]
    if bad:
        raise ValueError(f"build_retoucheval: unknown split(s) {bad}; expected some of {RETOUCHEVAL_SPLITS}")
    photos = list(photos) if photos else default_photos()
    for p in photos:
        load_photo(p)  # KeyError naming the available photos
    return datasets.DatasetDict(
        {s: records_to_dataset(_split_records(s, n, seed, size, photos, progress)) for s in splits})


# ------------------------------------------------------------------ blemish distortions


def _weight(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.hypot(xx - cx, yy - cy)
    return np.clip((r - d) / (0.35 * r), 0.0, 1.0)[..., None], d


def _sample(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    from scipy.ndimage import map_coordinates  # deferred: scipy.ndimage adds ~0.4 s to `import rlkit.data`

    return np.stack([map_coordinates(img[..., c], [ys, xs], order=1, mode="reflect") for c in range(3)], -1)


def _swirl(img, cx, cy, r, rng):
    h, w, _ = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.hypot(xx - cx, yy - cy)
    theta = rng.choice([-1, 1]) * rng.uniform(2.0, 3.5) * np.clip(1 - d / r, 0, 1) ** 2
    ang = np.arctan2(yy - cy, xx - cx) + theta
    return _sample(img, cy + d * np.sin(ang), cx + d * np.cos(ang))


def _bulge(img, cx, cy, r, rng):
    h, w, _ = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.hypot(xx - cx, yy - cy)
    k = rng.choice([0.45, 1.9])  # < 1 bulges (magnifies), > 1 pinches
    scale = np.where(d < r, (np.clip(d / r, 1e-6, 1.0)) ** (k - 1.0), 1.0)
    return _sample(img, cy + (yy - cy) * scale, cx + (xx - cx) * scale)


def _blotch(img, cx, cy, r, rng):
    colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0)))
    return 0.35 * img + 0.65 * colour


def _offset(h, w, cx, cy, r, rng, lo=2.5, hi=4.0):
    for _ in range(20):
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(lo, hi) * r
        ox, oy = cx + dist * np.cos(ang), cy + dist * np.sin(ang)
        if r <= ox <= w - 1 - r and r <= oy <= h - 1 - r:
            return ox - cx, oy - cy
    return (w / 2 - cx, h / 2 - cy) if abs(w / 2 - cx) + abs(h / 2 - cy) > r else (r * 2.5, 0.0)


def _texture_copy(img, cx, cy, r, rng):
    h, w, _ = img.shape
    dx, dy = _offset(h, w, cx, cy, r, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    patch = _sample(img, yy + dy, xx + dx)
    return np.concatenate([patch[..., :1], patch[..., 1:]], -1)


def _ghost(img, cx, cy, r, rng):
    h, w, _ = img.shape
    dx, dy = _offset(h, w, cx, cy, r, rng, 1.0, 1.6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return 0.5 * img + 0.5 * _sample(img, yy + dy, xx + dx)


def _artifact(img, cx, cy, r, rng):
    from scipy.ndimage import gaussian_filter  # deferred: scipy.ndimage adds ~0.4 s to `import rlkit.data`

    mode = rng.choice(["blur", "noise", "blocks"])
    if mode == "blur":
        return np.stack([gaussian_filter(img[..., c], sigma=max(1.5, r / 3)) for c in range(3)], -1)
    if mode == "noise":
        return np.clip(img + np.random.default_rng(rng.randrange(2**31)).normal(0, 0.18, img.shape), 0, 1)
    b = max(2, int(round(r / 2)))
    h, w, _ = img.shape
    small = img[::b, ::b]
    return np.repeat(np.repeat(small, b, 0), b, 1)[:h, :w]


# category -> (distortion, description templates); {where} is filled with the region's position
DISTORTIONS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "object_deformation": (_swirl, ("the structure {where} is twisted into an unnatural swirl",
                                    "shapes {where} are warped and deformed")),
    "proportion_error": (_bulge, ("the area {where} is stretched out of proportion",
                                  "the detail {where} looks bulged or pinched, with wrong proportions")),
    "color_inconsistency": (_blotch, ("a colour blotch {where} does not match the surrounding colours",
                                      "the colour {where} is inconsistent with the rest of the image")),
    "texture_inconsistency": (_texture_copy, ("the texture {where} is copied from elsewhere and does not fit",
                                              "a patch {where} repeats texture from another part of the image")),
    "object_redundancy": (_ghost, ("a semi-transparent duplicate appears {where}",
                                   "a ghosted copy of nearby content is overlaid {where}")),
    "local_artifact": (_artifact, ("the region {where} is corrupted by blur, noise or blocking",
                                   "a local rendering artifact degrades the detail {where}")),
}


def _detail_map(img: np.ndarray, r: float) -> np.ndarray:
    """Sampling probabilities for region centres: blurred gradient magnitude, zero within 2r of the border."""
    from scipy.ndimage import gaussian_filter, sobel  # deferred: adds ~0.4 s to `import rlkit.data`

    g = img.mean(-1)
    e = gaussian_filter(np.hypot(sobel(g, 0), sobel(g, 1)), sigma=max(1.0, r)) + 1e-6
    m = int(np.ceil(2 * r))
    e[:m], e[-m:], e[:, :m], e[:, -m:] = 0, 0, 0, 0
    if e.sum() <= 0:
        raise ValueError(f"build_blemish: image of size {img.shape[1]}x{img.shape[0]} is too small for disks of radius {r:g}")
    return e / e.sum()


def _where(cx: float, cy: float, w: int, h: int) -> str:
    v = "upper" if cy < h / 3 else ("lower" if cy > 2 * h / 3 else "middle")
    s = "left" if cx < w / 3 else ("right" if cx > 2 * w / 3 else "centre")
    if v == "middle" and s == "centre":
        return "in the centre"
    return f"in the {v} {s}" if v != "middle" else f"on the {s}"


def build_blemish(
    n: int,
    seed: int = 0,
    *,
    size: int = 256,
    regions: tuple[int, int] = (1, 3),
    categories: Sequence[str] | None = None,
    taxonomy: Taxonomy = GENBLEMISH_TAXONOMY,
    photos: Sequence[str] | None = None,
    progress: bool = False,
) -> datasets.Dataset:
    """A GenBlemish-style ``datasets.Dataset`` of ``n`` distorted photos with 1-3 labelled disk regions each.

    ``categories`` (default: every taxonomy category that has a synthetic distortion in ``DISTORTIONS``)
    must belong to ``taxonomy``. Disks have radius H/20 and do not overlap. Columns follow
    ``BlemishRecord.features()``.
    """
    if n < 1:
        raise ValueError(f"build_blemish: n must be >= 1, got {n}")
    if not 1 <= regions[0] <= regions[1]:
        raise ValueError(f"build_blemish: regions must satisfy 1 <= min <= max, got {regions}")
    cats = list(categories) if categories is not None else [c for c in taxonomy.categories if c in DISTORTIONS]
    for c in cats:
        taxonomy.canonical(c)  # KeyError naming the taxonomy's categories
        if c not in DISTORTIONS:
            raise ValueError(f"build_blemish: no synthetic distortion for category {c!r}; available: {sorted(DISTORTIONS)}")
    if not cats:
        raise ValueError("build_blemish: no category of the taxonomy has a synthetic distortion")
    photos = list(photos) if photos else default_photos()
    recs = []
    for i in _progress(range(n), n, "blemish", progress):
        rng = random.Random(seed * 1_000_003 + 77 + i)
        photo = photos[rng.randrange(len(photos))]
        clean = load_photo(photo, size=size)
        img = np.asarray(clean, dtype=np.float64) / 255.0
        h, w, _ = img.shape
        r = default_radius(h)
        k = rng.randint(*regions)
        # centres favour detailed areas (a warp on flat sky is invisible): p ~ blurred gradient energy
        prob = _detail_map(img, r)
        nrng = np.random.default_rng(rng.randrange(2**31))
        centres: list[tuple[float, float]] = []
        for flat in nrng.choice(prob.size, size=200, p=prob.ravel()):
            if len(centres) == k:
                break
            c = (float(flat % w), float(flat // w))
            if all(np.hypot(c[0] - a, c[1] - b) > 2.2 * r for a, b in centres):
                centres.append(c)
        regs = []
        for cx, cy in centres:
            cat = rng.choice(cats)
            fn, templates = DISTORTIONS[cat]
            wgt, _ = _weight(h, w, cx, cy, r)
            img = wgt * np.clip(fn(img, cx, cy, r, rng), 0, 1) + (1 - wgt) * img
            regs.append(Region((cx, cy), cat, rng.choice(templates).format(where=_where(cx, cy, w, h))))
        out = Image.fromarray(np.clip(np.round(img * 255), 0, 255).astype(np.uint8), "RGB")
        info = {p.name: p for p in list_photos()}[photo]
        prompt = f"a photo: {info.description}" if info.description else f"a photo of {photo}"
        recs.append(BlemishRecord(out, prompt, regs, f"blemish-{i:05d}-{photo}", clean))
    return records_to_dataset(recs)
