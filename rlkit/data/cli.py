"""`rlkit data ...`: build the synthetic benchmarks and summarise datasets saved with ``save_to_disk``.

``datasets`` is imported inside the command that loads a saved dataset, so `rlkit data --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rlkit.data.lightroom_folder import FileReport, records_from_lightroom
from rlkit.data.records import records_to_dataset
from rlkit.data.synth import build_blemish, build_retoucheval

if TYPE_CHECKING:
    import datasets

__all__ = ["register", "dataset_stats", "preview_png"]


def _build(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        print(f"error: {out} exists and is not empty (pass --overwrite to replace it)")
        return 2
    photos = args.photos.split(",") if args.photos else None
    try:
        if args.kind == "retoucheval":
            ds = build_retoucheval(args.n, args.seed, size=args.size or 128, photos=photos, progress=True)
        else:
            ds = build_blemish(args.n, args.seed, size=args.size or 256, photos=photos, progress=True)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}")
        return 2
    ds.save_to_disk(str(out))
    png = preview_png(ds, out / "preview.png")
    print(f"wrote {args.kind} ({_rows(ds)}) to {out}; preview: {png}")
    return 0


def _rows(ds: datasets.Dataset | datasets.DatasetDict) -> str:
    if hasattr(ds, "keys"):
        return ", ".join(f"{k}: {len(v)} rows" for k, v in ds.items())
    return f"{len(ds)} rows"


def preview_png(ds: datasets.Dataset | datasets.DatasetDict, path: str | Path, k: int = 4) -> Path:
    """A PNG grid of the first ``k`` items per split: before|after pairs, or images with their regions circled."""
    splits = dict(ds.items()) if hasattr(ds, "keys") else {"": ds}
    rows = []
    for _, d in splits.items():
        tiles = []
        for ex in d.select(range(min(k, len(d)))):
            if "before" in ex:
                pair = [ex["before"], ex["after"]] if ex.get("after") is not None else [ex["before"]]
                tiles += [im.convert("RGB") for im in pair]
            elif "image" in ex:
                im = ex["image"].convert("RGB").copy()
                draw = ImageDraw.Draw(im)
                r = im.height / 20
                for reg in ex.get("regions") or []:
                    rr = reg.get("radius") or r
                    draw.ellipse([reg["x"] - rr, reg["y"] - rr, reg["x"] + rr, reg["y"] + rr], outline=(255, 0, 0), width=2)
                tiles.append(im)
        if tiles:
            rows.append(tiles)
    if not rows:
        raise ValueError("preview_png: nothing to show (no 'before' or 'image' column)")
    th = 128
    scaled = [[t.resize((max(1, round(t.width * th / t.height)), th)) for t in r] for r in rows]
    width = max(sum(t.width for t in r) + 4 * (len(r) - 1) for r in scaled)
    canvas = Image.new("RGB", (width, len(scaled) * (th + 4)), (255, 255, 255))
    for i, r in enumerate(scaled):
        x = 0
        for t in r:
            canvas.paste(t, (x, i * (th + 4)))
            x += t.width + 4
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def dataset_stats(ds: datasets.Dataset | datasets.DatasetDict) -> dict[str, Any]:
    """Summary of a Dataset / DatasetDict: rows, columns, and per-schema counts (regions, categories, params)."""
    splits = dict(ds.items()) if hasattr(ds, "keys") else {"data": ds}
    out: dict[str, Any] = {}
    for name, d in splits.items():
        s: dict[str, Any] = {"rows": len(d), "columns": list(d.column_names)}
        if "regions" in d.column_names:
            regions = d["regions"]
            cats = Counter(r["category"] for rs in regions for r in rs)
            s["regions"] = sum(len(rs) for rs in regions)
            s["regions_per_image"] = round(s["regions"] / max(1, len(d)), 3)
            words = [len(r["description"].split()) for rs in regions for r in rs]
            s["description_words_mean"] = round(sum(words) / max(1, len(words)), 2)
            s["categories"] = dict(cats.most_common())
        for col in ("artifact_regions", "failure_regions"):
            if col in d.column_names:
                s[col] = sum(len(rs) for rs in d[col])
        if "program" in d.column_names:
            used = Counter()
            for text in d["program"]:
                prog = json.loads(text) if text else {}
                used.update(k for k in prog if k != "local")
                for la in prog.get("local", []):
                    used.update(f"local.{k}" for k in la.get("params", {}))
            s["program_params"] = dict(used.most_common())
        if "instructions" in d.column_names:
            lens = [len(v.split()) for ins in d["instructions"] for v in ins]
            s["instruction_words_mean"] = round(sum(lens) / max(1, len(lens)), 2)
        out[name] = s
    return out


def _stats(args: argparse.Namespace) -> int:
    import datasets  # deferred: ~1.1 s to import, and only `stats` reads a datasets folder

    path = Path(args.path)
    if not path.exists():
        print(f"error: {path} does not exist")
        return 2
    try:
        ds = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {path} is not a dataset saved with save_to_disk ({exc})")
        return 2
    stats = dataset_stats(ds)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    console = Console()
    for name, s in stats.items():
        t = Table(title=f"{path.name} / {name}", show_header=False)
        for k, v in s.items():
            t.add_row(k, ", ".join(f"{a}: {b}" for a, b in v.items()) if isinstance(v, dict)
                      else ", ".join(v) if isinstance(v, list) else str(v))
        console.print(t)
    return 0


def _from_lightroom(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        print(f"error: {out} exists and is not empty (pass --overwrite to replace it)")
        return 2
    console = Console(stderr=True)

    def show(r: FileReport) -> None:
        mark = "[green]ok[/green]" if r.ok else "[red]skipped[/red]"
        console.print(f"{mark} {escape(r.photo.name)}" + (f" ({escape(r.settings)})" if r.settings else "")
                      + (f": {escape(r.error)}" if r.error else ""))
        for w in r.warnings:
            console.print(f"   [yellow]WARNING[/yellow] {escape(w)}")

    try:
        result = records_from_lightroom(args.folder, size=args.size, recursive=args.recursive, on_file=show)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    reports = result.reports
    summary = Table(title=f"rlkit data from-lightroom {args.folder}")
    for col in ("photos", "records", "skipped", "with warnings", "unsupported settings"):
        summary.add_column(col)
    summary.add_row(str(len(reports)), str(len(result.records)), str(sum(not r.ok for r in reports)),
                    str(sum(bool(r.warnings) for r in reports)), str(sum(len(r.unsupported) for r in reports)))
    console.print(summary)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(
        [{"photo": str(r.photo), "settings": r.settings, "record": r.record_id, "error": r.error,
          "warnings": r.warnings, "unsupported": r.unsupported} for r in reports], indent=1), encoding="utf-8")
    if not result.records:
        print(f"error: no photo in {args.folder} had Lightroom settings; per-file report: {out / 'report.json'}")
        return 2
    ds = records_to_dataset(result.records)
    ds.save_to_disk(str(out / "dataset"))
    png = preview_png(ds, out / "preview.png")
    print(f"wrote {len(result.records)} retouch records to {out / 'dataset'} (instructions empty, to annotate); "
          f"per-file report: {out / 'report.json'}; preview: {png}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `rlkit data build`, `rlkit data stats` and `rlkit data from-lightroom`."""
    data = subparsers.add_parser("data", help="build synthetic benchmarks and inspect datasets",
                                 description="Build the synthetic RetouchEval-style and GenBlemish-style "
                                 "datasets from the bundled photos, print statistics of saved datasets, and turn "
                                 "a folder of Lightroom-edited photos into retouch records.")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    b = sub.add_parser("build", help="build a synthetic dataset and save it with save_to_disk",
                       description="Build a synthetic dataset from the bundled photos (no download) and save it "
                       "to OUT with datasets' save_to_disk (load it with datasets.load_from_disk). Also writes "
                       "OUT/preview.png. retoucheval: quality/style/local splits of N items each (photo, hidden "
                       "expert program, target image, three instruction variants). blemish: N photos with 1-3 "
                       "local distortions of known category at disks of radius H/20.")
    b.add_argument("kind", choices=["retoucheval", "blemish"], help="which dataset to build")
    b.add_argument("out", metavar="OUT", help="output folder")
    b.add_argument("--n", type=int, default=20, help="items (per split for retoucheval); default 20")
    b.add_argument("--seed", type=int, default=0, help="random seed (the build is deterministic); default 0")
    b.add_argument("--size", type=int, default=None,
                   help="short side of the photos in pixels (default 128 for retoucheval, 256 for blemish)")
    b.add_argument("--photos", default=None, help="comma-separated bundled photo names (see `rlkit photos`)")
    b.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    b.set_defaults(func=_build)
    s = sub.add_parser("stats", help="summarise a dataset saved with save_to_disk",
                       description="Print rows, columns and schema-specific counts (regions per image, category "
                       "distribution, program parameters used, instruction lengths) of a saved Dataset/DatasetDict.")
    s.add_argument("path", metavar="PATH", help="folder written by save_to_disk (e.g. by `rlkit data build`)")
    s.add_argument("--json", action="store_true", help="print JSON instead of tables")
    s.set_defaults(func=_stats)
    lr = sub.add_parser("from-lightroom", help="turn a folder of Lightroom-edited photos into retouch records",
                        description="Read every photo in FOLDER (JPEG, PNG, TIFF; raw files when rawpy is "
                        "installed) with its Lightroom settings (a NAME.xmp sidecar, or the XMP embedded in the "
                        "file), and save RetouchRecords (before = the photo, program = the imported edit, after = "
                        "rlkit's rendering of it, an empty instruction to annotate) to OUT/dataset with "
                        "save_to_disk. Prints per file what could not be represented and writes it to "
                        "OUT/report.json, plus OUT/preview.png.")
    lr.add_argument("folder", metavar="FOLDER", help="folder of photos with their Lightroom settings")
    lr.add_argument("--out", required=True, metavar="OUT", help="output folder")
    lr.add_argument("--size", type=int, default=None,
                    help="downsize so the shorter side is at most SIZE pixels (default: keep the full size)")
    lr.add_argument("--recursive", action="store_true", help="also read sub-folders")
    lr.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    lr.set_defaults(func=_from_lightroom)
    data.set_defaults(func=lambda a: (data.print_help(), 2)[1])
