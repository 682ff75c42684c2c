"""`rlkit retouch`: apply an edit program (policy text or an XMP sidecar) to a photo file or a bundled photo.

Owned by ``rlkit/cli.py`` (which may import any room): it reads photos from ``rlkit.data`` and renders with
``rlkit.ops``, so it cannot live in ``rlkit.ops`` (ops does not import data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

from rlkit.data import load_photo
from rlkit.ops import (
    EditProgram,
    apply_program,
    export_xmp,
    import_xmp,
    parse_program,
    srgb_to_linear,
    to_pil,
    to_tensor,
)

__all__ = ["register"]


def _load_image(photo: str) -> Image.Image:
    """An image file, or a bundled photo by name (rlkit.data.photos)."""
    p = Path(photo)
    if p.exists():
        return Image.open(p).convert("RGB")
    try:
        return load_photo(photo)
    except KeyError as e:
        raise SystemExit(f"rlkit retouch: {photo!r} is neither an image file nor a bundled photo ({e.args[0]})") \
            from None


def _cmd_retouch(args: argparse.Namespace) -> int:
    if args.xmp:
        try:
            imp = import_xmp(Path(args.xmp))
        except (OSError, ValueError) as e:
            print(f"rlkit retouch: cannot read {args.xmp}: {e}", file=sys.stderr)
            return 2
        program = imp.program
        for w in imp.warnings:
            print(f"WARNING: {args.xmp}: {w}", file=sys.stderr)
        if imp.ignored:
            print(f"ignored XMP keys (no effect on pixels): {', '.join(imp.ignored)}", file=sys.stderr)
    else:
        text = args.program
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                print(f"rlkit retouch: cannot read the program file {text[1:]}: {e}", file=sys.stderr)
                return 2
        res = parse_program(text, args.format, clamp=args.clamp)
        for n in res.notes:
            print(f"clamped: {n}", file=sys.stderr)
        if not res.ok:
            for prob in res.problems:
                print(f"rlkit retouch: program problem {prob}", file=sys.stderr)
            return 2
        program = res.program
    image = _load_image(args.photo)
    x = to_tensor(image)
    out = apply_program(x, program, seed=args.seed)
    out_path = Path(args.output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(out)[0].save(out_path)
    print(f"wrote {out_path} ({image.width}x{image.height}) with {program!r}")
    if args.show_masks:
        if not program.local:
            print("no local adjustments: no masks to show")
        else:
            mpath = out_path.with_name(out_path.stem + "_masks.png")
            _save_masks(x, program, mpath)
            print(f"wrote {mpath}")
    if args.xmp_out:
        exp = export_xmp(program, args.xmp_out)
        print(f"wrote {args.xmp_out}")
        for u in exp.unsupported:
            print(f"not understood by Lightroom: {u}", file=sys.stderr)
    return 0


def _save_masks(x: torch.Tensor, program: EditProgram, path: Path) -> None:
    """One panel per local adjustment: the photo dimmed outside the mask, the mask tinted red."""
    panels = []
    lin = srgb_to_linear(x)
    for la in program.local:
        m = la.mask.render(lin)
        red = torch.tensor([1.0, 0.2, 0.2]).view(1, 3, 1, 1)
        panels.append(x * (0.35 + 0.65 * m) * (1 - 0.4 * m) + 0.4 * m * red)
    grid = torch.cat(panels, dim=3).clamp(0, 1)
    to_pil(grid)[0].save(path)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `retouch` subcommand."""
    r = subparsers.add_parser(
        "retouch", help="apply an edit program (text or XMP) to a photo and write a PNG",
        description="Apply an edit program to an image file or a bundled photo name (see rlkit.data.photos), "
                    "e.g. `rlkit retouch astronaut --program 'exposure=+0.5; contrast=20' -o out.png`.")
    r.add_argument("photo", help="image file path or bundled photo name (astronaut, coffee, chelsea, ...)")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--program", help="program text: JarvisArt <think>/<answer>, RetouchIQ 'exposure=+0.9; "
                                       "contrast=-30' or canonical JSON; '@FILE' reads it from a file")
    src.add_argument("--xmp", help="Lightroom / rlkit XMP sidecar or preset to apply")
    r.add_argument("-o", "--output", required=True, help="output PNG path")
    r.add_argument("--format", default="auto", choices=["auto", "jarvis", "retouchiq", "json"],
                   help="text form of --program (default: detect)")
    r.add_argument("--clamp", action="store_true", help="clamp out-of-range values instead of failing")
    r.add_argument("--seed", type=int, default=0, help="grain seed (default 0)")
    r.add_argument("--show-masks", action="store_true",
                   help="also write OUT_masks.png showing each local adjustment's mask")
    r.add_argument("--xmp-out", help="also export the program as an XMP sidecar to this path")
    r.set_defaults(func=_cmd_retouch)
