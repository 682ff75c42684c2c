"""``rlkit rewards ...``: list rewards, score a JSONL file with a preset, serve or query a GRM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from PIL import Image

import rlkit.rewards as R
from rlkit.rewards import PRESETS, RewardBatch
from rlkit.rewards.grm import (
    GenerativeRewardModel,
    GRMParse,
    GRMServer,
    OpenAIBackend,
    TransformersBackend,
    parse_grm_output,
    transformers_answer_fn,
)

__all__ = ["register"]

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def _cmd_list(args: argparse.Namespace) -> int:
    print("Built-in rewards:")
    for name in ("FormatReward", "TypeAccuracyReward", "DescriptionSimilarityReward", "KeySetIoUReward",
                 "ParameterAccuracyReward", "ToneCurveReward", "ImageSimilarityReward", "RegionAgreementReward",
                 "GenerativeRewardModel"):
        doc = (getattr(R, name).__doc__ or "").strip().splitlines()[0]
        print(f"  {name:30s} {doc}")
    print("Combinators: WeightedSum, Gate, NormalizedSum")
    print("Presets (rlkit rewards score --preset NAME):")
    for name, fn in R.PRESETS.items():
        print(f"  {name:30s} {(fn.__doc__ or '').strip().splitlines()[0]}")
    return 0


def _load_rows(path: Path, image_columns: list[str]) -> list[dict[str, Any]]:
    rows = []
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise SystemExit(f"{path}:{lineno}: invalid JSON: {exc}") from None
            if not isinstance(row, dict) or "completion" not in row:
                raise SystemExit(f"{path}:{lineno}: each line must be an object with a 'completion' key")
            for col in image_columns:
                v = row.get(col)
                if isinstance(v, str) and v.lower().endswith(_IMAGE_EXT):
                    p = Path(v) if Path(v).is_absolute() else path.parent / v
                    if not p.exists():
                        raise SystemExit(f"{path}:{lineno}: column {col!r}: image file {p} does not exist")
                    row[col] = Image.open(p).convert("RGB")
            rows.append(row)
    if not rows:
        raise SystemExit(f"{path}: no rows")
    return rows


def _cmd_score(args: argparse.Namespace) -> int:
    if args.verbose:
        logging.basicConfig(level=logging.INFO)
    if args.preset not in PRESETS:
        print(f"unknown preset {args.preset!r}; choose from {sorted(PRESETS)}", file=sys.stderr)
        return 2
    # the stored text's form is detected (canonical JSON, Jarvis, RetouchIQ) unless --format names one
    reward = PRESETS[args.preset](fmt=args.format) if args.preset == "retouchiq" else PRESETS[args.preset]()
    rows = _load_rows(Path(args.input), [c for c in args.image_columns.split(",") if c])
    batch = RewardBatch.from_records(rows, program_format=args.format)
    result = reward(batch)
    means = result.component_means()
    print(f"{reward.name}: mean {result.mean()} over {len(batch)} rows "
          f"({sum(s is None for s in result.scores)} unscored)")
    for k, v in means.items():
        print(f"  {k:40s} {'-' if v is None else f'{v:.4f}'}")
    if args.output:
        with open(args.output, "w") as f:
            for i in range(len(batch)):
                rec = {"score": result.scores[i], "reason": result.reasons[i],
                       **{k: v[i] for k, v in result.components.items()}}
                f.write(json.dumps(rec) + "\n")
        print(f"wrote {args.output}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    srv = GRMServer(transformers_answer_fn(args.model, max_new_tokens=args.max_new_tokens, device=args.device),
                    host=args.host, port=args.port, model_name=args.served_name)
    print(f"serving {args.model} at {srv.base_url} (Ctrl-C to stop)", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    if args.base_url:
        backend = OpenAIBackend(args.base_url, args.model, timeout=args.timeout, max_tokens=args.max_new_tokens)
    else:
        backend = TransformersBackend(args.model, max_new_tokens=args.max_new_tokens, device=args.device)
    grm = GenerativeRewardModel(backend, require_metrics=not args.no_metrics)
    src = Image.open(args.source).convert("RGB")
    edited = [Image.open(p).convert("RGB") for p in args.edited]
    reply = asyncio.run(backend.agenerate([grm.template.messages(args.instruction, src, edited)]))[0]
    parse = (parse_grm_output(reply.text, len(edited), require_metrics=grm.require_metrics) if reply.text is not None
             else GRMParse(False, reason=f"GRM backend error: {reply.error}"))
    out = {"ok": parse.ok, "metrics": parse.metrics, "scores": parse.scores, "reason": parse.reason}
    if not parse.ok:  # show what the judge said: the reason alone does not tell a format slip from a broken model
        out["answer"] = reply.text
        out["hint"] = ("the judge must answer <metrics>1. ...</metrics> then <score>N</score> (0-10); a model that "
                       "was not trained or prompted for this format (e.g. rlkit's random-weight tiny models) cannot. "
                       "Use a trained judge (docs/rewards.md); --no-metrics accepts answers with a score only")
    print(json.dumps(out, indent=2))
    return 0 if parse.ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rlkit rewards {list,score,serve-grm,judge}``."""
    p = subparsers.add_parser("rewards", help="rewards: list, score JSONL with a preset, serve/query a GRM",
                              description="Rewards for retouching agents (rlkit.rewards).")
    sub = p.add_subparsers(dest="rewards_command", required=True)

    s = sub.add_parser("list", help="list built-in rewards and paper presets")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("score", help="score completions in a JSONL file with a paper preset",
                       description="Each JSONL line: {'completion': ..., 'prompt': ..., <dataset columns>}; "
                                   "image columns may hold file paths (relative to the JSONL file).")
    s.add_argument("--preset", required=True, help="editrefiner | agentic_retoucher | retouchiq")
    s.add_argument("--input", required=True, help="JSONL file")
    s.add_argument("--output", help="write per-row scores and components as JSONL here")
    s.add_argument("--image-columns", default="image,source_image,target_image,output_image",
                   help="comma-separated columns whose string values are image paths")
    s.add_argument("--format", default="auto", help="edit-program format: auto, jarvis, retouchiq, json")
    s.add_argument("-v", "--verbose", action="store_true", help="log why samples were not scored")
    s.set_defaults(func=_cmd_score)

    s = sub.add_parser("serve-grm", help="serve a local transformers VLM as an OpenAI-compatible judge",
                       description="Loopback-only OpenAI-compatible /v1/chat/completions server; for production "
                                   "use `vllm serve MODEL` and OpenAIBackend.")
    s.add_argument("--model", required=True, help="path or hub id loadable by AutoModelForImageTextToText")
    s.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--served-name", default="rlkit-grm", help="model name reported by /v1/models")
    s.add_argument("--max-new-tokens", type=int, default=256)
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_cmd_serve)

    s = sub.add_parser("judge", help="ask a GRM (server or local model) to score edited images",
                       description="Prints the judge's metrics and 0-10 scores as JSON; exit 1 if unparseable.")
    s.add_argument("--model", required=True, help="served model name (with --base-url) or a local model path")
    s.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    s.add_argument("--instruction", required=True)
    s.add_argument("--source", required=True, help="source image file")
    s.add_argument("--edited", required=True, nargs="+", help="edited image file(s)")
    s.add_argument("--timeout", type=float, default=60.0)
    s.add_argument("--max-new-tokens", type=int, default=512)
    s.add_argument("--device", default="cpu")
    s.add_argument("--no-metrics", action="store_true", help="accept an answer without the <metrics> block")
    s.set_defaults(func=_cmd_judge)
