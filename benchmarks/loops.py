"""Refinement loops: where a turn's time goes, and (``--learning``) whether the tiny agents learn.

Run: ``python benchmarks/loops.py`` (speed) and ``python benchmarks/loops.py --learning [--seeds 0,1,2]``
(``--evaluator-only``: part 1 only; ``--radius-scale 3``: flaw disks 3 x H/20, ~9% of the pixels each;
``--probe``: ridge probes of the MOS on fixed pixel and tiny-backbone features, an upper reference for part 1).

**Speed** (CPU, tiny models, EditFHF-style 128 px items): one EditRefiner run per item, 4 turns
(``run_all_turns``) with the tiny VLM saliency net, the tiny Qwen3-VL generating the reasoning answer
(``--reasoning-tokens`` new tokens; its untrained text is replaced by a fixed diagnosis so every turn goes on to
the tool), rule-based action, the tiny SD-inpaint pipeline (2 steps) and the tiny evaluation agent. Per turn:
model time (perception, reasoning, tool, evaluation) and rlkit's own work (regions and masks, conversions, the
rule-based action, bookkeeping, and writing the trace: JSON + PNG strip, amortised over the turns). Baseline in
the same process: the same model calls made directly on the same tensors, no loop. Target: rlkit's share
<= 5% of a turn. Images stay tensors between the agents (the trace converts to PNG once, at the end).

**Learning** (``--learning``), on synthetic EditFHF-style items (``rlkit.data.build_editfhf``, MOS derived from
what was injected; train photos vs the held-out photos ``coffee``, ``motorcycle``):

1. the evaluation agent (``recipes/evaluator/config_tiny.yaml`` settings: tiny Qwen3-VL trained fully, stage 1
   levels then stage 2 Eq. 8) per seed: held-out SRCC per dimension, head and level read-outs, against the same
   agent untrained and the full-reference rows (SSIM, PSNR of edited vs source). Criterion: the worse trained
   seed beats the best baseline by more than the trained seeds' spread. A control target the tiny backbone can
   see (100 x the edited image's mean brightness) shows whether the training path itself works;
2. the EditRefiner loop with tiny trained agents (perception trained by ``train_saliency``, the evaluator of
   seed 0, a reasoner SFT-trained on ``editrefiner_reasoner_rows``), tools: the tiny SD-inpaint pipeline and a
   classical inpainter (scikit-image biharmonic), on held-out items: the evaluator's overall after turns 0..4
   and with auto-stop, images returned worse than their input (must be 0), against the same loop with random
   masks and with the ground-truth maps; and an independent check: mean L1 of the returned image to the
   flawless intended edit. The same rows with an oracle evaluator (100 exp(-20 L1 to the intended edit))
   separate what the loop machinery can do from what the tiny agents know.

``RLKIT_BENCH_THREADS`` sets torch's threads (default 1: on a loaded 2-core machine more threads lose).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DIMS = ("perceptual_quality", "instruction_following", "visual_consistency")
HELDOUT = ("coffee", "motorcycle")
TINY_EVALUATOR = dict(image_size=128, head_dims=(64, 32), head_dropout=(0.0, 0.0), backbone_training="full",
                      plcc_memory=64, task_prompt="Rate the edit: perceptual quality, instruction following, "
                                                  "visual consistency.")


def _load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _data(n_train: int, n_test: int, size: int, seed: int = 0, radius_scale: float = 1.0):
    from rlkit.data import build_editfhf, default_photos

    photos = [p for p in default_photos() if p not in HELDOUT]
    return (build_editfhf(n_train, seed, size=size, photos=photos, radius_scale=radius_scale),
            build_editfhf(n_test, seed + 1, size=size, photos=list(HELDOUT), radius_scale=radius_scale))


def _tensor(img):
    import torch

    return torch.from_numpy(np.asarray(img.convert("RGB"), np.float32) / 255.0).permute(2, 0, 1).contiguous()


class FixedAnswer:
    """The tiny VLM's generation, timed as the reasoning call; its text replaced by a fixed diagnosis."""

    def __init__(self, backend, answer: str):
        self.backend, self.answer = backend, answer

    def generate(self, requests):
        self.backend.generate(requests)
        return [self.answer] * len(requests)


class BiharmonicInpaint:
    """A classical inpainter (scikit-image's biharmonic fill) with the InpaintTool call signature."""

    def __call__(self, image, mask, prompt="", *, seed=None):
        import torch
        from skimage.restoration import inpaint_biharmonic

        arr = image.permute(1, 2, 0).double().numpy()
        out = inpaint_biharmonic(arr, np.asarray(mask, bool), channel_axis=-1)
        return torch.from_numpy(out).float().permute(2, 0, 1).clamp(0, 1)


class IntendedL1Score:
    """An oracle evaluator for one item: all three scores = 100 exp(-20 L1(edited, intended edit))."""

    def __init__(self, intended):
        self.intended = _tensor(intended)

    def score(self, sources, edited, instructions):
        out = []
        for e in edited:
            t = e if hasattr(e, "permute") else _tensor(e)
            v = 100.0 * float(np.exp(-20.0 * float((t - self.intended).abs().mean())))
            out.append([v, v, v])
        return np.array(out)


class RecordMaps:
    """A perception double returning one item's ground-truth maps (the injected regions' Gaussian maps)."""

    map_names = ("artifact", "failure")

    def __init__(self, row):
        from rlkit.data import EditFHFRecord

        self.maps = EditFHFRecord.from_example(row).saliency_maps()

    def predict_maps(self, images, **kw):
        return {k: np.stack([m] * len(images)) for k, m in zip(self.map_names, self.maps)}


class RandomMaps:
    """A perception double with random maps: as many disks of radius H/20 as ``inner`` finds regions at ``tau``."""

    def __init__(self, inner, tau: float, seed: int = 0):
        self.inner, self.tau, self.map_names, self.rng = inner, tau, inner.map_names, np.random.default_rng(seed)

    def predict_maps(self, images, **kw):
        from rlkit.policies import regions_from_map

        maps = self.inner.predict_maps(images, **kw)
        out = {}
        for name, batch in maps.items():
            res = []
            for m in batch:
                h, w = m.shape
                k = len(regions_from_map(m, tau=self.tau, min_area=4, dilation=0))
                yy, xx = np.mgrid[0:h, 0:w]
                r = np.zeros((h, w), np.float32)
                for _ in range(k):
                    cx, cy = self.rng.uniform(0, w), self.rng.uniform(0, h)
                    r[(xx - cx) ** 2 + (yy - cy) ** 2 <= (h / 20) ** 2] = 0.9
                res.append(r)
            out[name] = np.stack(res)
        return out


# ---------------------------------------------------------------------------------------------- speed


def bench_speed(n: int, size: int, tokens: int) -> None:
    import torch

    from rlkit.envs import InpaintTool
    from rlkit.loops import EditRefiner
    from rlkit.policies import ActionAgent, EvaluationAgent, ToolSpec, load_saliency_net
    from rlkit.rewards import TransformersBackend
    from rlkit.testing import tiny_model_path

    _, test = _data(1, n, size)
    perception = load_saliency_net(tiny_model_path("saliency_vlm"))
    torch.manual_seed(0)
    evaluator = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), **TINY_EVALUATOR).eval()
    vlm = TransformersBackend(str(tiny_model_path("qwen3_vl")), max_new_tokens=tokens)
    reasoner = FixedAnswer(vlm, '[{"flaw_type": "missing_edit", "description": "the edit is missing here"}]')
    tool = InpaintTool.from_pretrained(tiny_model_path("sd_inpaint"), num_inference_steps=2, seed=0)
    loop = EditRefiner(perception=perception, reasoner=reasoner, action=ActionAgent([ToolSpec("sd", "inpaint")]),
                       tools={"sd": tool}, evaluator=evaluator, tau=0.3, min_area=1, run_all_turns=True)
    model_steps = ("perception", "reasoning", "tool", "evaluation")
    totals = {k: 0.0 for k in (*model_steps, "rlkit", "trace")}
    turns, direct = 0, 0.0
    out = Path(tempfile.mkdtemp(prefix="rlkit-bench-loops-"))
    loop.run(test[0]["edited"], source=test[0]["source"], instruction=test[0]["instruction"], max_turns=1)  # warm
    for i in range(n):
        row = test[i]
        t = time.perf_counter()
        trace = loop.run(row["edited"], source=row["source"], instruction=row["instruction"])
        wall = time.perf_counter() - t
        t = time.perf_counter()
        trace.save(out / str(i))
        totals["trace"] += time.perf_counter() - t
        model = 0.0
        for turn in trace.turns:
            for k in model_steps:
                totals[k] += turn.timings.get(k, 0.0)
                model += turn.timings.get(k, 0.0)
        input_eval = wall - sum(sum(x.timings.values()) for x in trace.turns)  # scoring the input: evaluation
        totals["evaluation"] += input_eval
        totals["rlkit"] += wall - model - input_eval
        turns += len(trace.turns)
        # baseline: the same model calls made directly, once per turn, on the same tensors
        src = _tensor(row["source"])
        for turn, img in zip(trace.turns, trace.tensors[:-1]):
            t = time.perf_counter()
            with torch.inference_mode():
                perception.predict_maps([img], sources=[src], instructions=[row["instruction"]])
                vlm.generate([[{"role": "user", "content": [{"type": "image", "image": src},
                                                            {"type": "image", "image": img},
                                                            {"type": "text", "text": row["instruction"]}]}]] * 2)
                tool(img, np.asarray(turn.maps["artifact"] > 0.3), "x", seed=0)
                evaluator.score([src], [turn.image], [row["instruction"]])
            direct += time.perf_counter() - t
    per_turn = {k: v / turns * 1e3 for k, v in totals.items()}
    loop_turn = sum(per_turn.values())
    own = per_turn["rlkit"] + per_turn["trace"]
    print(f"\nEditRefiner, {n} items x 4 turns at {size} px ({turns} turns), torch threads "
          f"{torch.get_num_threads()}, {_load()}")
    print("| step | ms / turn | share |\n|---|---|---|")
    for k in (*model_steps, "rlkit", "trace"):
        label = {"rlkit": "rlkit (regions, masks, conversion, rules, bookkeeping)", "trace": "trace JSON + PNG strip"}
        print(f"| {label.get(k, k + ' (model)')} | {per_turn[k]:.1f} | {per_turn[k] / loop_turn:.1%} |")
    print(f"| **turn** | {loop_turn:.1f} | rlkit's share {own / loop_turn:.1%} (target <= 5%) |")
    print(f"\nbaseline, the same model calls made directly: {direct / turns * 1e3:.1f} ms / turn; "
          f"loop / direct = {loop_turn / (direct / turns * 1e3):.2f}")


# ---------------------------------------------------------------------------------------------- learning


def _srcc_rows(pred: np.ndarray, mos: np.ndarray) -> dict[str, float | None]:
    from rlkit.metrics import editrefiner_overall, srcc

    cols = {d: (pred[:, k], mos[:, k]) for k, d in enumerate(DIMS)}
    cols["overall"] = (editrefiner_overall(*pred.T), editrefiner_overall(*mos.T))
    return {d: (srcc(a, b) if np.ptp(a) > 0 and np.ptp(b) > 0 else None) for d, (a, b) in cols.items()}


def _train_evaluator(train, seed: int, out: Path, levels_steps: int, score_steps: int, target=None):
    import torch

    from rlkit.policies import EvaluationAgent
    from rlkit.testing import tiny_model_path
    from rlkit.train.evaluator import EvaluatorConfig, train_evaluator

    if target is not None:
        train = train.map(lambda r: {d: float(target(r)) for d in DIMS})
    torch.manual_seed(seed)
    agent = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), **TINY_EVALUATOR)
    common = dict(use_cpu=True, report_to=[], per_device_train_batch_size=16, logging_steps=1000, save_strategy="no",
                  disable_tqdm=True, seed=seed, lr_scheduler_type="constant", weight_decay=0.0, learning_rate=1e-3)
    if levels_steps:
        train_evaluator(agent, train, EvaluatorConfig(stage="levels", max_steps=levels_steps,
                                                      output_dir=str(out / "levels"), **common), summary=False)
    train_evaluator(agent, train, EvaluatorConfig(stage="scores", max_steps=score_steps, output_dir=str(out),
                                                  **common), summary=False)
    return agent.eval()


def bench_evaluator_learning(seeds: list[int], n_train: int, n_test: int, levels_steps: int, score_steps: int,
                             work: Path, radius_scale: float = 1.0, control: bool = True):
    import torch

    from rlkit.eval import FullReferenceEvaluator
    from rlkit.policies import EvaluationAgent
    from rlkit.testing import tiny_model_path

    train, test = _data(n_train, n_test, 128, radius_scale=radius_scale)
    mos = np.array([[test[i][d] for d in DIMS] for i in range(len(test))])
    srcs, eds, ins = test["source"], test["edited"], test["instruction"]
    rows: dict[str, list[dict]] = {}
    for m in ("ssim", "psnr"):
        rows[m.upper()] = [_srcc_rows(FullReferenceEvaluator(m).score(srcs, eds, ins), mos)]
    agents = {}
    for seed in seeds:
        torch.manual_seed(seed)
        fresh = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), **TINY_EVALUATOR).eval()
        p = fresh.predict(srcs, eds, ins, readouts=("head", "levels"))
        rows.setdefault("untrained head", []).append(_srcc_rows(p["head"], mos))
        rows.setdefault("untrained levels", []).append(_srcc_rows(p["levels"], mos))
        t = time.perf_counter()
        agent = _train_evaluator(train, seed, work / f"ev{seed}", levels_steps, score_steps)
        p = agent.predict(srcs, eds, ins, readouts=("head", "levels"))
        rows.setdefault("trained head", []).append(_srcc_rows(p["head"], mos))
        rows.setdefault("trained levels", []).append(_srcc_rows(p["levels"], mos))
        agents[seed] = agent
        print(f"  seed {seed}: trained in {time.perf_counter() - t:.0f} s", flush=True)
    # control: a target the tiny backbone can see, same trainer
    bright = lambda r: 100.0 * float(np.asarray(r["edited"], np.float32).mean() / 255.0)  # noqa: E731
    mos_c = np.array([[bright(test[i])] * 3 for i in range(len(test))])
    for seed in seeds[:2] if control else []:
        agent = _train_evaluator(train, seed, work / f"ctl{seed}", 0, score_steps, target=bright)
        rows.setdefault("control (brightness) trained", []).append(_srcc_rows(agent.score(srcs, eds, ins), mos_c))
        torch.manual_seed(seed)
        fresh = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), **TINY_EVALUATOR).eval()
        rows.setdefault("control (brightness) untrained", []).append(_srcc_rows(fresh.score(srcs, eds, ins), mos_c))
    print(f"\nEvaluator SRCC with held-out MOS ({len(test)} items, {n_train} train, levels {levels_steps} + scores "
          f"{score_steps} steps, seeds {seeds}, flaw disks of radius {radius_scale:g} x H/20; {_load()})")
    print("| method | " + " | ".join(DIMS) + " | overall |\n|---|" + "---|" * 4)
    for name, runs in rows.items():
        cells = []
        for d in (*DIMS, "overall"):
            vals = [r[d] for r in runs]
            cells.append(" / ".join("–" if v is None else f"{v:.3f}" for v in vals))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\ncriterion per dimension: min(trained head) - max(baselines) vs spread(trained head)")
    for d in (*DIMS, "overall"):
        tr = [r[d] for r in rows["trained head"] if r[d] is not None]
        base = [r[d] for k in ("SSIM", "PSNR", "untrained head") for r in rows[k] if r[d] is not None]
        if tr and base:
            margin, spread = min(tr) - max(base), max(tr) - min(tr)
            print(f"  {d}: margin {margin:+.3f}, spread {spread:.3f} -> "
                  f"{'learns' if margin > spread and margin > 0 else 'no clear learning'}")
    return agents, train, test


def _blocks(a: np.ndarray) -> np.ndarray:
    """(128, 128, 3) -> (64, 3): the means of the 8 x 8 blocks of 16 x 16 pixels."""
    return a.reshape(8, 16, 8, 16, 3).mean((1, 3)).reshape(64, 3)


def _probe_features(ds, kind: str, agent=None) -> np.ndarray:
    import torch

    out = []
    if kind == "backbone":  # the tiny backbone: last prompt token, |edited - source| and edited image tokens
        with torch.inference_mode():
            for i in range(0, len(ds), 16):
                part = ds.select(range(i, min(i + 16, len(ds))))
                enc = agent.encode(part["source"], part["edited"], part["instruction"])
                ids = enc["input_ids"]
                is_img = ids == agent.config.vlm_config.image_token_id
                h = agent.backbone.model(input_ids=ids, attention_mask=enc["attention_mask"],
                                         pixel_values=enc["pixel_values"], image_grid_thw=enc["image_grid_thw"],
                                         mm_token_type_ids=is_img.int(), use_cache=False).last_hidden_state
                for k in range(len(ids)):
                    toks = h[k][is_img[k]]
                    n = toks.shape[0] // 2
                    out.append(torch.cat([h[k, int(enc["score_index"][k])], (toks[n:] - toks[:n]).abs().mean(0),
                                          toks[n:].flatten()]).numpy())
        return np.array(out)
    for r in ds:
        e, s, t = (np.asarray(r[c], np.float32) / 255.0 for c in ("edited", "source", "intended"))
        std = e.reshape(8, 16, 8, 16, 3).std((1, 3))
        if kind == "pixels":
            out.append(np.concatenate([np.abs(_blocks(e - s)).ravel(), std.ravel()]))
        elif kind == "sorted":  # permutation-invariant: a block whose change differs from the rest stands out
            d = _blocks(e - s)
            out.append(np.concatenate([np.sort(np.abs(d - np.median(d, 0)).sum(1)), np.sort(std.mean(-1).ravel())]))
        else:  # "intended": needs the flawless edit, which an evaluator never sees
            out.append(np.sort(np.abs(_blocks(e - t)).sum(1)))
    return np.array(out)


def bench_evaluator_probe(n_train: int, n_test: int, radius_scale: float) -> None:
    """Is the injected-flaw MOS predictable from the inputs at all? Ridge regressions (alpha by CV) on fixed
    features, trained on the training items, held-out SRCC: which part of the signal a tiny evaluator could use."""
    import torch
    from sklearn.linear_model import RidgeCV

    from rlkit.policies import EvaluationAgent
    from rlkit.testing import tiny_model_path

    train, test = _data(n_train, n_test, 128, radius_scale=radius_scale)
    y_tr, y_te = (np.array([[ds[i][d] for d in DIMS] for i in range(len(ds))]) for ds in (train, test))
    torch.manual_seed(0)
    agent = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), **TINY_EVALUATOR).eval()
    print(f"\nRidge probes, held-out SRCC ({len(test)} items, {n_train} train, flaw disks of radius "
          f"{radius_scale:g} x H/20; {_load()})")
    print("| features | " + " | ".join(DIMS) + " | overall | train overall |\n|---|" + "---|" * 5)
    names = {"pixels": "8 x 8 blocks: mean abs(edited - source), edited std",
             "sorted": "sorted block deviations of (edited - source) from their median, sorted block std",
             "backbone": "tiny backbone (fixed): last token, abs(edited - source) and edited image tokens",
             "intended": "reference: sorted blocks of abs(edited - intended edit) (needs the flawless edit)"}
    for kind, label in names.items():
        x_tr, x_te = _probe_features(train, kind, agent), _probe_features(test, kind, agent)
        m = RidgeCV(alphas=np.logspace(-3, 4, 15)).fit(x_tr, y_tr)
        te, tr = _srcc_rows(m.predict(x_te), y_te), _srcc_rows(m.predict(x_tr), y_tr)
        print(f"| {label} | " + " | ".join(f"{te[d]:.3f}" for d in (*DIMS, "overall")) +
              f" | {tr['overall']:.3f} |", flush=True)


def _train_perception(train, work: Path, steps: int):
    from rlkit.policies import load_saliency_net
    from rlkit.testing import tiny_model_path
    from rlkit.train.saliency import SaliencyConfig, train_saliency

    net = load_saliency_net(tiny_model_path("saliency_vlm")).train()
    args = SaliencyConfig(output_dir=str(work / "perception"), max_steps=steps, per_device_train_batch_size=16,
                          learning_rate=5e-4, use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True,
                          logging_steps=1000, seed=0)
    train_saliency(net, train, args)
    return net.eval()


def _train_reasoner(train, work: Path, steps: int):
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig

    from rlkit.policies import editrefiner_reasoner_rows, load_processor
    from rlkit.rewards import TransformersBackend
    from rlkit.testing import tiny_model_path
    from rlkit.train import train_sft

    path = tiny_model_path("qwen3_vl")
    proc = load_processor(path)
    rows = editrefiner_reasoner_rows(train, stage="sft")
    model = AutoModelForImageTextToText.from_pretrained(path)
    args = SFTConfig(output_dir=str(work / "reasoner"), max_steps=steps, per_device_train_batch_size=8,
                     learning_rate=3e-3, lr_scheduler_type="constant", use_cpu=True, bf16=False, report_to=[],
                     save_strategy="no", logging_steps=1000, disable_tqdm=True)
    trainer = train_sft(model, Dataset.from_list(rows), args, processing_class=proc, progress=None)
    return TransformersBackend(trainer.model.eval(), proc, max_new_tokens=96)


def bench_loop_learning(evaluator, train, test, work: Path, n_items: int, perception_steps: int,
                        reasoner_steps: int, tau: float) -> None:
    import torch

    from rlkit.envs import InpaintTool
    from rlkit.loops import EditRefiner
    from rlkit.policies import ActionAgent, ToolSpec, parse_diagnosis
    from rlkit.testing import tiny_model_path

    t = time.perf_counter()
    perception = _train_perception(train, work, perception_steps)
    reasoner = _train_reasoner(train, work, reasoner_steps)
    print(f"  perception ({perception_steps} steps) and reasoner ({reasoner_steps} SFT steps) trained in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    peaks = perception.predict_maps(test["edited"], sources=test["source"], instructions=test["instruction"])
    print("  held-out map peaks (median): " + ", ".join(f"{k} {np.median(v.max(axis=(1, 2))):.3f}"
                                                     for k, v in peaks.items()))
    tools = {"classical": ({"bh": BiharmonicInpaint()}, [ToolSpec("bh", "inpaint")]),
             "sd_inpaint (tiny, random)": ({"sd": InpaintTool.from_pretrained(tiny_model_path("sd_inpaint"),
                                                                             num_inference_steps=2, seed=0)},
                                           [ToolSpec("sd", "inpaint")])}
    items = [test[i] for i in range(min(n_items, len(test)))]
    spread = np.ptp(evaluator.overall(test["source"], test["edited"], test["instruction"]))
    print(f"\nEditRefiner loop on {len(items)} held-out items, tau {tau} ({_load()}); the tiny trained evaluator's "
          f"overall spans {spread:.3f} points over the {len(test)} held-out items")
    print("| evaluator | tool | masks | turn 0 | turn 1 | turn 2 | turn 3 | turn 4 | auto-stop | auto - turn 0 "
          "(mean ± sd) | returned worse | turns run / failed | L1 to intended: input -> returned |")
    print("|---|---|---|" + "---|" * 10)
    parse_ok = []
    for ev_name in ("tiny trained", "oracle: L1 to intended"):
        for tool_name, (fns, specs) in tools.items():
            for masks in ("perception", "random", "ground truth"):
                res, worse, turns, failed, l1_in, l1_out = [], 0, 0, 0, [], []
                rand = RandomMaps(perception, tau, seed=0)
                for row in items:
                    per = {"perception": perception, "random": rand}.get(masks) or RecordMaps(row)
                    ev = evaluator if ev_name == "tiny trained" else IntendedL1Score(row["intended"])
                    loop = EditRefiner(perception=per, reasoner=reasoner, action=ActionAgent(specs), tools=fns,
                                       evaluator=ev, tau=tau, min_area=4, run_all_turns=True)
                    with torch.inference_mode():
                        tr = loop.run(row["edited"], source=row["source"], instruction=row["instruction"])
                    o = tr.overalls
                    o = o + [o[-1]] * (5 - len(o))
                    res.append(o[:5] + [tr.overalls[tr.stop_turn]])
                    worse += tr.overalls[tr.stop_turn] < tr.overalls[0]
                    turns += len(tr.turns)
                    failed += len(tr.failed_turns)
                    parse_ok += [parse_diagnosis(a).ok for tt in tr.turns for a in tt.answers.values()]
                    intended = _tensor(row["intended"])
                    l1_in.append(float((tr.tensors[0] - intended).abs().mean()))
                    l1_out.append(float((tr.best_image - intended).abs().mean()))
                r = np.array(res)
                gain = r[:, 5] - r[:, 0]
                print(f"| {ev_name} | {tool_name} | {masks} | " + " | ".join(f"{v:.2f}" for v in r.mean(0)) +
                      f" | {gain.mean():+.3f} ± {gain.std():.3f} | {worse} | {turns} / {failed} | "
                      f"{np.mean(l1_in):.4f} -> {np.mean(l1_out):.4f} |", flush=True)
    if parse_ok:
        print(f"\nreasoner answers that parse: {np.mean(parse_ok):.0%} of {len(parse_ok)}")


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learning", action="store_true", help="measure learning instead of speed")
    ap.add_argument("--n", type=int, default=4, help="items for the speed run")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--reasoning-tokens", type=int, default=48)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--train", type=int, default=256)
    ap.add_argument("--test", type=int, default=64)
    ap.add_argument("--levels-steps", type=int, default=60)
    ap.add_argument("--score-steps", type=int, default=120)
    ap.add_argument("--loop-items", type=int, default=24)
    ap.add_argument("--perception-steps", type=int, default=100)
    ap.add_argument("--reasoner-steps", type=int, default=150)
    ap.add_argument("--tau", type=float, default=0.15,
                    help="region threshold of the loop (the tiny perception net's maps peak well below 0.5)")
    ap.add_argument("--loop-only", action="store_true", help="train one evaluator seed, then the loop part")
    ap.add_argument("--evaluator-only", action="store_true", help="only the evaluator part of --learning")
    ap.add_argument("--probe", action="store_true",
                    help="ridge probes of the MOS on fixed features (pixels, the tiny backbone), then exit")
    ap.add_argument("--no-control", action="store_true", help="skip the brightness control of the evaluator part")
    ap.add_argument("--radius-scale", type=float, default=1.0,
                    help="flaw disk radius in units of H/20 (build_editfhf's radius_scale; 1: the papers' disks, "
                         "~1%% of the pixels each)")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("RLKIT_BENCH_THREADS", "1")))
    if not args.learning:
        bench_speed(args.n, args.size, args.reasoning_tokens)
        return 0
    if args.probe:
        bench_evaluator_probe(args.train, args.test, args.radius_scale)
        return 0
    work = Path(tempfile.mkdtemp(prefix="rlkit-bench-learning-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.loop_only and args.evaluator_only:
        ap.error("--loop-only and --evaluator-only exclude each other")
    if args.loop_only:
        train, test = _data(args.train, args.test, 128, radius_scale=args.radius_scale)
        evaluator = _train_evaluator(train, seeds[0], work / "ev", args.levels_steps, args.score_steps)
    else:
        agents, train, test = bench_evaluator_learning(seeds, args.train, args.test, args.levels_steps,
                                                       args.score_steps, work, args.radius_scale,
                                                       control=not args.no_control)
        if args.evaluator_only:
            return 0
        evaluator = agents[seeds[0]]
    bench_loop_learning(evaluator, train, test, work, args.loop_items, args.perception_steps, args.reasoner_steps,
                        args.tau)
    return 0


if __name__ == "__main__":
    sys.exit(main())
