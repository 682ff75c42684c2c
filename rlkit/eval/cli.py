"""``rlkit eval ...`` (also ``python -m rlkit.eval`` / ``accelerate launch -m rlkit.eval``): run a benchmark suite
on baselines and policies and write results.json, report.md and PNGs; compare two result folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from rlkit.eval.agents_cli import register_agents
from rlkit.eval.compare import compare_results
from rlkit.eval.fivek import load_fivek, make_synthetic_fivek
from rlkit.eval.policy import System, load_system
from rlkit.eval.retouch import load_retouch_samples, run_retouch
from rlkit.metrics import LPIPSUnavailable, load_lpips
from rlkit.rewards import OpenAIBackend, TransformersBackend
from rlkit.testing import resolve_model_name  # an entry point: `tiny:` names are built on demand

__all__ = ["register", "main"]


def _resolve(spec: str) -> str:
    """``tiny:KIND`` -> the cached tiny model folder (rlkit.testing: demos and CI); anything else unchanged."""
    name, eq, rest = spec.partition("=") if "=" in spec and not spec.startswith("openai:") else ("", "", spec)
    rest = resolve_model_name(rest)
    return f"{name}{eq}{rest}" if eq else rest


def _systems(args: argparse.Namespace) -> list[System]:
    specs = [b for b in (args.baselines or "").split(",") if b] + list(args.policy or [])
    if not specs:
        raise SystemExit("error: nothing to evaluate: give --policy and/or --baselines")
    kw = {"max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "deadline": args.deadline,
          "system_prompt": args.system_prompt, "api_key": args.api_key}
    return [load_system(_resolve(s), **kw) for s in specs]


def _judge(args: argparse.Namespace) -> OpenAIBackend | TransformersBackend | None:
    if not args.judge:
        return None
    if args.judge_url:
        return OpenAIBackend(args.judge_url, args.judge, timeout=args.deadline, max_tokens=args.judge_max_new_tokens,
                             api_key=args.api_key)
    return TransformersBackend(_resolve(args.judge), max_new_tokens=args.judge_max_new_tokens)


def _print_report(out: Path) -> None:
    report = out / "report.md"
    if report.is_file():
        Console().print(Markdown(report.read_text(encoding="utf-8").split("![")[0]))
        print(f"wrote {out}/results.json, report.md, grid.png, bars.png")


def _cmd_retoucheval(args: argparse.Namespace) -> int:
    splits = args.splits.split(",") if args.splits else None
    samples = load_retouch_samples(args.data, splits=splits, limit=args.limit)
    systems = _systems(args)
    recs = run_retouch(samples, systems, args.out, kind="retoucheval", judge=_judge(args),
                       batch_size=args.batch_size, resume=not args.no_resume)
    if recs is not None:
        _print_report(Path(args.out))
    return 0


def _cmd_fivek(args: argparse.Namespace) -> int:
    root = args.data
    if args.synthetic:
        root = make_synthetic_fivek(Path(args.out) / "synthetic_fivek", args.synthetic, seed=args.seed)
    if root is None:
        raise SystemExit("error: give --data ROOT (MIT-Adobe5K folder) or --synthetic N")
    samples = load_fivek(root, args.split_file or (Path(root) / "test.txt" if args.synthetic else None),
                         limit=args.limit)
    notes = []
    try:
        lp = load_lpips(args.lpips_net, trunk_weights=args.lpips_trunk)
    except LPIPSUnavailable as exc:
        lp = None
        notes.append(str(exc))
        print(f"note: {exc}", file=sys.stderr)
    systems = _systems(args)
    if any(s.name == "expert" for s in systems) and any(s.program is None for s in samples):
        systems = [s for s in systems if s.name != "expert"]
        notes.append("expert baseline omitted: the dataset has no expert programs (its expert images are the targets)")
    recs = run_retouch(samples, systems, args.out, kind="fivek", lpips=lp, batch_size=args.batch_size,
                       resume=not args.no_resume, notes=notes)
    if recs is not None:
        _print_report(Path(args.out))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    metrics = args.metrics.split(",") if args.metrics else None
    diffs = compare_results(args.a, args.b, metrics=metrics, n_resamples=args.resamples,
                            confidence=args.confidence, seed=args.seed)
    t = Table(title=f"B - A  ({args.b}  vs  {args.a}); paired bootstrap {args.confidence:.0%} CI")
    for c in ("system", "metric", "n", "A", "B", "B - A", "CI", ""):
        t.add_column(c)
    for d in diffs:
        t.add_row(d.system, d.metric, str(d.n), f"{d.mean_a:.4g}", f"{d.mean_b:.4g}", f"{d.diff:+.4g}",
                  f"[{d.low:+.4g}, {d.high:+.4g}]", "*" if d.significant else "")
    Console().print(t)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", action="append", metavar="SPEC",
                   help="a policy: PATH or hub id (transformers), vllm:PATH, openai:MODEL@URL, tiny:KIND; "
                        "NAME=SPEC names its row; repeat for several")
    p.add_argument("--baselines", default="identity,random,expert",
                   help="comma-separated baseline rows: identity, random, expert ('' for none)")
    p.add_argument("--out", required=True, help="output folder (results.json, report.md, PNGs, records/)")
    p.add_argument("--limit", type=int, default=None, help="first N samples of each split")
    p.add_argument("--batch-size", type=int, default=8, help="samples per generation batch")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--system-prompt", default=None, help="policy system prompt ('' for none; default: rlkit's)")
    p.add_argument("--deadline", type=float, default=120.0, help="seconds per endpoint request, retries included")
    p.add_argument("--api-key", default=None, help="bearer token for endpoints")
    p.add_argument("--no-resume", action="store_true", help="discard finished samples in --out and start over")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rlkit eval {retoucheval,fivek,saliency,reasoning,compare}``."""
    p = subparsers.add_parser("eval", help="run a benchmark suite on policies and baselines; compare results",
                              description="Benchmark harness (rlkit.eval): RetouchEval-style, MIT-Adobe5K-style and "
                                          "agent suites; reports shaped like the papers' tables.")
    sub = p.add_subparsers(dest="eval_command", required=True)

    s = sub.add_parser("retoucheval", help="L1/L2 to the expert edit, judge SC/PQ/O, valid-program rate per split")
    s.add_argument("--data", required=True, help="`rlkit data build retoucheval` folder or a retouch JSONL folder")
    s.add_argument("--splits", default=None, help="comma-separated splits (default: all)")
    s.add_argument("--judge", default=None, help="judge VLM: a local path / tiny:KIND, or the served model name")
    s.add_argument("--judge-url", default=None, help="OpenAI-compatible judge server, e.g. http://host:8000/v1")
    s.add_argument("--judge-max-new-tokens", type=int, default=256)
    _common(s)
    s.set_defaults(func=_cmd_retoucheval)

    s = sub.add_parser("fivek", help="PSNR/SSIM/LPIPS against expert C on a test split read from a file")
    s.add_argument("--data", default=None, help="MIT-Adobe5K folder (input/ and expertC/)")
    s.add_argument("--split-file", default=None, help="file of test image names, one per line")
    s.add_argument("--synthetic", type=int, default=0, metavar="N", help="build an N-image stand-in from bundled photos")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--lpips-net", default="alex", choices=("alex", "vgg"))
    s.add_argument("--lpips-trunk", default=None, help="trunk checkpoint path or org/name:file (default: torch hub cache)")
    _common(s)
    s.set_defaults(func=_cmd_fivek)

    register_agents(sub)

    s = sub.add_parser("compare", help="B - A per metric with a paired bootstrap confidence interval")
    s.add_argument("a", help="result folder A (or its results.json)")
    s.add_argument("b", help="result folder B")
    s.add_argument("--metrics", default=None, help="comma-separated metrics (default: all shared numeric fields)")
    s.add_argument("--resamples", type=int, default=9999)
    s.add_argument("--confidence", type=float, default=0.95)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_compare)


def main(argv: list[str] | None = None) -> int:
    """``python -m rlkit.eval ARGS`` == ``rlkit eval ARGS``."""
    parser = argparse.ArgumentParser(prog="python -m rlkit.eval")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)
