"""`rlkit quickstart`: the tiny end-to-end SFT -> GRPO run (see docs/quickstart.md)."""

from __future__ import annotations

import argparse

from rlkit.train.quickstart import QuickstartConfig, run_quickstart

__all__ = ["register"]


def _quickstart(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in {"sft_steps": args.sft_steps, "grpo_steps": args.grpo_steps,
                                   "eval_samples": args.eval_samples}.items() if v is not None}
    if overrides.get("eval_samples", 1) > 1:
        overrides["eval_temperature"] = 1.0
    cfg = QuickstartConfig(output_dir=args.output_dir, seed=args.seed, use_peft=args.lora, **overrides)
    result = run_quickstart(cfg)
    return 0 if result.heldout_l1_grpo < result.heldout_l1_sft else 1


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``quickstart`` subcommand."""
    p = subparsers.add_parser(
        "quickstart",
        help="train a tiny retouching policy end to end on CPU (SFT then GRPO in RetouchEnv), no download",
        description="Build a tiny Qwen2.5-VL policy and an instruction dataset from bundled photos, run SFT on "
        "a timid editor's demonstrations, then GRPO where each edit program is executed in RetouchEnv and scored "
        "by format + improvement over the unedited photo; write reward_curve.png, before_after.png and "
        "metrics.json to OUTPUT_DIR and print the held-out L1 distance to the expert edit of the identity edit, "
        "the SFT policy and the GRPO policy. About 1-2 minutes on 2 idle CPU cores. Exit code 1 if GRPO did not "
        "edit closer to the expert than SFT.",
    )
    p.add_argument("--output-dir", default="rlkit-quickstart", help="folder for the PNGs, metrics.json and the "
                   "trained policy (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, training and evaluation (default: 0)")
    p.add_argument("--sft-steps", type=_positive, default=None, help="SFT steps (default: the built-in schedule)")
    p.add_argument("--grpo-steps", type=_positive, default=None, help="GRPO steps (default: the built-in schedule)")
    p.add_argument("--eval-samples", type=_positive, default=None,
                   help="completions per held-out prompt, sampled at temperature 1 when > 1 (default: 1, greedy)")
    p.add_argument("--lora", action="store_true", help="train a LoRA adapter (r=64, alpha=32) instead of the "
                   "full tiny model")
    p.set_defaults(func=_quickstart)
