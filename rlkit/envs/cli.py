"""``rlkit env ...``: try an action in RetouchEnv on a bundled photo, and run Gymnasium's env checker."""

from __future__ import annotations

import argparse
import json

from gymnasium.utils.env_checker import check_env

from rlkit.envs import EnvConfigError, RefineEnv, RetouchEnv


def _try(args: argparse.Namespace) -> int:
    try:
        env = RetouchEnv(image_size=(args.size, args.size), fmt=args.format, clamp=args.clamp)
        env.reset(seed=0, options={"row": {"image": args.photo, "instruction": args.instruction}})
    except EnvConfigError as exc:
        print(f"error: {exc}")
        return 2
    action = args.action
    if action.startswith("@"):
        with open(action[1:], encoding="utf-8") as fh:
            action = fh.read()
    _, _, terminated, _, info = env.step(action)
    report = {
        "valid": info["valid"],
        "format": info["format"],
        "program": info["program_dict"],
        "parse_problems": info["parse_problems"],
        "execution_error": info["execution_error"],
        "terminated": terminated,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        print(f"wrote {env.save_png(args.out, height=args.size)} (before | after)")
    return 0 if info["valid"] else 1


def _check(args: argparse.Namespace) -> int:
    rows = [{"image": args.photo, "instruction": "make it brighter"}]
    envs = {
        "RetouchEnv": RetouchEnv(rows, image_size=args.size),
        "RetouchEnv(max_steps=3, delta, source)": RetouchEnv(
            rows, image_size=args.size, max_steps=3, reward_mode="delta", include_source=True
        ),
        "RefineEnv(engine only)": RefineEnv(rows, image_size=args.size, include_source=True),
    }
    failed = 0
    for name, env in envs.items():
        try:
            check_env(env, skip_render_check=True)
            print(f"ok    {name}")
        except Exception as exc:  # report every environment, then fail
            failed += 1
            print(f"FAIL  {name}: {exc}")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rlkit env try`` and ``rlkit env check``."""
    env = subparsers.add_parser(
        "env",
        help="try policy text in the retouching environment; check the environments",
        description="Work with rlkit's retouching environments (see docs/environments.md).",
    )
    sub = env.add_subparsers(dest="env_command", metavar="SUBCOMMAND", required=True)
    t = sub.add_parser(
        "try",
        help="parse and execute one action on a photo, print what happened, write before|after PNG",
        description="Run one RetouchEnv step: the action text is parsed (never evaluated) and executed "
        "by the "
        "engine. Exit status 0 when the action is valid, 1 when it is malformed (problems are printed).",
    )
    t.add_argument("action", help="policy text, e.g. 'exposure=+0.5; contrast=20' (or @file to read it)")
    t.add_argument("--photo", default="coffee", help="bundled photo name or image file (default: coffee)")
    t.add_argument("--instruction", default="", help="instruction shown in the observation")
    t.add_argument("--size", type=int, default=256, help="square working size in pixels (default: 256)")
    t.add_argument(
        "--format",
        default="auto",
        choices=["auto", "jarvis", "retouchiq", "json"],
        help="text format of the action (default: auto)",
    )
    t.add_argument("--clamp", action="store_true", help="clamp out-of-range values instead of rejecting them")
    t.add_argument("--out", default=None, help="write a before|after PNG here")
    t.set_defaults(func=_try)
    c = sub.add_parser(
        "check",
        help="run gymnasium's check_env on RetouchEnv and RefineEnv",
        description="Run gymnasium.utils.env_checker.check_env on the environments with a bundled photo.",
    )
    c.add_argument("--photo", default="coffee", help="bundled photo name or image file (default: coffee)")
    c.add_argument("--size", type=int, default=64, help="square working size in pixels (default: 64)")
    c.set_defaults(func=_check)
