"""``rlkit make-tiny DIR --kind K``: write one tiny local model to a directory."""

from __future__ import annotations

import argparse
import sys
import time

from .cache import TINY_KINDS, build_tiny_model

_KIND_HELP = {
    "qwen2_5_vl": "Qwen2.5-VL policy (AutoModelForImageTextToText + AutoProcessor)",
    "qwen2_vl": "Qwen2-VL policy",
    "qwen3_vl": "Qwen3-VL policy",
    "text": "Qwen2 text-only causal LM sharing the VLM tokenizer (AutoModelForCausalLM)",
    "sd_inpaint": "StableDiffusionInpaintPipeline",
    "flux_fill": "FluxFillPipeline",
}


def make_tiny(args: argparse.Namespace) -> int:
    """Handler of ``make-tiny``: build ``args.kind`` into ``args.dir``; 0 on success, 1 on a bad target."""
    start = time.perf_counter()
    try:
        out = build_tiny_model(args.kind, args.dir, seed=args.seed)
    except (FileExistsError, ValueError) as exc:
        print(f"rlkit make-tiny: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote tiny {args.kind} to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``make-tiny`` subcommand to an ``argparse`` subparsers object."""
    kinds = "\n".join(f"  {k:<11} {v}" for k, v in _KIND_HELP.items())
    parser = subparsers.add_parser(
        "make-tiny",
        help="write a tiny random-weight model (VLM, text LM or inpainting pipeline) to a directory",
        description=(
            "Build a tiny model with seeded random weights and a locally trained tokenizer, loadable with the\n"
            "ordinary from_pretrained calls. Takes seconds; nothing is downloaded.\n\nkinds:\n" + kinds
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", help="output directory (created; must be new or empty)")
    parser.add_argument("--kind", required=True, choices=TINY_KINDS, help="which tiny model to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    parser.set_defaults(func=make_tiny)


__all__ = ["make_tiny", "register"]
