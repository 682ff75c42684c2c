"""Kill a tiny PGRT alternation at several moments (inside trainer stages, inside sampling, between stages)
and relaunch the same command each time: the run must end with the same manifest and the same final weights as
an uninterrupted run with the same seeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# The tiny config, shrunk: one round, two-step trainer stages checkpointing every step, one-record shards.
ARGS = ["--config", str(ROOT / "recipes/pgrt/config_tiny.yaml"), "--synthetic_size", "2", "--eval_size", "1",
        "--grm_pairs_per_record", "1", "--grm_sft_max_steps", "3", "--grm_pgrt_max_steps", "2",
        "--policy_sft_max_steps", "3", "--max_steps", "2", "--save_steps", "1", "--samples_per_round", "3",
        "--sample_shard_size", "1", "--grm_max_completion_length", "24", "--max_completion_length", "16",
        "--grm_num_generations", "4", "--grm_rl_batch_size", "4", "--logging_steps", "1"]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, str(ROOT / "recipes/pgrt.py"), *ARGS, "--output_dir", str(out)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


def _running(out: Path) -> str | None:
    try:
        stages = json.loads((out / "manifest.json").read_text())["stages"]
    except (OSError, ValueError):
        return None
    return next((s["name"] for s in stages if s["status"] == "running"), None)


def _done(out: Path, stage: str) -> bool:
    try:
        return any(s["name"] == stage and s["status"] == "done"
                   for s in json.loads((out / "manifest.json").read_text())["stages"])
    except (OSError, ValueError):
        return False


# Kill moments, in the order the run reaches them: inside GRM SFT (after its first checkpoint), inside the
# policy's GRPO (after step 1), inside sampling (after the first shard), right after the pairs stage, and
# inside PGRT (after its first checkpoint).
TRIGGERS = [
    ("inside grm_sft", lambda out: (out / "grm/sft/checkpoint-1/trainer_state.json").exists()),
    ("inside policy_grpo_1", lambda out: (out / "policy/round_1/checkpoint-1/trainer_state.json").exists()),
    ("inside sample_1", lambda out: (out / "samples/round_1/train/shard_00000.json").exists()),
    ("after pairs_1", lambda out: _done(out, "pairs_1")),
    ("inside grm_pgrt_1", lambda out: (out / "grm/pgrt_1/checkpoint-1/trainer_state.json").exists()),
]


def _run_to_end(out: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(_cmd(out), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _comparable(out: Path) -> dict:
    data = json.loads((out / "manifest.json").read_text())
    return {**data, "stages": [{k: v for k, v in s.items() if k != "run"} for s in data["stages"]]}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_killed_and_relaunched_run_matches_an_uninterrupted_one(tmp_path):
    ref, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    _run_to_end(ref)

    kills, saved = [], {}
    for label, fired in TRIGGERS:
        proc = subprocess.Popen(_cmd(killed), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        while proc.poll() is None and not fired(killed):
            time.sleep(0.02)
        if proc.poll() is not None:  # finished (or failed) before the moment came: nothing to kill here
            assert proc.returncode == 0, proc.stderr.read()[-4000:]
            continue
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        kills.append((label, _running(killed)))
        if label == "inside sample_1":
            saved = {f: f.stat().st_mtime_ns for f in (killed / "samples").rglob("shard_*.json")}
    final = _run_to_end(killed)
    assert "rlkit pgrt done" in final.stdout

    # the kills really interrupted work: most came while a stage was running
    assert len(kills) >= 4, kills
    assert sum(stage is not None for _, stage in kills) >= 3, kills
    manifest = json.loads((killed / "manifest.json").read_text())
    assert max(s["run"]["attempts"] for s in manifest["stages"]) >= 2
    assert all(s["status"] == "done" for s in manifest["stages"])

    assert _comparable(killed) == _comparable(ref)
    for folder in ("grm/sft", "policy/sft", "policy/round_1", "grm/pgrt_1"):
        a, b = _weights(ref / folder), _weights(killed / folder)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{folder}: {k} differs"
    # shards saved before the kill were not generated again, and all equal the uninterrupted run's
    assert saved and all(f.stat().st_mtime_ns == t for f, t in saved.items())
    for f in sorted((ref / "samples").rglob("shard_*.json")):
        assert f.read_bytes() == (killed / f.relative_to(ref)).read_bytes()

    # relaunching a finished run does no work and keeps the manifest
    before = (killed / "manifest.json").read_bytes()
    _run_to_end(killed)
    assert (killed / "manifest.json").read_bytes() == before
