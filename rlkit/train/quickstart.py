"""`rlkit quickstart`: SFT then GRPO of a tiny RetouchIQ-style policy in RetouchEnv, on CPU, no download.

The task: photos bundled with scikit-image / scikit-learn, cut into 64x64 crops, each with one of a few
retouching instructions ("Brighten this photo.", "Make it warmer.", ...) whose expert edit is a known
program; the target image is that program executed by the engine. Stage 1 (SFT) imitates *weak*
demonstrations (mostly the expert program with its strength scaled by 0-0.5x or 1.5-2.5x by
``rlkit.data.perturb_program``, as an imprecise editor would do). Stage 2 (GRPO) executes each sampled program in ``VectorRetouchEnv`` and scores it with the
RetouchIQ-Rule reward (``retouchiq_policy_reward``: format + L1 similarity of the executed edit to the
expert edit). Held-out photos (never trained on) measure the policy after SFT and after GRPO.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["QuickstartConfig", "QuickstartResult", "INTENTS", "build_quickstart_rows", "run_quickstart"]

# instruction -> (expert program as {param: value}, short reasoning the policy writes first)
INTENTS: dict[str, tuple[dict[str, float], str]] = {
    "Brighten this photo.": ({"exposure": 1.0}, "It is too dark."),
    "Darken this photo.": ({"exposure": -1.0}, "It is too bright."),
    "Make it warmer.": ({"temperature": 50.0}, "It looks cold."),
    "Make it cooler.": ({"temperature": -50.0}, "It looks warm."),
}
# One SFT demonstration in EXPERT_EVERY is the expert edit; the others are weak variants of it.
EXPERT_EVERY = 3
TRAIN_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle")
HELDOUT_PHOTOS = ("china", "flower")


@dataclass
class QuickstartConfig:
    """Settings of the quickstart run (defaults: about 2-4 minutes on 2 CPU cores)."""

    output_dir: str = "rlkit-quickstart"
    seed: int = 0
    image_size: int = 64
    crops_per_photo: int = 8
    heldout_crops_per_photo: int = 4
    sft_steps: int = 120
    sft_learning_rate: float = 1e-2
    grpo_steps: int = 60
    grpo_learning_rate: float = 1e-3
    batch_size: int = 8
    num_generations: int = 4
    max_completion_length: int = 24
    eval_samples: int = 4
    use_peft: bool = False
    model: str = "tiny:qwen2_5_vl"


@dataclass
class QuickstartResult:
    """What the run measured (also written to metrics.json)."""

    heldout_reward_sft: float
    heldout_reward_grpo: float
    heldout_valid_sft: float
    heldout_valid_grpo: float
    train_reward_first: float
    train_reward_last: float
    seconds: float
    files: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def improvement(self) -> float:
        return self.heldout_reward_grpo - self.heldout_reward_sft


def _crops(photo: Any, n: int, size: int, rng: random.Random) -> list[Any]:
    """``n`` seeded random square crops (40-90% of the shorter side) resized to ``size``."""
    from PIL import Image

    w, h = photo.size
    out = []
    for _ in range(n):
        side = int(min(w, h) * rng.uniform(0.4, 0.9))
        x, y = rng.randint(0, w - side), rng.randint(0, h - side)
        out.append(photo.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC))
    return out


def build_quickstart_rows(photos: Sequence[str], crops_per_photo: int, *, image_size: int = 64,
                          seed: int = 0) -> list[dict[str, Any]]:
    """Rows ``image, instruction, target_image, program, reasoning`` (every crop x every instruction)."""
    import torch

    from rlkit.data.photos import load_photo
    from rlkit.ops import EditProgram, apply_program, to_pil, to_tensor

    rng = random.Random(seed)
    images = [c for name in photos for c in _crops(load_photo(name), crops_per_photo, image_size, rng)]
    rows = []
    for instruction, (params, reasoning) in INTENTS.items():
        program = EditProgram.from_dict(params)
        targets = to_pil(apply_program(torch.cat([to_tensor(im) for im in images]), program))
        for im, tgt in zip(images, targets):
            rows.append({"image": im, "instruction": instruction, "target_image": tgt,
                         "program": json.dumps(program.to_dict()), "reasoning": reasoning})
    return rows


def _rounded(params: dict[str, float]) -> dict[str, float]:
    """Values as a person types them: one decimal for exposure-like sliders (range <= 10), else whole numbers."""
    from rlkit.ops import PARAM_SPECS

    return {k: round(v, 1) if PARAM_SPECS[k].hi - PARAM_SPECS[k].lo <= 10 else float(round(v))
            for k, v in params.items()}


def _sft_rows(rows: Sequence[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """SFT targets: the expert program for 1 row in ``EXPERT_EVERY``, otherwise a weak variant of it
    (``rlkit.data.perturb_program``: the slider scaled by 0-0.5x or 1.5-2.5x), rounded."""
    from rlkit.data import perturb_program
    from rlkit.ops import EditProgram
    from rlkit.train.prompts import retoucher_rows

    weak = []
    for i, r in enumerate(rows):
        program = EditProgram.from_dict(json.loads(r["program"]))
        if i % EXPERT_EVERY != 0:
            program = perturb_program(program, seed * 100_003 + i, n_keys=(1, 1), omit_prob=0.0)
        weak.append({**r, "program": _rounded(program.params)})
    return retoucher_rows(weak, stage="sft", fmt="retouchiq")


class _Progress:
    """A rich progress bar for the quickstart's own loops (trainers show theirs)."""

    def __init__(self, description: str, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.task = self.p.add_task(description, total=total)

    def __enter__(self) -> Callable[[int], None]:
        self.p.start()
        return lambda n: self.p.advance(self.task, n)

    def __exit__(self, *exc: Any) -> None:
        self.p.stop()


def _evaluate(model: Any, processor: Any, rows: Sequence[dict[str, Any]], env_reward: Any, cfg: QuickstartConfig,
              label: str) -> dict[str, Any]:
    """Held-out reward: ``eval_samples`` sampled completions per row, executed in the environment."""
    from rlkit.train.generate import generate_texts
    from rlkit.train.prompts import retoucher_prompt

    prompts = [retoucher_prompt(r["instruction"]) for r in rows]
    with _Progress(f"evaluating {label} on held-out photos", len(rows)) as advance:
        samples = generate_texts(model, processor, prompts, [r["image"] for r in rows],
                                 num_samples=cfg.eval_samples, temperature=1.0,
                                 max_new_tokens=cfg.max_completion_length, seed=cfg.seed, progress=advance)
    flat_rows = [r for r, s in zip(rows, samples) for _ in s]
    flat_texts = [t for s in samples for t in s]
    env_rows = [{k: r[k] for k in ("image", "instruction", "target_image")} for r in flat_rows]
    rewards, infos = env_reward.score(flat_texts, env_rows)
    valid = [bool(v) for v in infos.get("valid", [])]
    per_row = [sum(rewards[i * cfg.eval_samples:(i + 1) * cfg.eval_samples]) / cfg.eval_samples
               for i in range(len(rows))]
    # the best-scoring sample of each row, for the before/after grid
    best = []
    for i in range(len(rows)):
        chunk = list(range(i * cfg.eval_samples, (i + 1) * cfg.eval_samples))
        best.append(flat_texts[max(chunk, key=lambda j: rewards[j])])
    return {"mean_reward": sum(rewards) / len(rewards), "valid_fraction": sum(valid) / max(1, len(valid)),
            "per_row": per_row, "texts": [s[0] for s in samples], "best": best}


def _render(rows: Sequence[dict[str, Any]], texts: Sequence[str], image_size: int) -> list[Any]:
    """Execute each text on its row's photo (RetouchEnv), for the grid; unparseable text keeps the photo."""
    from rlkit.envs import RetouchEnv
    from rlkit.ops import to_pil

    out = []
    env = RetouchEnv(image_size=image_size, fmt="retouchiq")
    for r, t in zip(rows, texts):
        env.reset(options={"row": {"image": r["image"], "instruction": r["instruction"]}})
        env.step(t)
        out.append(to_pil(env.current_image.unsqueeze(0))[0])
    return out


def run_quickstart(cfg: QuickstartConfig | None = None, *, console: Any = None) -> QuickstartResult:
    """Run the whole quickstart and write reward_curve.png, before_after.png, metrics.json to ``output_dir``."""
    import torch
    from datasets import Dataset
    from rich.console import Console
    from trl import GRPOConfig, SFTConfig

    from rlkit.envs import RetouchEnvReward
    from rlkit.rewards import retouchiq_policy_reward
    from rlkit.train.models import load_processing_class, resolve_model_path
    from rlkit.train.plots import reward_history, save_image_grid, save_reward_curve
    from rlkit.train.prompts import retoucher_rows
    from rlkit.train.stages import train_grpo, train_sft

    cfg = cfg or QuickstartConfig()
    console = console or Console()
    t0 = time.time()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    with console.status("building the tiny Qwen2.5-VL policy (cached after the first run)"):
        model_path = resolve_model_path(cfg.model)
        processor = load_processing_class(model_path)
    console.print(f"[bold]policy[/bold] {model_path}")

    with console.status("building the instruction dataset from bundled photos"):
        train_rows = build_quickstart_rows(TRAIN_PHOTOS, cfg.crops_per_photo, image_size=cfg.image_size,
                                           seed=cfg.seed)
        heldout_rows = build_quickstart_rows(HELDOUT_PHOTOS, cfg.heldout_crops_per_photo,
                                             image_size=cfg.image_size, seed=cfg.seed + 100)
    console.print(f"[bold]data[/bold] {len(train_rows)} training rows ({', '.join(TRAIN_PHOTOS)}), "
                  f"{len(heldout_rows)} held-out rows ({', '.join(HELDOUT_PHOTOS)}), {len(INTENTS)} instructions")

    reward = retouchiq_policy_reward(fmt="retouchiq", rule_metric="l1")
    env_reward = RetouchEnvReward(reward, image_size=cfg.image_size, fmt="retouchiq", name="retouchiq")
    common = dict(use_cpu=not torch.cuda.is_available(), bf16=False, report_to="none", save_strategy="no",
                  gradient_checkpointing=False,
                  lr_scheduler_type="constant", per_device_train_batch_size=cfg.batch_size, seed=cfg.seed,
                  logging_steps=1, disable_tqdm=False, dataloader_num_workers=0)
    peft_config = None
    if cfg.use_peft:
        from peft import LoraConfig

        peft_config = LoraConfig(r=64, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")

    console.rule("stage 1: SFT on weak demonstrations")
    sft_ds = Dataset.from_list(_sft_rows(train_rows, cfg.seed))
    sft_args = SFTConfig(output_dir=str(out / "sft"), max_steps=cfg.sft_steps, learning_rate=cfg.sft_learning_rate,
                         max_length=None, **common)
    sft = train_sft(model_path, sft_ds, sft_args, processing_class=processor, peft_config=peft_config)
    policy = sft.model.merge_and_unload() if cfg.use_peft else sft.model
    sft_eval = _evaluate(policy, processor, heldout_rows, env_reward, cfg, "the SFT policy")
    sft_images = _render(heldout_rows, sft_eval["best"], cfg.image_size)
    console.print(f"held-out reward after SFT: {sft_eval['mean_reward']:.4f} "
                  f"(valid programs {sft_eval['valid_fraction']:.0%})")

    console.rule("stage 2: GRPO in RetouchEnv")
    grpo_ds = Dataset.from_list(retoucher_rows(train_rows, stage="grpo", fmt="retouchiq"))
    grpo_args = GRPOConfig(output_dir=str(out / "grpo"), max_steps=cfg.grpo_steps,
                           learning_rate=cfg.grpo_learning_rate, num_generations=cfg.num_generations,
                           max_completion_length=cfg.max_completion_length, beta=0.0, temperature=1.0,
                           **common)
    grpo = train_grpo(policy, [env_reward], grpo_ds, grpo_args, processing_class=processor)
    grpo_eval = _evaluate(grpo.model, processor, heldout_rows, env_reward, cfg, "the GRPO policy")
    grpo_images = _render(heldout_rows, grpo_eval["best"], cfg.image_size)

    steps, rewards = reward_history(grpo.state.log_history)
    curve = save_reward_curve(out / "reward_curve.png", steps, rewards,
                              hlines={"held-out after SFT": sft_eval["mean_reward"],
                                      "held-out after GRPO": grpo_eval["mean_reward"]},
                              title="GRPO of the tiny retoucher in RetouchEnv (RetouchIQ-Rule reward)")
    pick = list(range(0, len(heldout_rows), max(1, len(heldout_rows) // 6)))[:6]
    grid = save_image_grid(
        out / "before_after.png",
        [[heldout_rows[i]["image"], sft_images[i], grpo_images[i], heldout_rows[i]["target_image"]] for i in pick],
        column_titles=["before", f"after SFT (best of {cfg.eval_samples})",
                       f"after GRPO (best of {cfg.eval_samples})", "expert target"],
        row_titles=[heldout_rows[i]["instruction"] for i in pick],
    )
    k = max(1, min(5, len(rewards) // 4))
    result = QuickstartResult(
        heldout_reward_sft=sft_eval["mean_reward"], heldout_reward_grpo=grpo_eval["mean_reward"],
        heldout_valid_sft=sft_eval["valid_fraction"], heldout_valid_grpo=grpo_eval["valid_fraction"],
        train_reward_first=sum(rewards[:k]) / k if rewards else float("nan"),
        train_reward_last=sum(rewards[-k:]) / k if rewards else float("nan"),
        seconds=time.time() - t0,
        files={"reward_curve": str(curve), "before_after": str(grid), "metrics": str(out / "metrics.json"),
               "policy": str(out / "grpo")},
        config=asdict(cfg),
    )
    metrics = {**{k2: v for k2, v in asdict(result).items()}, "improvement": result.improvement,
               "heldout_samples_sft": [[t] for t in sft_eval["texts"][:8]],
               "heldout_samples_grpo": [[t] for t in grpo_eval["texts"][:8]],
               "reward": "retouchiq_policy_reward(fmt='retouchiq', rule_metric='l1'): format + (1 - L1 to expert)",
               "train_reward_curve": {"steps": steps, "reward": rewards}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _summary(console, result, sft_eval, grpo_eval)
    return result


def _summary(console: Any, r: QuickstartResult, sft_eval: dict[str, Any], grpo_eval: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title="rlkit quickstart: held-out photos (china, flower), RetouchIQ-Rule reward (max 2.0)")
    t.add_column("policy")
    t.add_column("mean reward", justify="right")
    t.add_column("valid programs", justify="right")
    t.add_column("example output")
    t.add_row("after SFT", f"{r.heldout_reward_sft:.4f}", f"{r.heldout_valid_sft:.0%}", repr(sft_eval["texts"][0]))
    t.add_row("after GRPO", f"{r.heldout_reward_grpo:.4f}", f"{r.heldout_valid_grpo:.0%}",
              repr(grpo_eval["texts"][0]))
    console.print(t)
    rel = r.improvement / abs(r.heldout_reward_sft) * 100 if r.heldout_reward_sft else float("nan")
    verdict = "[green]beats[/green]" if r.improvement > 0 else "[red]does NOT beat[/red]"
    console.print(f"GRPO {verdict} SFT-only on held-out photos by {r.improvement:+.4f} reward ({rel:+.1f}%); "
                  f"training reward {r.train_reward_first:.3f} -> {r.train_reward_last:.3f}.")
    for name, path in r.files.items():
        console.print(f"  {name:13s} {path}")
    console.print(f"done in {r.seconds:.0f} s")
