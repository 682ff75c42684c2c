"""``rlkit refine editrefiner|agentic-retoucher``: run a refinement loop on one image or a dataset.

Every agent comes from a ``from_pretrained`` folder or hub id (tiny test models: ``rlkit make-tiny DIR
--kind KIND`` writes one), the reasoner and the action planner also from an OpenAI-compatible server
(``--reasoner-url``, ``--planner-url``). Each run writes ``trace.json``, ``strip.png``, ``best.png`` and ``maps.npz`` under
``--out`` (one folder per dataset row) and prints a table of the turns.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from rlkit.data import load_blemish, load_editfhf
from rlkit.envs import InpaintTool, InstructionEditTool
from rlkit.loops.agentic_retoucher import AgenticRetoucher
from rlkit.loops.editrefiner import EditRefiner
from rlkit.policies import ActionAgent, ActionConstraints, EvaluationAgent, ToolSpec, load_saliency_net
from rlkit.rewards import OpenAIBackend, TransformersBackend

__all__ = ["register", "build_tools", "build_backend"]


def build_backend(path: str | None, url: str | None, model: str | None, *, timeout: float, max_new_tokens: int,
                  device: str) -> Any:
    """A chat backend: ``rlkit.rewards.OpenAIBackend(url, model, timeout=...)`` or an in-process
    ``TransformersBackend`` on the folder / hub id ``path``; None when neither is given."""
    if url:
        if not model:
            raise SystemExit("error: a server URL needs the served model's name (--reasoner-model / --planner-model)")
        return OpenAIBackend(url, model, timeout=timeout, max_retries=1, max_tokens=max_new_tokens)
    if path:
        return TransformersBackend(_resolve(path), device=device, max_new_tokens=max_new_tokens)
    return None


def _resolve(name: str) -> str:
    """A folder or hub id; ``tiny:`` names are refused with the command that writes the tiny model."""
    if name.startswith("tiny:"):
        raise SystemExit(f"error: {name!r} names a tiny test model: write it to a folder first with "
                         f"`rlkit make-tiny DIR --kind {name[5:]}` and pass DIR")
    return name


def build_tools(args: argparse.Namespace) -> tuple[list[Any], dict[str, Any]]:
    """(ToolSpecs, callables) from ``--inpaint`` / ``--edit`` diffusers pipeline folders (tool names
    ``inpaint`` / ``edit``; cost = ``--steps`` per call)."""
    specs, tools = [], {}
    kw = {"device": args.device, "num_inference_steps": args.steps, "seed": args.seed}
    if args.inpaint:
        tools["inpaint"] = InpaintTool.from_pretrained(_resolve(args.inpaint), **kw)
        specs.append(ToolSpec("inpaint", "inpaint", float(args.steps), "mask-based inpainting"))
    if args.edit:
        tools["edit"] = InstructionEditTool.from_pretrained(_resolve(args.edit), source_mode=args.source_mode, **kw)
        specs.append(ToolSpec("edit", "edit", float(args.steps), "instruction editing under the mask"))
    if not specs:
        raise SystemExit("error: give at least one repair tool: --inpaint PIPELINE and/or --edit PIPELINE")
    return specs, tools


def _rows(args: argparse.Namespace, kind: str) -> list[dict[str, Any]]:
    if args.data:
        import datasets  # deferred: ~1.1 s to import, only for --data folders

        p = Path(args.data)
        if p.is_dir():
            ds = datasets.load_from_disk(str(p))
            if hasattr(ds, "keys"):
                ds = ds["test"] if "test" in ds else next(iter(ds.values()))
            rows = [ds[i] for i in range(min(len(ds), args.limit or len(ds)))]
        else:
            res = (load_editfhf if kind == "editfhf" else load_blemish)(str(p))
            rows = [r.to_example() for r in list(getattr(res, "records", res))[: args.limit or None]]
        if not rows:
            raise SystemExit(f"error: {args.data!r} holds no rows")
        return rows
    if not args.image:
        raise SystemExit("error: give --image PATH (one image) or --data DATASET")
    for flag, path in (("--image", args.image), ("--source", getattr(args, "source", None))):
        if path and not Path(path).is_file():
            raise SystemExit(f"error: {flag} {path!r} is not a file")
    row: dict[str, Any] = {"id": Path(args.image).stem}

    row["edited" if kind == "editfhf" else "image"] = Image.open(args.image).convert("RGB")
    if kind == "editfhf":
        row["source"] = Image.open(args.source).convert("RGB") if args.source else None
        row["instruction"] = args.instruction
    else:
        row["prompt"] = args.prompt
    return [row]


def _action(args: argparse.Namespace, specs: list[Any]) -> Any:
    planner = build_backend(args.planner, args.planner_url, args.planner_model, timeout=args.planner_deadline,
                            max_new_tokens=128, device=args.device)
    allowed = tuple(args.allowed_tools.split(",")) if args.allowed_tools else None
    return ActionAgent(specs, backend=planner, deadline=args.planner_deadline,
                       constraints=ActionConstraints(allowed_tools=allowed, prefer=args.prefer))


def _report(traces: list[Any], out: str | None) -> None:
    table = Table(title=f"{traces[0].loop}: {len(traces)} image(s)" + (f", traces in {out}" if out else ""))
    for c in ("image", "input", "per turn (status: overall)", "returned", "stop"):
        table.add_column(c)
    for k, t in enumerate(traces):
        o = t.overalls
        turns = ", ".join(f"{x.status}" + (f": {o[x.index]:.2f}" if o[x.index] is not None and x.image is not None
                                            else "") for x in t.turns)
        table.add_row(str(k), "–" if o[0] is None else f"{o[0]:.2f}", turns or "–",
                      f"turn {t.best_turn}: " + ("–" if o[t.best_turn] is None else f"{o[t.best_turn]:.2f}"),
                      t.stop_reason)
    Console().print(table)


def _run(args: argparse.Namespace, kind: str) -> int:
    """Build the agents from the flags, run the loop on every row, write the traces, print the table."""
    perception = load_saliency_net(_resolve(args.perception), device=args.device)
    evaluator = EvaluationAgent.from_pretrained(_resolve(args.evaluator)).to(args.device).eval() \
        if args.evaluator else None
    reasoner = build_backend(args.reasoner, args.reasoner_url, args.reasoner_model, timeout=args.reasoner_timeout,
                             max_new_tokens=args.max_new_tokens, device=args.device)
    if reasoner is None:
        raise SystemExit("error: give the reasoning agent: --reasoner PATH or --reasoner-url URL --reasoner-model NAME")
    rows = _rows(args, kind)
    specs, tools = build_tools(args)
    common = dict(perception=perception, reasoner=reasoner, action=_action(args, specs), tools=tools,
                  evaluator=evaluator, max_turns=args.max_turns, tau=args.tau, budget=args.budget, seed=args.seed)
    if kind == "editfhf":
        loop: Any = EditRefiner(run_all_turns=args.run_all_turns, **common)
    else:
        loop = AgenticRetoucher(tau_s=args.tau_s, **common)
    with torch.inference_mode():
        traces = loop.run_dataset(rows, output_dir=args.out, progress=len(rows) > 1)
    _report(traces, args.out)
    return 0


def _cmd_editrefiner(args: argparse.Namespace) -> int:
    return _run(args, "editfhf")


def _cmd_agentic(args: argparse.Namespace) -> int:
    return _run(args, "blemish")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", help="the image to refine (PNG/JPEG)")
    p.add_argument("--data", help="a dataset instead: save_to_disk folder (test split) or JSONL of records")
    p.add_argument("--limit", type=int, default=None, help="at most this many dataset rows")
    p.add_argument("--perception", required=True, help="saliency net folder / hub id ")
    p.add_argument("--reasoner", help="reasoning agent (a Qwen-VL folder or hub id)")
    p.add_argument("--reasoner-url", help="OpenAI-compatible server of the reasoning agent (e.g. vllm serve)")
    p.add_argument("--reasoner-model", help="the served reasoner's model name")
    p.add_argument("--reasoner-timeout", type=float, default=60.0, help="seconds per reasoner request")
    p.add_argument("--max-new-tokens", type=int, default=256, help="reasoner answer length")
    p.add_argument("--planner", help="VLM action planner (folder / hub id); default: rule-based tool calls")
    p.add_argument("--planner-url", help="OpenAI-compatible server of the action planner")
    p.add_argument("--planner-model", help="the served planner's model name")
    p.add_argument("--planner-deadline", type=float, default=30.0, help="overall seconds for one planner call")
    p.add_argument("--inpaint", help="diffusers inpainting pipeline folder / hub id (SD-inpaint, Flux-Fill)")
    p.add_argument("--edit", help="diffusers instruction-editing pipeline (e.g. Qwen-Image-Edit)")
    p.add_argument("--source-mode", default="ignore", choices=("ignore", "list"),
                   help="'list' passes [source, current] to a multi-image editor")
    p.add_argument("--allowed-tools", help="comma-separated tool names the action agent may use (inpaint, edit)")
    p.add_argument("--prefer", choices=("inpaint", "edit"), help="preferred tool kind")
    p.add_argument("--budget", type=float, default=None, help="total tool cost per image (cost = --steps per call)")
    p.add_argument("--steps", type=int, default=20, help="diffusion steps per tool call")
    p.add_argument("--max-turns", type=int, default=4)
    p.add_argument("--tau", type=float, default=0.5, help="saliency threshold for region masks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="folder for the traces (trace.json, strip.png, best.png, maps.npz)")


def register(subparsers: Any) -> None:
    """Add ``rlkit refine {editrefiner,agentic-retoucher}``."""
    p = subparsers.add_parser("refine", help="run a refinement loop (EditRefiner, Agentic Retoucher) on images",
                              description="Closed refinement loops built from the agents (rlkit.loops); see "
                                          "docs/agents.md.")
    sub = p.add_subparsers(dest="refine_command", required=True)
    e = sub.add_parser("editrefiner", help="perception -> reasoning -> action -> evaluation, keep the best")
    _common(e)
    e.add_argument("--source", help="the source image the edit was made from")
    e.add_argument("--instruction", default="", help="the editing instruction")
    e.add_argument("--evaluator", required=True, help="evaluation agent folder (EvaluationAgent.save_pretrained)")
    e.add_argument("--run-all-turns", action="store_true", help="turn ablation: run all turns (Table 5)")
    e.set_defaults(func=_cmd_editrefiner)
    a = sub.add_parser("agentic-retoucher", help="perception -> reasoning -> action until nothing is salient")
    _common(a)
    a.add_argument("--prompt", default="", help="the text-to-image prompt of the image")
    a.add_argument("--tau-s", type=float, default=0.5, help="saliency a region must reach to be repaired")
    a.add_argument("--evaluator", default=None, help="optional evaluation agent for the per-turn scores")
    a.set_defaults(func=_cmd_agentic, max_turns=3)
