"""The `rlkit` command: `rlkit info`, plus the subcommands each room registers (`rlkit --help`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rlkit import __version__
from rlkit.errors import MissingDependencyError

# command -> (module whose register(subparsers) defines it, one-line help). A module is imported only
# when one of its commands runs (or for a full parser), so `rlkit --help` stays fast: several rooms
# import transformers or diffusers at import time.
_COMMANDS: dict[str, tuple[str, str]] = {
    "make-tiny": ("rlkit.testing.cli", "write a tiny random-weight model (VLM, text LM or inpainting pipeline) to DIR"),
    "ops": ("rlkit.ops.cli", "print the retouch engine's operations with ranges and Lightroom names"),
    "retouch": ("rlkit.cli_retouch", "apply an edit program (text or XMP) to a photo and write a PNG"),
    "data": ("rlkit.data.cli", "build synthetic benchmarks and inspect datasets"),
    "rewards": ("rlkit.rewards.cli", "list rewards, score JSONL with a preset, serve/query a GRM"),
    "env": ("rlkit.envs.cli", "try policy text in the retouching environment; check the environments"),
    "eval": ("rlkit.eval.cli", "benchmark policies and agents (RetouchEval, MIT-Adobe5K, agent suites); compare runs"),
    "refine": ("rlkit.loops.cli", "run a refinement loop (EditRefiner, Agentic Retoucher) on an image or a dataset"),
    "quickstart": ("rlkit.train.cli", "tiny SFT then GRPO of a retoucher policy on CPU: curves, grids, metrics"),
}


def _info(args: argparse.Namespace) -> int:
    from rlkit.info import capabilities, devices, stack_versions  # deferred: `rlkit --help` stays 0.1 s

    console = Console()
    console.print(f"[bold]rlkit {__version__}[/bold]")
    versions = Table(title="stack", show_header=True)
    versions.add_column("package")
    versions.add_column("version")
    for name, version in stack_versions().items():
        versions.add_row(name, version or "[dim]not installed[/dim]")
    console.print(versions)
    console.print("devices: " + ", ".join(devices()))
    parts = Table(title="optional parts", show_header=True)
    parts.add_column("part")
    parts.add_column("usable")
    parts.add_column("detail / how to enable", overflow="fold")
    for cap in capabilities(deep=args.deep):
        parts.add_row(escape(cap.name), "[green]yes[/green]" if cap.usable else "[red]no[/red]", escape(cap.detail))
    console.print(parts)
    return 0


def _photos(args: argparse.Namespace) -> int:
    from rlkit.data.photos import list_photos, load_photo  # deferred: pulls torch (~1.7 s) for one subcommand

    if args.save:
        name, out = args.save
        load_photo(name, size=args.size).save(out)
        print(f"wrote {out}")
        return 0
    for info in list_photos():
        w, h = info.size
        print(f"{info.name:12s} {w:5d}x{h:<5d} {info.source:50s} {info.description}")
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: with `command`, only that command's module is loaded; else all of them."""
    parser = argparse.ArgumentParser(
        prog="rlkit",
        description="Train and evaluate image-retouching agents with reinforcement learning.",
    )
    parser.add_argument("--version", action="version", version=f"rlkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser(
        "info", help="print stack versions, devices and which optional parts are usable here",
        description="Print versions of the stack, the compute devices, and which optional parts "
        "(deepspeed, vllm, WordNet data, the sentence-embedding model) are usable, with the reason when not.",
    )
    info.add_argument("--deep", action="store_true", help="also import each optional package (slower; catches "
                      "broken installs)")
    info.set_defaults(func=_info)
    photos = sub.add_parser(
        "photos", help="list the real photos bundled with installed packages, or save one",
        description="List the photographs that ship inside scikit-image and scikit-learn (usable by "
        "name anywhere rlkit takes a photo), or save one to a file with --save NAME OUT.",
    )
    photos.add_argument("--save", nargs=2, metavar=("NAME", "OUT"), help="save photo NAME to the file OUT")
    photos.add_argument("--size", type=int, default=None, help="resize so the shorter side is SIZE pixels")
    photos.set_defaults(func=_photos)
    if command in _COMMANDS:
        modules = [_COMMANDS[command][0]]
    elif command is None:
        modules = list(dict.fromkeys(module for module, _ in _COMMANDS.values()))
    else:  # top-level help or an unknown command: list the commands without importing their modules
        for name, (_, help_) in _COMMANDS.items():
            sub.add_parser(name, help=help_, add_help=False)
        return parser
    for module in modules:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rlkit` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MissingDependencyError as exc:  # one line naming the package and the install command
        print(f"rlkit {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
