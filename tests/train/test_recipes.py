"""End-to-end recipe runs on the tiny model: accelerate DDP (gloo), DeepSpeed ZeRO-2/3 on CPU, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"

pytestmark = pytest.mark.slow

# Few steps, few rows: each launch is mostly process start-up.
TINY_RETOUCHER = ["--config", str(RECIPES / "retoucher/config_tiny.yaml"), "--synthetic_size", "20",
                  "--sft_max_steps", "2", "--max_steps", "2", "--save_strategy", "no",
                  "--per_device_train_batch_size", "4", "--num_generations", "4"]
TINY_REASONER = ["--config", str(RECIPES / "reasoner/config_tiny.yaml"), "--synthetic_size", "12",
                 "--sft_max_steps", "2", "--max_steps", "2", "--per_device_train_batch_size", "4",
                 "--num_generations", "4", "--use_peft", "true", "--lora_r", "8",
                 "--max_completion_length", "24"]


def _launch(tmp_path: Path, launcher: list[str], script: str, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "ACCELERATE_LOG_LEVEL": "warning", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", *launcher, str(RECIPES / script), *args, "--output_dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    return proc


def _assert_trained(tmp_path: Path, proc: subprocess.CompletedProcess, adapter: bool) -> None:
    assert "stages ['sft', 'grpo'] (sft_global_step=2, grpo_global_step=2)" in proc.stdout
    assert proc.stdout.count("recipe done") == 1          # only rank 0 reports
    sft = tmp_path / "sft"
    assert (sft / ("adapter_config.json" if adapter else "config.json")).is_file()
    final = "adapter_model.safetensors" if adapter else "model.safetensors"
    assert (tmp_path / final).is_file()


def test_retoucher_ddp_two_processes(tmp_path):
    proc = _launch(tmp_path, ["--multi_gpu", "--num_processes", "2"], "grpo_retoucher.py", TINY_RETOUCHER)
    _assert_trained(tmp_path, proc, adapter=False)


def test_reasoner_ddp_two_processes(tmp_path):
    proc = _launch(tmp_path, ["--multi_gpu", "--num_processes", "2"], "grpo_reasoner.py", TINY_REASONER)
    _assert_trained(tmp_path, proc, adapter=True)


def test_retoucher_deepspeed_zero2(tmp_path):
    proc = _launch(tmp_path, ["--config_file", str(RECIPES / "accelerate_configs/zero2.yaml"),
                              "--num_processes", "2"], "grpo_retoucher.py", TINY_RETOUCHER)
    _assert_trained(tmp_path, proc, adapter=False)


def test_reasoner_deepspeed_zero3(tmp_path):
    proc = _launch(tmp_path, ["--config_file", str(RECIPES / "accelerate_configs/zero3.yaml"),
                              "--num_processes", "2"], "grpo_reasoner.py", TINY_REASONER)
    _assert_trained(tmp_path, proc, adapter=True)


def test_grpo_checkpoint_resumes_step_count_weights_and_optimizer_state(tmp_path):
    """A run stopped after its step-2 checkpoint resumes from it: global_step, the policy weights, the Adam
    moments and step counter continue from the checkpoint, and the run finishes at max_steps."""
    from datasets import Dataset
    from safetensors.torch import load_file
    from transformers import TrainerCallback
    from trl import GRPOConfig

    from rlkit.policies import load_processing_class, retoucher_rows
    from rlkit.testing import resolve_model_name
    from rlkit.train import build_quickstart_rows
    from rlkit.train.stages import train_grpo

    path = resolve_model_name("tiny:qwen2_5_vl")
    processor = load_processing_class(path)
    rows = build_quickstart_rows(("coffee",), 2, image_size=32)
    ds = Dataset.from_list(retoucher_rows(rows, stage="grpo"))

    def digits(completions, **kw):  # dense: the random policy's share of digit characters varies
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        return [sum(ch.isdigit() for ch in t) / max(1, len(t)) for t in texts]

    def args(**kw):
        return GRPOConfig(output_dir=str(tmp_path), max_steps=5, save_steps=2, learning_rate=1e-2,
                          per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
                          use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none",
                          logging_steps=1, seed=0, lr_scheduler_type="constant", **kw)

    class StopAfter3(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if state.global_step == 3:
                control.should_training_stop = True  # the "crash": checkpoint-2 exists, step 3 is lost

    seen: dict = {}

    class FirstStep(TrainerCallback):
        def on_step_begin(self, a, state, control, model=None, optimizer=None, **kw):
            if not seen:
                p = dict(model.named_parameters())
                seen.update(step=state.global_step, norm=p["model.language_model.norm.weight"].detach().clone(),
                            opt={k: {n: v.clone() for n, v in st.items()} for k, st in
                                 enumerate(optimizer.state.values())})

    first = train_grpo(path, [digits], ds, args(), processing_class=processor, callbacks=[StopAfter3()])
    assert first.state.global_step == 3
    ckpt = tmp_path / "checkpoint-2"
    saved_opt = torch.load(ckpt / "optimizer.pt", weights_only=False)["state"]
    saved_weights = load_file(ckpt / "model.safetensors")
    saved_norm = next(v for k, v in saved_weights.items() if k.endswith("norm.weight") and "layers" not in k
                      and "visual" not in k)
    assert not torch.equal(saved_norm, torch.ones_like(saved_norm)), "training must have moved the weights"

    resumed = train_grpo(path, [digits], ds, args(), processing_class=processor, callbacks=[FirstStep()],
                         resume_from_checkpoint=str(ckpt))
    assert seen["step"] == 2                                   # continues, no restart from 0
    torch.testing.assert_close(seen["norm"], saved_norm)       # the checkpoint's weights, not the base model's
    assert len(seen["opt"]) == len(saved_opt)
    for k, st in enumerate(saved_opt.values()):
        assert float(st["step"]) == float(seen["opt"][k]["step"]) == 2.0
        torch.testing.assert_close(seen["opt"][k]["exp_avg"], st["exp_avg"])
        torch.testing.assert_close(seen["opt"][k]["exp_avg_sq"], st["exp_avg_sq"])
    assert any(torch.count_nonzero(st["exp_avg"]) for st in saved_opt.values())
    assert resumed.state.global_step == 5
    # steps 1-2 come back from the checkpoint's trainer state; the lost step 3 is redone once
    assert [e["step"] for e in resumed.state.log_history if "reward" in e] == [1, 2, 3, 4, 5]
    assert (tmp_path / "checkpoint-4").is_dir()
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        train_grpo(path, [digits], ds, args(), processing_class=processor,
                   resume_from_checkpoint=str(tmp_path / "checkpoint-9"))


def test_recipe_resume_flag_reaches_the_grpo_stage(tmp_path):
    """--resume_from_checkpoint true on a recipe with no checkpoint yet fails loudly instead of restarting."""
    from rlkit.testing import tiny_model_path
    from rlkit.train.config import RetoucherArguments, parse_recipe_args
    from rlkit.train.recipes import run_retoucher

    argv = ["--config", str(RECIPES / "retoucher/config_tiny.yaml"), "--output_dir", str(tmp_path),
            "--model_name_or_path", str(tiny_model_path("qwen2_5_vl")),
            "--stages", "grpo", "--synthetic_size", "20", "--resume_from_checkpoint", "true"]
    with pytest.raises(FileNotFoundError, match="no checkpoint-"):
        run_retoucher(*parse_recipe_args(RetoucherArguments, argv))


@pytest.mark.parametrize("task", ["retoucher", "reasoner"])
def test_tiny_config_as_shipped_earns_reward_in_its_grpo_steps(tmp_path, task):
    """The tiny configs' SFT teaches the answer format, so GRPO's samples parse and earn reward (with a
    too-short SFT every logged step had valid fraction 0 / reward 0, and GRPO had nothing to learn from)."""
    from rlkit.testing import tiny_model_path
    from rlkit.train.config import ReasonerArguments, RetoucherArguments, parse_recipe_args
    from rlkit.train.recipes import run_reasoner, run_retoucher

    cls, run = (RetoucherArguments, run_retoucher) if task == "retoucher" else (ReasonerArguments, run_reasoner)
    argv = ["--config", str(RECIPES / f"{task}/config_tiny.yaml"), "--output_dir", str(tmp_path),
            "--model_name_or_path", str(tiny_model_path("qwen2_5_vl")), "--save_strategy", "no"]
    result = run(*parse_recipe_args(cls, argv))
    logs = [h for h in result["grpo_log_history"] if "reward" in h]
    assert logs, "no GRPO step was logged"
    if task == "retoucher":
        valid = [h["rewards/retoucher/valid_fraction"] for h in logs]
        # measured (seed 0): >= 0.75 on every step, mean 0.94 (SFT 150 steps / GRPO lr 1e-3: 0.25 by step 3)
        assert min(valid) > 0 and sum(valid) / len(valid) >= 0.5, valid
    else:
        rewards = [h["reward"] for h in logs]
        assert min(rewards) > 0, rewards  # measured (seed 0): 0.03-0.18 (SFT 10 steps with LoRA: 0 on every step)
