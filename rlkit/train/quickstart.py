"""`rlkit quickstart`: SFT then GRPO of a tiny RetouchIQ-style policy in RetouchEnv, on CPU, no download.

The task: photos bundled with scikit-image / scikit-learn, cut into 64x64 crops, each with one of a few
retouching instructions ("Brighten this photo.", "Make it warmer.", ...) whose expert edit is a known
program; the target image is that program executed by the engine. Stage 1 (SFT) imitates a *timid*
editor (every demonstration applies only 20-70% of the expert's strength), so SFT alone under-edits.
Stage 2 (GRPO) executes each sampled
program in ``VectorRetouchEnv`` and scores it by format + *improvement* over the unedited photo
(``ImageImprovementReward``: 0 for the identity edit, 1 for the expert edit), so doing nothing earns
nothing. Held-out photos (never trained on) measure the L1 distance to the expert target of the identity
edit, the SFT policy and the GRPO policy.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from datasets import Dataset
from peft import LoraConfig
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from transformers import PreTrainedModel, PreTrainedTokenizerBase, ProcessorMixin
from trl import GRPOConfig, SFTConfig

from rlkit.data import load_photo
from rlkit.envs import RetouchEnvReward, VectorRetouchEnv
from rlkit.metrics import l1
from rlkit.ops import PARAM_SPECS, EditProgram, apply_program, to_pil, to_tensor
from rlkit.policies import load_processing_class, retoucher_prompt, retoucher_rows
from rlkit.rewards import FormatReward, ImageImprovementReward, WeightedSum
from rlkit.testing import resolve_model_name  # the quickstart is a demo on the tiny models, by design
from rlkit.train.generate import generate_texts
from rlkit.train.plots import reward_history, save_image_grid, save_reward_curve
from rlkit.train.progress import quiet_third_party
from rlkit.train.stages import train_grpo, train_sft

__all__ = ["QuickstartConfig", "QuickstartResult", "INTENTS", "build_quickstart_rows", "quickstart_reward",
           "run_quickstart"]

T = TypeVar("T")

# instruction -> (expert program as {param: value}, short reasoning the policy writes first)
INTENTS: dict[str, tuple[dict[str, float], str]] = {
    "Brighten this photo.": ({"exposure": 1.0}, "It is too dark."),
    "Darken this photo.": ({"exposure": -1.0}, "It is too bright."),
    "Make it warmer.": ({"temperature": 50.0}, "It looks cold."),
    "Make it cooler.": ({"temperature": -50.0}, "It looks warm."),
}
# SFT demonstrations apply this fraction of the expert's strength (seeded uniform draw per row)
TIMID_STRENGTH = (0.2, 0.7)
TRAIN_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle")
HELDOUT_PHOTOS = ("china", "flower")
# L1 distances are reported on the papers' 0-255 scale
L1_SCALE = 255.0


@dataclass
class QuickstartConfig:
    """Settings of the quickstart run (defaults: about 1-2 minutes on 2 CPU cores)."""

    output_dir: str = "rlkit-quickstart"
    seed: int = 0
    image_size: int = 64
    crops_per_photo: int = 8
    heldout_crops_per_photo: int = 4
    sft_steps: int = 300
    sft_learning_rate: float = 3e-3
    grpo_steps: int = 80
    grpo_learning_rate: float = 5e-4
    grpo_beta: float = 0.0
    batch_size: int = 8
    num_generations: int = 4
    max_completion_length: int = 24
    eval_samples: int = 1
    eval_temperature: float = 0.0
    use_peft: bool = False
    model: str = "tiny:qwen2_5_vl"


@dataclass
class PolicyEval:
    """One policy on the held-out rows: per-sample texts, rewards, validity and L1 to the expert target."""

    texts: list[list[str]]
    rewards: list[list[float]]
    valid: list[list[bool]]
    l1: list[list[float]]
    images: list[list[Image.Image]]

    @staticmethod
    def _mean(values: list[list[float]] | list[list[bool]]) -> float:
        flat = [float(v) for row in values for v in row]
        return sum(flat) / max(1, len(flat))

    @property
    def mean_l1(self) -> float:
        return self._mean(self.l1)

    @property
    def mean_reward(self) -> float:
        return self._mean(self.rewards)

    @property
    def valid_fraction(self) -> float:
        return self._mean(self.valid)


@dataclass
class QuickstartResult:
    """What the run measured (also written to metrics.json). Distances are mean L1 to the expert target on
    held-out photos, on the 0-255 scale; invalid programs leave the photo unedited (identity)."""

    heldout_l1_identity: float
    heldout_l1_sft: float
    heldout_l1_grpo: float
    heldout_valid_sft: float
    heldout_valid_grpo: float
    heldout_reward_sft: float
    heldout_reward_grpo: float
    train_reward_first: float
    train_reward_last: float
    seconds: float
    files: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def grpo_vs_identity(self) -> float:
        """GRPO's held-out L1 as a fraction of the identity edit's (the target is <= 0.8)."""
        return self.heldout_l1_grpo / self.heldout_l1_identity

    @property
    def target_met(self) -> bool:
        """GRPO <= 0.8x identity, below SFT, and >= 80% valid programs (the quickstart's promise)."""
        return (self.grpo_vs_identity <= 0.8 and self.heldout_l1_grpo < self.heldout_l1_sft
                and self.heldout_valid_grpo >= 0.8)


def _crops(photo: Image.Image, n: int, size: int, rng: random.Random) -> list[Image.Image]:
    """``n`` seeded random square crops (40-90% of the shorter side) resized to ``size``."""
    w, h = photo.size
    out = []
    for _ in range(n):
        side = int(min(w, h) * rng.uniform(0.4, 0.9))
        x, y = rng.randint(0, w - side), rng.randint(0, h - side)
        out.append(photo.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC))
    return out


def build_quickstart_rows(photos: Sequence[str], crops_per_photo: int, *, image_size: int = 64,
                          seed: int = 0) -> list[dict[str, object]]:
    """Rows ``image, instruction, target_image, program, reasoning`` (every crop x every instruction)."""
    rng = random.Random(seed)
    images = [c for name in photos for c in _crops(load_photo(name), crops_per_photo, image_size, rng)]
    batch = torch.cat([to_tensor(im) for im in images])
    rows = []
    for instruction, (params, reasoning) in INTENTS.items():
        program = EditProgram.from_dict(params)
        targets = to_pil(apply_program(batch, program))
        for im, tgt in zip(images, targets):
            rows.append({"image": im, "instruction": instruction, "target_image": tgt,
                         "program": json.dumps(program.to_dict()), "reasoning": reasoning})
    return rows


def quickstart_reward() -> WeightedSum:
    """format (0/1) + improvement over the unedited photo in L1 to the expert target (0 identity, 1 expert)."""
    return WeightedSum([ImageImprovementReward("l1", fmt="retouchiq"), FormatReward("program", fmt="retouchiq")],
                       [1.0, 1.0], name="quickstart")


def _rounded(params: dict[str, float]) -> dict[str, float]:
    """Values as a person types them: one decimal for exposure-like sliders (range <= 10), else whole numbers."""
    return {k: round(v, 1) if PARAM_SPECS[k].hi - PARAM_SPECS[k].lo <= 10 else float(round(v))
            for k, v in params.items()}


def _sft_rows(rows: Sequence[Mapping[str, object]], seed: int) -> list[dict[str, object]]:
    """SFT targets from a timid editor: every slider of the expert program scaled by a seeded factor in
    ``TIMID_STRENGTH`` (it goes the right way, not far enough), rounded as a person types values. SFT can
    only imitate that; GRPO has the reward to go further."""
    rng = random.Random(seed)
    weak = []
    for r in rows:
        program = EditProgram.from_dict(json.loads(r["program"]))
        factor = rng.uniform(*TIMID_STRENGTH)
        weak.append({**r, "program": _rounded({k: v * factor for k, v in program.params.items()})})
    return retoucher_rows(weak, stage="sft", fmt="retouchiq")


def _progress(description: str, total: int, console: Console) -> Progress:
    p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 console=console, transient=True)
    p.add_task(description, total=total)
    return p


def _evaluate(model: PreTrainedModel, processor: ProcessorMixin | PreTrainedTokenizerBase,
              rows: Sequence[Mapping[str, object]], reward: WeightedSum,
              cfg: QuickstartConfig, label: str, console: Console) -> PolicyEval:
    """``eval_samples`` sampled completions per held-out row, each executed once in ``VectorRetouchEnv``."""
    prompts = [retoucher_prompt(r["instruction"]) for r in rows]
    with _progress(f"evaluating {label} on held-out photos", len(rows), console) as bar:
        samples = generate_texts(model, processor, prompts, [r["image"] for r in rows],
                                 num_samples=cfg.eval_samples, temperature=cfg.eval_temperature,
                                 max_new_tokens=cfg.max_completion_length, seed=cfg.seed,
                                 progress=lambda n: bar.advance(bar.task_ids[0], n))
    k = cfg.eval_samples
    env_rows = [{"image": r["image"], "instruction": r["instruction"], "target_image": r["target_image"]}
                for r in rows for _ in range(k)]
    env = VectorRetouchEnv(len(env_rows), reward=reward, image_size=cfg.image_size, fmt="retouchiq")
    env.reset(options={"rows": env_rows})
    _, rewards, _, _, infos = env.step([t for s in samples for t in s])
    outputs = env.current_images
    targets = torch.stack([e.target for e in env.episodes])  # type: ignore[union-attr, misc]
    dist = (l1(outputs, targets) * L1_SCALE).tolist()
    images = to_pil(outputs)

    def per_row(values: Sequence[T]) -> list[list[T]]:
        return [list(values[i * k:(i + 1) * k]) for i in range(len(rows))]

    return PolicyEval(texts=samples, rewards=per_row([float(r) for r in rewards]),
                      valid=per_row([bool(v) for v in infos["valid"]]), l1=per_row(dist), images=per_row(images))


def _identity_l1(rows: Sequence[Mapping[str, object]]) -> float:
    src = torch.cat([to_tensor(r["image"]) for r in rows])
    tgt = torch.cat([to_tensor(r["target_image"]) for r in rows])
    return float(l1(src, tgt).mean()) * L1_SCALE


def _caption(text: str, l1_value: float, reward_value: float) -> str:
    program = text.strip().splitlines()[-1] if text.strip() else "(empty)"
    return f"{program[:28]}\nL1 {l1_value:.1f}  reward {reward_value:.2f}"


def _grid(path: Path, rows: Sequence[Mapping[str, object]], sft: PolicyEval, grpo: PolicyEval, identity: list[float],
          picks: Sequence[int]) -> Path:
    """before | SFT sample | GRPO sample | expert target, with each program's text, L1 and reward under it."""
    cells, captions = [], []
    for i in picks:
        cells.append([rows[i]["image"], sft.images[i][0], grpo.images[i][0], rows[i]["target_image"]])
        captions.append([f"identity: L1 {identity[i]:.1f}", _caption(sft.texts[i][0], sft.l1[i][0], sft.rewards[i][0]),
                         _caption(grpo.texts[i][0], grpo.l1[i][0], grpo.rewards[i][0]),
                         f"expert: {rows[i]['program']}"[:32]])
    return save_image_grid(path, cells, captions=captions,
                           column_titles=["before", "after SFT", "after GRPO", "expert target"],
                           row_titles=[rows[i]["instruction"] for i in picks], cell=192)


def run_quickstart(cfg: QuickstartConfig | None = None, *, console: Console | None = None) -> QuickstartResult:
    """Run the whole quickstart and write reward_curve.png, before_after.png, metrics.json to ``output_dir``."""
    cfg = cfg or QuickstartConfig()
    if cfg.eval_samples > 1 and cfg.eval_temperature <= 0:
        raise ValueError(f"QuickstartConfig: eval_samples={cfg.eval_samples} needs eval_temperature > 0 (greedy "
                         "decoding gives one answer per prompt)")
    console = console or Console()
    quiet_third_party()
    t0 = time.time()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    with console.status("building the tiny Qwen2.5-VL policy (cached after the first run)"):
        model_path = resolve_model_name(cfg.model)
        processor = load_processing_class(model_path)
    console.print(f"[bold]policy[/bold] {model_path}")

    with console.status("building the instruction dataset from bundled photos"):
        train_rows = build_quickstart_rows(TRAIN_PHOTOS, cfg.crops_per_photo, image_size=cfg.image_size,
                                           seed=cfg.seed)
        heldout_rows = build_quickstart_rows(HELDOUT_PHOTOS, cfg.heldout_crops_per_photo,
                                             image_size=cfg.image_size, seed=cfg.seed + 100)
    console.print(f"[bold]data[/bold] {len(train_rows)} training rows ({', '.join(TRAIN_PHOTOS)}), "
                  f"{len(heldout_rows)} held-out rows ({', '.join(HELDOUT_PHOTOS)}), {len(INTENTS)} instructions")

    reward = quickstart_reward()
    env_reward = RetouchEnvReward(reward, image_size=cfg.image_size, fmt="retouchiq", name="quickstart")
    common = dict(use_cpu=not torch.cuda.is_available(), bf16=False, report_to="none", save_strategy="no",
                  per_device_train_batch_size=cfg.batch_size, seed=cfg.seed, logging_steps=1,
                  dataloader_num_workers=0)
    peft_config = None
    if cfg.use_peft:
        peft_config = LoraConfig(r=64, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")

    console.rule("stage 1: SFT on weak demonstrations")
    sft_ds = Dataset.from_list(_sft_rows(train_rows, cfg.seed))
    # a linear decay: at a constant 1e-2 the tiny policy mixed up Brighten/Darken (signs learnt by marginals)
    sft_args = SFTConfig(output_dir=str(out / "sft"), max_steps=cfg.sft_steps, learning_rate=cfg.sft_learning_rate,
                         lr_scheduler_type="linear", max_length=None, **common)
    sft = train_sft(model_path, sft_ds, sft_args, processing_class=processor, peft_config=peft_config)
    policy = sft.model.merge_and_unload() if cfg.use_peft else sft.model
    sft_eval = _evaluate(policy, processor, heldout_rows, reward, cfg, "the SFT policy", console)
    console.print(f"held-out after SFT: L1 to target {sft_eval.mean_l1:.2f}, valid programs "
                  f"{sft_eval.valid_fraction:.0%}")

    console.rule("stage 2: GRPO in RetouchEnv (format + improvement over the unedited photo)")
    grpo_ds = Dataset.from_list(retoucher_rows(train_rows, stage="grpo", fmt="retouchiq"))
    grpo_args = GRPOConfig(output_dir=str(out / "grpo"), max_steps=cfg.grpo_steps,
                           learning_rate=cfg.grpo_learning_rate, num_generations=cfg.num_generations,
                           max_completion_length=cfg.max_completion_length, beta=cfg.grpo_beta, temperature=1.0,
                           lr_scheduler_type="constant", **common)
    grpo = train_grpo(policy, [env_reward], grpo_ds, grpo_args, processing_class=processor)
    grpo_eval = _evaluate(grpo.model, processor, heldout_rows, reward, cfg, "the GRPO policy", console)

    identity_per_row = [_identity_l1([r]) for r in heldout_rows]
    identity = sum(identity_per_row) / len(identity_per_row)
    steps, rewards = reward_history(grpo.state.log_history)
    curve = save_reward_curve(out / "reward_curve.png", steps, rewards,
                              hlines={"held-out after SFT": sft_eval.mean_reward,
                                      "held-out after GRPO": grpo_eval.mean_reward,
                                      "identity edit (format 1 + improvement 0)": 1.0},
                              title="GRPO of the tiny retoucher in RetouchEnv (format + improvement)")
    picks = list(range(0, len(heldout_rows), max(1, len(heldout_rows) // 6)))[:6]
    grid = _grid(out / "before_after.png", heldout_rows, sft_eval, grpo_eval, identity_per_row, picks)
    k = max(1, min(5, len(rewards) // 4))
    result = QuickstartResult(
        heldout_l1_identity=identity, heldout_l1_sft=sft_eval.mean_l1, heldout_l1_grpo=grpo_eval.mean_l1,
        heldout_valid_sft=sft_eval.valid_fraction, heldout_valid_grpo=grpo_eval.valid_fraction,
        heldout_reward_sft=sft_eval.mean_reward, heldout_reward_grpo=grpo_eval.mean_reward,
        train_reward_first=sum(rewards[:k]) / k if rewards else float("nan"),
        train_reward_last=sum(rewards[-k:]) / k if rewards else float("nan"),
        seconds=time.time() - t0,
        files={"reward_curve": str(curve), "before_after": str(grid), "metrics": str(out / "metrics.json"),
               "policy": str(out / "grpo")},
        config=asdict(cfg),
    )
    metrics = {**asdict(result), "grpo_vs_identity": result.grpo_vs_identity, "target_met": result.target_met,
               "heldout_l1": {"expert": 0.0, "identity": identity, "sft": sft_eval.mean_l1,
                              "grpo": grpo_eval.mean_l1},
               "heldout_samples": [{"instruction": heldout_rows[i]["instruction"], "expert": heldout_rows[i]["program"],
                                    "sft": sft_eval.texts[i][0], "sft_l1": sft_eval.l1[i][0],
                                    "grpo": grpo_eval.texts[i][0], "grpo_l1": grpo_eval.l1[i][0]}
                                   for i in picks],
               "reward": "format (0/1) + improvement (d(source, target) - d(edit, target)) / d(source, target), "
                         "d = L1",
               "train_reward_curve": {"steps": steps, "reward": rewards}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _summary(console, result)
    return result


def _summary(console: Console, r: QuickstartResult) -> None:
    t = Table(title=f"rlkit quickstart: held-out photos ({', '.join(HELDOUT_PHOTOS)}), "
                    "mean L1 to the expert target (0-255)")
    t.add_column("edit")
    t.add_column("L1 to target", justify="right")
    t.add_column("vs identity", justify="right")
    t.add_column("valid programs", justify="right")
    t.add_row("expert program", "0.00", "0.00", "100%")
    t.add_row("identity (no edit)", f"{r.heldout_l1_identity:.2f}", "1.00", "-")
    t.add_row("after SFT", f"{r.heldout_l1_sft:.2f}", f"{r.heldout_l1_sft / r.heldout_l1_identity:.2f}",
              f"{r.heldout_valid_sft:.0%}")
    t.add_row("after GRPO", f"{r.heldout_l1_grpo:.2f}", f"{r.grpo_vs_identity:.2f}", f"{r.heldout_valid_grpo:.0%}")
    console.print(t)
    verdict = "[green]met[/green]" if r.target_met else "[red]NOT met[/red]"
    console.print(f"target (GRPO <= 0.8x identity, below SFT, >= 80% valid): {verdict}; training reward "
                  f"{r.train_reward_first:.3f} -> {r.train_reward_last:.3f}")
    for name, path in r.files.items():
        console.print(f"  {name:13s} {path}")
    console.print(f"done in {r.seconds:.0f} s")
