"""EditRefiner's evaluation agent at real scale: training step time, peak memory and scoring throughput.

Run: ``python benchmarks/evaluator_gpu.py --gpu-only`` (CUDA: Qwen3-VL-8B dimensions with random weights, no
download, bf16, LoRA r 64 / alpha 32 and the head of ``recipes/evaluator/config_qwen3-vl-8b.yaml``, gradient
checkpointing, 448 px images) or ``--tiny`` (the same path with a 2-layer Qwen3-VL on CPU in fp32, 64 px: a
smoke test). Without CUDA and without ``--tiny`` it prints one line and exits 0.

Measured, each row on its own (one failing row prints its error and the others still run):

1. **stage 2** (``scores``): Eq. 8, ``sum_d MSE_d + (1 - PLCC_d)``, batch 2 (the recipe's per-device batch;
   PLCC needs >= 2), forward + backward + AdamW step;
2. **stage 1** (``levels``): cross-entropy on the five level words, same batch and step;
3. **scoring**: items/s of the head read-out in eval mode under ``torch.no_grad`` on encoded batches of 4
   (the recipe's eval batch), and of ``EvaluationAgent.score`` end to end (image resizing and tokenising
   included), each item a source image, an edited image and an instruction.

Batches come from the trainer's own ``EvaluatorCollator`` (``rlkit.train.evaluator``), i.e.
``EvaluationAgent.encode``; the PLCC memory is emptied before each stage as ``EvaluatorTrainer`` does. Step
times are medians of ``--steps`` timed steps after 2 warm-up steps, bracketed by ``torch.cuda.synchronize``.
The table is printed and, when the environment variable ``OUT`` is set, written to ``$OUT/evaluator_gpu.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WARMUP = 2
TRAIN_BATCH = 2  # recipes/evaluator/config_qwen3-vl-8b.yaml: per_device_train_batch_size
SCORE_BATCH = 4  # ... per_device_eval_batch_size
INSTRUCTIONS = ("Warm up the colours and brighten the shadows a little.", "Remove the person on the left.",
                "Make the sky more dramatic without changing the buildings.", "Add soft film grain.")

# Qwen3-VL-8B-Instruct (also used by benchmarks/perception.py's bench_gpu)
TEXT_8B = {"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
           "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 32768,
           "rope_parameters": {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                               "mrope_interleaved": True}}
VISION_8B = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "out_hidden_size": 4096,
             "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 2304,
             "deepstack_visual_indexes": [8, 16, 24]}
# recipes/evaluator/config_qwen3-vl-8b.yaml net_config
NET_8B = {"image_size": 448, "head_dims": [2048, 512], "head_dropout": [0.1, 0.05], "backbone_training": "lora",
          "lora_r": 64, "lora_alpha": 32, "lora_dropout": 0.05, "plcc_memory": 256, "plcc_min_std": 0.02}

# --tiny: the same architecture, 2 layers each, small widths (rlkit.testing's tiny qwen3_vl sizes)
TEXT_TINY = {**TEXT_8B, "vocab_size": 4096, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
             "rope_parameters": {**TEXT_8B["rope_parameters"], "rope_theta": 1e6, "mrope_section": [2, 3, 3]}}
VISION_TINY = {**VISION_8B, "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
               "out_hidden_size": 64, "num_position_embeddings": 256, "deepstack_visual_indexes": [0]}
NET_TINY = {**NET_8B, "image_size": 64, "head_dims": [32, 16], "lora_r": 8, "lora_alpha": 16}


def _build_agent(tiny: bool, device, dtype):
    """A random-weight EvaluationAgent with the Qwen3-VL-8B (or tiny) dims, the recipe's net_config, bf16/fp32."""
    import torch
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from rlkit.policies import EvaluationAgent, EvaluationAgentConfig
    from rlkit.testing.tokenizers import qwen_tokenizer
    from rlkit.testing.vlm import trl_chat_template

    tok = qwen_tokenizer()
    try:  # Qwen3-VL's chat template (trl ships it; the agent's plain fallback prompt without trl)
        tok.chat_template = trl_chat_template("qwen3_vl")
    except (ImportError, FileNotFoundError) as e:
        print(f"no chat template ({type(e).__name__}: {e}); the agent's plain prompt is used", flush=True)
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in (("image_token_id", "<|image_pad|>"),
           ("video_token_id", "<|video_pad|>"), ("vision_start_token_id", "<|vision_start|>"),
           ("vision_end_token_id", "<|vision_end|>"))}
    text, vision, net = (TEXT_TINY, VISION_TINY, NET_TINY) if tiny else (TEXT_8B, VISION_8B, NET_8B)
    text = {**text, "bos_token_id": tok.convert_tokens_to_ids("<|endoftext|>"),
            "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"), "pad_token_id": tok.pad_token_id}
    cfg = EvaluationAgentConfig(vlm_config={"model_type": "qwen3_vl", "text_config": text, "vision_config": vision,
                                            "tie_word_embeddings": False, **ids}, **net)
    torch.manual_seed(0)
    with torch.device(device):
        agent = EvaluationAgent(cfg).to(dtype)
    agent.tokenizer = tok
    agent.image_processor = Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, temporal_patch_size=2,
                                                     image_mean=[0.5] * 3, image_std=[0.5] * 3)
    agent.gradient_checkpointing_enable()  # the recipe's gradient_checkpointing: true
    return agent


def _records(n: int, size: int, seed: int):
    """``n`` EditFHF records: noise images (source, edited), an instruction and spread-out MOS."""
    import numpy as np
    from PIL import Image

    from rlkit.data import MOS_DIMENSIONS, EditFHFRecord

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        src, ed = (Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(2))
        mos = {d: float(rng.uniform(5, 95)) for d in MOS_DIMENSIONS}
        out.append(EditFHFRecord(source=src, edited=ed, instruction=INSTRUCTIONS[i % len(INSTRUCTIONS)],
                                 scores=mos, id=f"bench-{i}"))
    return out


def _encode_rows(agent, stage: str, recs) -> dict:
    """What ``EvaluatorCollator(agent, stage)`` returns, through ``agent.encode`` (for machines where
    ``rlkit.train`` does not import: it pulls in diffusers, gymnasium, datasets, trl)."""
    import numpy as np

    from rlkit.data import MOS_DIMENSIONS

    mos = np.array([[float(r.scores[d]) for d in MOS_DIMENSIONS] for r in recs])
    enc = agent.encode([r.source for r in recs], [r.edited for r in recs], [r.instruction for r in recs],
                       scores=mos, with_levels=stage != "scores")
    if stage == "levels":
        enc.pop("scores")
    enc.pop("level_slots", None)
    return enc


def _collator(agent, stage: str, check: bool):
    """(collate function, its name): the trainer's ``EvaluatorCollator``, else :func:`_encode_rows`; with
    ``check`` the two must give identical batches."""
    import torch

    try:
        from rlkit.train.evaluator import EvaluatorCollator
    except ImportError as e:
        return (lambda recs: _encode_rows(agent, stage, recs)), f"agent.encode (rlkit.train: {e})"
    collator = EvaluatorCollator(agent, stage)
    if check:
        recs = _records(TRAIN_BATCH, agent.config.image_size, seed=7)
        a, b = collator(recs), _encode_rows(agent, stage, recs)
        if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
            raise RuntimeError(f"_encode_rows differs from EvaluatorCollator for stage {stage}")
    return collator, "EvaluatorCollator"


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_gib(device) -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def _gib(x: float) -> str:
    return "-" if x != x else f"{x:.1f}"  # nan (CPU) -> "-"


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def bench_stage(agent, stage: str, steps: int, device, check: bool = False) -> dict:
    """Median seconds of a training step (forward, the stage's loss, backward, AdamW) and the peak memory."""
    import torch

    collator, via = _collator(agent, stage, check)
    size = agent.config.image_size
    batches = [collator(_records(TRAIN_BATCH, size, seed=k)) for k in range(WARMUP + steps)]
    agent.train()
    agent.reset_memory()
    opt = torch.optim.AdamW([p for p in agent.parameters() if p.requires_grad], lr=2e-5)
    _reset_peak(device)
    times, losses = [], []
    for i, batch in enumerate(batches):
        batch = {k: v.to(device) for k, v in batch.items()}
        _sync(device)
        t = time.perf_counter()
        out = agent(**batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        if i >= WARMUP:
            times.append(time.perf_counter() - t)
        losses.append(float(out.loss.detach()))
    if not all(map(lambda x: x == x and abs(x) != float("inf"), losses)):
        raise RuntimeError(f"stage {stage}: non-finite loss {losses}")
    peak = _peak_gib(device)
    comps = sorted((out.components or {}).keys())
    del opt
    agent.reset_memory()
    return {"s_step": statistics.median(times), "peak": peak, "loss": losses[-1], "tokens": batch["input_ids"].shape[1],
            "components": ",".join(c for c in comps if "/" not in c), "via": via}


def bench_scoring(agent, reps: int, device) -> dict:
    """items/s of the head read-out: encoded batches under no_grad, and ``score`` end to end (batch 4)."""
    import torch

    size = agent.config.image_size
    recs = _records(SCORE_BATCH, size, seed=99)
    src, ed, ins = [r.source for r in recs], [r.edited for r in recs], [r.instruction for r in recs]
    agent.eval()
    _reset_peak(device)
    enc = {k: v.to(device) for k, v in agent.encode(src, ed, ins).items()}

    def fwd() -> None:
        with torch.no_grad():
            agent(**enc)
        _sync(device)

    def e2e() -> None:
        agent.score(src, ed, ins, batch_size=SCORE_BATCH)
        _sync(device)

    out = {}
    for name, fn in (("forward", fwd), ("score", e2e)):
        fn()  # warm-up
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[name] = SCORE_BATCH / statistics.median(times)
    out["peak"] = _peak_gib(device)
    scores = agent.score(src, ed, ins, batch_size=SCORE_BATCH)
    if scores.shape != (SCORE_BATCH, 3) or not ((scores >= 0) & (scores <= 100)).all():
        raise RuntimeError(f"score returned {scores!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--gpu-only", action="store_true", help="the Qwen3-VL-8B dims on CUDA (the default mode)")
    mode.add_argument("--tiny", action="store_true", help="a 2-layer Qwen3-VL on CPU in fp32 (smoke test)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per stage (default 3; --tiny 2)")
    ap.add_argument("--stages", default="scores,levels", help="stages to time, among scores,levels")
    a = ap.parse_args(argv)
    import torch

    if not a.tiny and not torch.cuda.is_available():
        print("evaluator_gpu: no CUDA device (use --tiny for the CPU smoke test); skipped")
        return 0
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", message=".*gradient_checkpointing_enable.*deprecated", category=FutureWarning)

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    steps = a.steps if a.steps is not None else (2 if a.tiny else 3)
    if steps < 1:
        ap.error(f"--steps must be >= 1, got {steps}")
    stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in ("scores", "levels")]
    if bad:
        ap.error(f"--stages: unknown {bad}; use scores and/or levels")
    device, dtype = (torch.device("cpu"), torch.float32) if a.tiny else (torch.device("cuda"), torch.bfloat16)
    if a.tiny:
        torch.set_num_threads(int(os.environ.get("RLKIT_BENCH_THREADS", "1")))
    where = "CPU" if a.tiny else torch.cuda.get_device_name()
    dims = "tiny 2-layer Qwen3-VL" if a.tiny else "Qwen3-VL-8B dims"
    print(f"torch {torch.__version__}, {where}, {dims}, {str(dtype).removeprefix('torch.')}, steps {steps} "
          f"(+{WARMUP} warm-up)", flush=True)

    rows: list[tuple[str, ...]] = []
    t0 = time.perf_counter()
    try:
        agent = _build_agent(a.tiny, device, dtype)
        n_train = sum(p.numel() for p in agent.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in agent.parameters())
        build = (f"built in {time.perf_counter() - t0:.1f}s: {n_all / 1e6:.1f}M params, {n_train / 1e6:.2f}M "
                 f"trainable (LoRA r {agent.config.lora_r} + head), image {agent.config.image_size} px")
        print(build, flush=True)
    except Exception as e:  # noqa: BLE001 - report it and end with the table
        traceback.print_exc()
        agent, n_train, build = None, 0, f"build failed: {type(e).__name__}: {e}"
    trainable = f"{n_train / 1e6:.2f}" if agent is not None else "-"
    if agent is not None:
        for stage in stages:
            label = {"scores": "stage 2 scores: MSE + (1 - PLCC)", "levels": "stage 1 levels: level-word CE"}[stage]
            try:
                r = bench_stage(agent, stage, steps, device, check=a.tiny)
                rows.append((label, str(TRAIN_BATCH), f"{r['s_step']:.3f}", "-", _gib(r['peak']), trainable,
                             f"loss {r['loss']:.3f} ({r['components']}), {r['tokens']} tokens/row, {r['via']}"))
            except Exception as e:  # noqa: BLE001 - one failing row must not lose the others
                traceback.print_exc()
                rows.append((label, str(TRAIN_BATCH), "error", "-", "-", trainable, f"{type(e).__name__}: {e}"))
            print(f"  {rows[-1]}", flush=True)
        try:
            r = bench_scoring(agent, 3, device)
            rows.append(("scoring: forward, no_grad (encoded)", str(SCORE_BATCH), "-", f"{r['forward']:.2f}",
                         _gib(r['peak']), trainable, "eval mode"))
            rows.append(("scoring: EvaluationAgent.score", str(SCORE_BATCH), "-", f"{r['score']:.2f}",
                         _gib(r['peak']), trainable, "resize + tokenise + forward"))
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            rows.append(("scoring", str(SCORE_BATCH), "-", "error", "-", trainable, f"{type(e).__name__}: {e}"))
        print(f"  {rows[-1]}", flush=True)

    head = ("row", "batch", "s/step (median)", "items/s", "peak GiB", "trainable M", "notes")
    lines = [f"### EvaluationAgent ({dims}, {str(dtype).removeprefix('torch.')}, gradient checkpointing) on {where}",
             "", build, "",
             "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    lines.append(f"\ntotal {time.perf_counter() - t0:.1f}s, torch {torch.__version__}")
    table = "\n".join(lines)
    print(table)
    out_dir = os.environ.get("OUT")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "evaluator_gpu.md").write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
