"""Two gloo ranks under `accelerate launch` give exactly the single-process results (tiny VLM policy)."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys
from rlkit.eval import IdentitySystem, RandomProgramSystem, TransformersPolicy, load_retouch_samples, run_retouch
from rlkit.testing import tiny_model_path
samples = load_retouch_samples(sys.argv[1])
pol = TransformersPolicy(tiny_model_path("qwen2_5_vl"), name="tiny", max_new_tokens=12, batch_size=2)
run_retouch(samples, [IdentitySystem(), RandomProgramSystem(), pol], sys.argv[2], batch_size=2, progress=False)
"""


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(retoucheval_dir, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(retoucheval_dir), str(tmp_path / "one")], check=True, env=env,
                   timeout=600)
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                    "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script),
                    str(retoucheval_dir), str(tmp_path / "two")], check=True, env=env, timeout=600)
    one = json.loads((tmp_path / "one" / "results.json").read_text())["records"]
    two = json.loads((tmp_path / "two" / "results.json").read_text())["records"]
    assert one == two and len(one) == 3 * 9
    ranks = {p.name for p in (tmp_path / "two" / "records" / "retoucheval" / "tiny").glob("rank*.jsonl")}
    assert ranks == {"rank0.jsonl", "rank1.jsonl"}  # both processes did work
