"""Perception agents: inference speed, the post-processing share of a perception call, and the trainer's overhead.

Run: ``python benchmarks/perception.py`` (CPU, tiny nets), ``python benchmarks/perception.py --gpu`` (adds the
real-scale configs with random weights on CUDA: step time and peak memory). Measured side by side:

1. **Inference**: ``predict_maps`` images/s for each tiny net on batches of 8 images at 256^2 and 512^2.
2. **Post-processing share**: a perception call = ``predict_maps`` + ``regions_from_maps`` (tau 0.5, EditRefiner's
   opening/closing r=2 and min area 50, dilation H/40) on every map; the share is the regions' time over the
   call's. Target <= 5%.
3. **Trainer overhead**: ``SaliencyTrainer`` (its collator, loss-component logging) against a plain
   ``transformers.Trainer`` on the same model, data and collator, alternating rounds; ratio of median step
   times. Target <= 5%.
4. ``--learning``: the learning measurement of both tiny nets (``rlkit.testing.saliency_learning``):
   AUC-Judd / NSS of the trained net per seed, of its untrained self, uniform and centre bias on held-out photos, and the
   margin (worse trained seed - best baseline) against the seeds' spread.

Timings are medians over repeats; on a shared machine they are noisy (the script prints the load average).
``RLKIT_BENCH_THREADS`` sets torch's CPU threads (default 1: on a loaded 2-core machine more threads lose).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


_REGION_SETTINGS = {"tau": 0.5, "opening": 2, "closing": 2, "min_area": 50}  # EditRefiner's public inference


def _median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _inputs(net, n: int, size: int):
    import torch

    g = torch.Generator().manual_seed(size)
    imgs = [torch.rand(3, size, size, generator=g) for _ in range(n)]
    if net.map_names == ("saliency",):
        return imgs, {"prompts": "a photo of a cat on a sofa"}
    return imgs, {"sources": [torch.rand(3, size, size, generator=g) for _ in range(n)],
                  "instructions": "Warm it up and brighten the image."}


def bench_inference(nets: dict, reps: int) -> list[tuple]:
    from rlkit.policies import regions_from_maps

    rows = []
    for name, net in nets.items():
        for size in (256, 512):
            imgs, kw = _inputs(net, 8, size)
            net.predict_maps(imgs, **kw)  # warm-up
            t_pred = _median_time(lambda net=net, imgs=imgs, kw=kw: net.predict_maps(imgs, **kw), reps)
            maps = net.predict_maps(imgs, **kw)

            def post(maps=maps):
                for m in maps.values():
                    regions_from_maps(m, **_REGION_SETTINGS)

            t_post = _median_time(post, reps)
            rows.append((name, size, 8 / t_pred, t_post / 8 * 1e3, t_post / (t_pred + t_post)))
    return rows


def _train_rows(kind: str, n: int):
    from rlkit.data import BlemishRecord, EditFHFRecord, build_blemish, build_editfhf, dataset_to_records

    if kind == "saliency_text":
        return dataset_to_records(build_blemish(n, 0, size=128, categories=["color_inconsistency"]), BlemishRecord)
    return dataset_to_records(build_editfhf(n, 0, size=128), EditFHFRecord)


def bench_trainer(kind: str, steps: int, rounds: int) -> tuple[float, float]:
    from transformers import Trainer

    from rlkit.policies import load_saliency_net
    from rlkit.testing import tiny_model_path
    from rlkit.train.saliency import SaliencyCollator, SaliencyConfig, SaliencyTrainer

    rows = _train_rows(kind, 32)
    crop = [0.5, 0.5] if kind == "saliency_text" else [1.0, 1.0]
    ours, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(2 * rounds):
            net = load_saliency_net(tiny_model_path(kind)).train()
            args = SaliencyConfig(output_dir=f"{tmp}/{r}", max_steps=steps, per_device_train_batch_size=8,
                                  learning_rate=5e-4, logging_steps=1, save_strategy="no", report_to=[],
                                  use_cpu=True, seed=0, disable_tqdm=True, crop_scale=crop)
            collator = SaliencyCollator(net, crop_scale=crop, seed=0)
            cls = SaliencyTrainer if r % 2 == 0 else Trainer
            trainer = cls(model=net, args=args, train_dataset=rows, data_collator=collator)
            t = time.perf_counter()
            trainer.train()
            (ours if cls is SaliencyTrainer else plain).append((time.perf_counter() - t) / steps)
    return statistics.median(ours), statistics.median(plain)


def bench_gpu(steps: int) -> list[tuple]:
    """Real-scale nets with random weights (no download): step time, peak memory, inference images/s."""
    import torch
    from evaluator_gpu import TEXT_8B, VISION_8B  # this folder is on sys.path when run as a script
    from transformers import T5Config, ViTConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from rlkit.policies import TextSaliencyConfig, TextSaliencyNet, VLMSaliencyConfig, VLMSaliencyNet
    from rlkit.testing.tokenizers import qwen_tokenizer, t5_tokenizer

    dev = torch.device("cuda")
    out = []
    tok5 = t5_tokenizer()
    vit = ViTConfig(image_size=384, patch_size=16, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                    intermediate_size=4096)  # ViT-L/16 at 384
    t5 = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)  # t5-base
    cfg = TextSaliencyConfig(vision_config=vit.to_dict(), text_config=t5.to_dict(), max_text_length=128)
    qtok = qwen_tokenizer()
    ids = {k: qtok.convert_tokens_to_ids(t) for k, t in (("image_token_id", "<|image_pad|>"),
           ("video_token_id", "<|video_pad|>"), ("vision_start_token_id", "<|vision_start|>"),
           ("vision_end_token_id", "<|vision_end|>"))}
    text, vision = TEXT_8B, VISION_8B  # Qwen3-VL-8B, one copy (benchmarks/evaluator_gpu.py)
    vcfg = VLMSaliencyConfig(vlm_config={"model_type": "qwen3_vl", "text_config": text, "vision_config": vision,
                                         **ids}, image_size=448, feature_layer=26)
    for name, build, batch, kw in (
        ("text ViT-L/16-384 + t5-base (full)", lambda: TextSaliencyNet(cfg), 8, {"prompts": "a photo"}),
        ("vlm Qwen3-VL-8B dims (LoRA r64)", lambda: VLMSaliencyNet(vcfg), 1, None),
    ):
        torch.cuda.reset_peak_memory_stats()
        torch.manual_seed(0)
        with torch.device(dev):
            net = build().to(torch.bfloat16)
        if isinstance(net, VLMSaliencyNet):
            net.tokenizer, net.image_processor = qtok, Qwen2VLImageProcessorPil(patch_size=16, merge_size=2,
                                                                                temporal_patch_size=2)
            net.gradient_checkpointing_enable()
            kw = {"sources": None, "instructions": "Warm it up."}
        else:
            net.tokenizer = tok5
        net.train()
        s = net.config.image_size
        imgs = [torch.rand(3, s, s) for _ in range(batch)]
        if isinstance(net, VLMSaliencyNet):
            enc = net.encode(imgs, [torch.rand(3, s, s) for _ in range(batch)], ["Warm it up."] * batch)
            enc.pop("sizes")
            enc = {k: v.to(dev) for k, v in enc.items()}
            enc["labels"] = torch.rand(batch, 2, s, s, device=dev)
            kw["sources"] = [torch.rand(3, s, s) for _ in range(batch)]
        else:
            enc = {"pixel_values": torch.rand(batch, 3, s, s, device=dev), **net.encode_prompts(["a photo"] * batch),
                   "labels": torch.rand(batch, 1, s, s, device=dev)}
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-5)
        times = []
        for i in range(steps + 2):
            torch.cuda.synchronize()
            t = time.perf_counter()
            loss = net(**enc).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated() / 2**30
        n_train = sum(p.numel() for p in net.parameters() if p.requires_grad)
        net.eval()

        def infer(net=net, imgs=imgs, kw=kw):
            net.predict_maps(imgs, **kw)
            torch.cuda.synchronize()

        infer()
        t_inf = _median_time(infer, 3)
        out.append((name, batch, statistics.median(times), peak, n_train / 1e6, batch / t_inf))
        del net, opt, enc
        torch.cuda.empty_cache()
    return out


def _learning(console) -> None:
    from rich.table import Table

    from rlkit.testing.saliency_learning import margins, text_learning_run, vlm_learning_run

    t = Table(title="learning on held-out photos (tiny nets, 80 steps, seeds 0 and 1): AUC-Judd / NSS")
    for c in ("net / map", "metric", "trained (per seed)", "uniform", "centre", "untrained (per seed)", "margin",
              "spread"):
        t.add_column(c, justify="left" if c in ("net / map", "metric") else "right")
    runs = {"text / saliency": text_learning_run()}
    runs.update({f"vlm / {k}": v for k, v in vlm_learning_run().items()})
    for name, run in runs.items():
        m = margins(run["trained"], run["baselines"])
        b = run["baselines"]
        for metric in ("auc_judd", "nss"):
            t.add_row(f"{name} (n={run['n']})", metric, ", ".join(f"{s[metric]:.3f}" for s in run["trained"]),
                      f"{b['uniform'][metric]:.3f}", f"{b['centre'][metric]:.3f}",
                      ", ".join(f"{v[metric]:.3f}" for k, v in b.items() if k.startswith("untrained")),
                      f"{m[metric]['margin']:.3f}", f"{m[metric]['spread']:.3f}")
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="also the real-scale configs on CUDA (random weights)")
    ap.add_argument("--gpu-only", action="store_true", help="only the real-scale configs on CUDA")
    ap.add_argument("--learning", action="store_true", help="only the learning measurement (both nets, 2 seeds)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6, help="training steps per trainer round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating trainer rounds")
    a = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("RLKIT_BENCH_THREADS", "1")))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    console = Console()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {load:.2f}")
    if a.learning:
        _learning(console)
        return 0
    if not a.gpu_only:
        from rlkit.policies import load_saliency_net
        from rlkit.testing import tiny_model_path

        nets = {k: load_saliency_net(tiny_model_path(k)) for k in ("saliency_text", "saliency_vlm")}
        t = Table(title="inference (predict_maps, batch 8) and post-processing share (target <= 5%)")
        for c in ("net", "input px", "images/s", "regions ms/img", "post share"):
            t.add_column(c, justify="left" if c == "net" else "right")
        for name, size, ips, ms, share in bench_inference(nets, a.reps):
            t.add_row(name, f"{size}^2", f"{ips:.1f}", f"{ms:.2f}", f"{100 * share:.1f}%")
        console.print(t)
        t = Table(title=f"training step: SaliencyTrainer vs plain transformers.Trainer ({a.steps} steps x "
                        f"{a.rounds} rounds each, batch 8; target overhead <= 5%)")
        for c in ("net", "ours s/step", "plain s/step", "ratio"):
            t.add_column(c, justify="left" if c == "net" else "right")
        for kind in ("saliency_text", "saliency_vlm"):
            ours, plain = bench_trainer(kind, a.steps, a.rounds)
            t.add_row(kind, f"{ours:.3f}", f"{plain:.3f}", f"{ours / plain:.3f}")
        console.print(t)
    if a.gpu or a.gpu_only:
        if not torch.cuda.is_available():
            console.print("--gpu: no CUDA device; skipped")
            return 0
        t = Table(title=f"real-scale configs on {torch.cuda.get_device_name()} (random weights, bf16, AdamW)")
        for c in ("net", "batch", "s/step", "peak GiB", "trainable M", "infer img/s"):
            t.add_column(c, justify="left" if c == "net" else "right")
        for name, b, step, peak, ntr, ips in bench_gpu(a.steps):
            t.add_row(name, str(b), f"{step:.3f}", f"{peak:.1f}", f"{ntr:.1f}", f"{ips:.2f}")
        console.print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
