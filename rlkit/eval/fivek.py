"""MIT-Adobe FiveK in its usual folder layout, test splits read from a file, and a synthetic stand-in.

The enhancement literature evaluates on a few hundred test photos against expert C's rendition (RetouchIQ
uses 400 randomly chosen ones, others the 500-image split of Hu et al.); the lists differ between papers,
so the split is always a file (one image name per line, with or without extension), never hard-coded.

Layout::

    ROOT/input/<name>.{png,jpg,tif}      the photos given to the system (names: input, inputs, raw, original,
                                         source; case-insensitive)
    ROOT/expertC/<name>.{png,jpg,tif}    expert C's rendition (expertC, expert_c, expertc_gt, c, target, gt)
    ROOT/programs.jsonl  (optional)      {"name": ..., "program": {...}} expert programs, when known

:func:`make_synthetic_fivek` writes that layout from the bundled photos (degraded input, corrected "expert"
rendition, and its program), for CI and the docs example.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rlkit.data import build_retoucheval, open_image
from rlkit.eval.retouch import FIVEK_INSTRUCTION, RetouchSample
from rlkit.ops import EditProgram

__all__ = ["load_fivek", "make_synthetic_fivek", "read_split"]

_INPUT_DIRS = ("input", "inputs", "raw", "original", "source")
_EXPERT_DIRS = ("expertc", "expert_c", "expertc_gt", "c", "target", "gt")
_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def _find_dir(root: Path, names: Sequence[str], what: str, given: str | None) -> Path:
    if given is not None:
        d = root / given
        if not d.is_dir():
            raise FileNotFoundError(f"{what} folder {d} does not exist")
        return d
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name.lower() in names:
            return d
    raise FileNotFoundError(f"{root}: no {what} folder (looked for {list(names)}, case-insensitive); "
                            f"found {[d.name for d in root.iterdir() if d.is_dir()]}")


def _images(d: Path) -> dict[str, Path]:
    return {f.stem: f for f in sorted(d.iterdir()) if f.suffix.lower() in _EXT}


def read_split(path: str | Path) -> list[str]:
    """Image names (stems) from a split file: one per line, blank lines and ``#`` comments skipped."""
    names = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(Path(line).stem)
    if not names:
        raise ValueError(f"split file {path} lists no images")
    return names


def load_fivek(root: str | Path, split_file: str | Path | None = None, *, input_dir: str | None = None,
               expert_dir: str | None = None, limit: int | None = None) -> list[RetouchSample]:
    """Samples (split ``"fivek"``) for the images named in ``split_file`` (all paired images without it)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MIT-Adobe5K folder {root} does not exist")
    inputs = _images(_find_dir(root, _INPUT_DIRS, "input", input_dir))
    experts = _images(_find_dir(root, _EXPERT_DIRS, "expert", expert_dir))
    names = read_split(split_file) if split_file is not None else sorted(set(inputs) & set(experts))
    missing = [n for n in names if n not in inputs or n not in experts]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) of the split are missing from {root} "
                                f"(input or expert), e.g. {missing[:5]}")
    programs: dict[str, EditProgram] = {}
    pj = root / "programs.jsonl"
    if pj.is_file():
        for k, line in enumerate(pj.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    d = json.loads(line)
                    programs[Path(d["name"]).stem] = EditProgram.from_dict(d["program"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{pj}:{k}: bad line ({exc})") from None
    out = []
    for n in names[:limit]:
        before, after = open_image(inputs[n]), open_image(experts[n])
        if before.size != after.size:
            raise ValueError(f"{n}: input is {before.size}, expert rendition {after.size}; they must match")
        out.append(RetouchSample(n, "fivek", before, after, FIVEK_INSTRUCTION, programs.get(n)))
    return out


def make_synthetic_fivek(out_dir: str | Path, n: int = 8, *, seed: int = 0, size: int = 96) -> Path:
    """Write a FiveK-layout stand-in from the bundled photos: ``input/`` (degraded photos), ``expertC/`` (the
    corrections an expert program makes), ``programs.jsonl`` and a ``test.txt`` split of every image."""
    out = Path(out_dir)
    (out / "input").mkdir(parents=True, exist_ok=True)
    (out / "expertC").mkdir(parents=True, exist_ok=True)
    ds = build_retoucheval(n, seed, size=size, splits=("quality",))["quality"]
    names = []
    with open(out / "programs.jsonl", "w", encoding="utf-8") as fh:
        for k, ex in enumerate(ds):
            name = f"a{k:04d}"
            ex["before"].convert("RGB").save(out / "input" / f"{name}.png")
            ex["after"].convert("RGB").save(out / "expertC" / f"{name}.png")
            fh.write(json.dumps({"name": name, "program": json.loads(ex["program"])}) + "\n")
            names.append(name)
    (out / "test.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return out
