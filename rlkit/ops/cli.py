"""`rlkit ops`: the table of the engine's operations (`rlkit retouch` lives in rlkit/cli_retouch.py)."""

from __future__ import annotations

import argparse
import json
import sys

from .params import LOCAL_PARAMS, PARAM_SPECS

__all__ = ["register", "ops_table"]


def ops_table(group: str | None = None) -> list[dict[str, object]]:
    """Rows of the operations table (name, default, range, Lightroom key, group, doc)."""
    return [
        {"name": s.name, "default": s.default, "lo": s.lo, "hi": s.hi, "lightroom": s.lightroom, "group": s.group,
         "doc": s.doc}
        for s in PARAM_SPECS.values() if group is None or s.group == group
    ]


def _cmd_ops(args: argparse.Namespace) -> int:
    rows = ops_table(args.group)
    if not rows:
        groups = sorted({s.group for s in PARAM_SPECS.values()})
        print(f"rlkit ops: no group {args.group!r}; groups: {', '.join(groups)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    head = f"{'name':<26} {'default':>7} {'range':>15}  {'lightroom':<32} doc"
    print(head)
    print("-" * len(head))
    for r in rows:
        rng = f"[{r['lo']:g}, {r['hi']:g}]"
        print(f"{r['name']:<26} {r['default']:>7g} {rng:>15}  {r['lightroom'] or '-':<32} {r['doc']}")
    print(f"\nlocal adjustments may carry: {', '.join(LOCAL_PARAMS)}")
    print("masks: radial, linear, brush/disk, tensor, luminance_range, color_range, composite "
          "(add / intersect / subtract)")
    print("tone curves: master, red, green, blue (points 0..255)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `ops` subcommand."""
    p = subparsers.add_parser(
        "ops", help="print the retouch engine's operations with ranges and Lightroom names",
        description="Print every global slider of rlkit's retouch engine: canonical name, default, allowed "
                    "range, the Lightroom develop key it maps to, and what it does.")
    p.add_argument("--group", help="only one group (basic, detail, effects, tone_curve, hsl, color_grading, "
                                   "black_white, calibration)")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.set_defaults(func=_cmd_ops)
