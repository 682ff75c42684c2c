"""PGRT pieces without training: Eq. 4's rewards on hand-written answers, per-stage trainer settings, the run
manifest (atomic, checked on resume, damage named) and checkpoint validation."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from trl import GRPOConfig, SFTConfig

from rlkit.train.manifest import CheckpointError, ManifestError, RunManifest, last_complete_checkpoint
from rlkit.train.pgrt import PGRTArguments, PGRTConfigError, PGRTFormatReward, PGRTRankingReward
from rlkit.train.pgrt_run import _curve, _stage_args

M = "<metrics>\n1. warmer\n</metrics>\n"


def answer(a, b):
    return [{"role": "assistant", "content": M + f"<scores>Image 1: {a}; Image 2: {b}</scores>"}]


def test_eq4_rewards_on_known_answers():
    completions = [answer(8, 3), answer(8, 3), answer(3, 8), answer(5, 5), [{"role": "assistant", "content": "8 > 3"}],
                   M + "<scores>Image 2: 9; Image 1: 2</scores>"]
    positions = [1, 2, 2, 1, 1, 2]
    logged = {}
    rank = PGRTRankingReward()(completions=completions, strong_position=positions,
                               log_metric=lambda k, v: logged.setdefault(k, v))
    fmt = PGRTFormatReward()(completions=completions, strong_position=positions)
    # strong first and scored higher; strong second but the first image won; strong second and won; a tie;
    # unparseable; labels out of order (image 2 is the strong one and scored 9)
    assert rank == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert fmt == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    assert logged == {"pgrt/unparseable": pytest.approx(1 / 6)}
    with pytest.raises(ValueError, match="strong_position"):
        PGRTRankingReward()(completions=completions)


def test_stage_args_share_trainer_settings_not_stage_fields(tmp_path):
    base = GRPOConfig(output_dir=str(tmp_path / "run"), seed=7, learning_rate=3e-4, max_steps=9, bf16=False,
                      use_cpu=True, logging_steps=3, save_steps=5, per_device_train_batch_size=4, num_generations=4,
                      temperature=0.7, report_to="none")
    sft = _stage_args(base, SFTConfig, output_dir=str(tmp_path / "s"), learning_rate=1e-2, max_steps=2,
                      per_device_train_batch_size=2, max_length=None)
    assert (sft.seed, sft.logging_steps, sft.save_steps) == (7, 3, 5)
    assert (sft.learning_rate, sft.max_steps, sft.per_device_train_batch_size, sft.output_dir) == (
        1e-2, 2, 2, str(tmp_path / "s"))
    grm = _stage_args(base, GRPOConfig, output_dir=str(tmp_path / "g"), per_device_train_batch_size=8,
                      num_generations=8, reward_weights=[1.0, 0.5])
    assert grm.temperature == 0.7 and grm.num_generations == 8 and grm.reward_weights == [1.0, 0.5]
    assert grm.generation_batch_size == 8  # derived again from this stage's batch, not copied (4)


def test_curve_summary():
    hist = [{"loss": v, "step": i} for i, v in enumerate([4.0, 3.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.0], 1)]
    hist.append({"train_runtime": 3.0})
    assert _curve(hist, "loss") == {"first": 3.5, "last": 0.25, "points": 8}
    assert _curve(hist, "reward") is None


def test_arguments_are_checked():
    PGRTArguments().check()
    for kw, msg in [({"rounds": -1}, "rounds"), ({"perturber": "mllm"}, "perturber_base_url"),
                    ({"annotator": "human"}, "annotator"), ({"grm_serve": "external"}, "grm_reload_command"),
                    ({"grm_candidates": 1}, "grm_candidates"), ({"grm_gap_metric": "psnr"}, "unknown metric"),
                    ({"policy_unparsed": "guess"}, "policy_unparsed"), ({"image_size": 16}, "image_size")]:
        with pytest.raises((PGRTConfigError, ValueError), match=msg):
            PGRTArguments(**kw).check()


# ------------------------------------------------------------------------------------------ manifest
def test_manifest_create_resume_and_refuse_other_settings(tmp_path):
    path = tmp_path / "manifest.json"
    m = RunManifest.open(path, kind="pgrt", settings={"lr": 1e-3, "rounds": 2}, stages=["a", "b"])
    m.start("a", inputs={"pairs": 3})
    m.finish("a", output=tmp_path / "out_a", metrics={"loss": {"first": 2.0, "last": 1.0}}, run={"wall_s": 1.5})
    again = RunManifest.open(path, kind="pgrt", settings={"lr": 1e-3, "rounds": 2}, stages=["a", "b"])
    assert again.is_done("a") and not again.is_done("b") and again.output("a") == tmp_path / "out_a"
    assert again.stage("a")["run"]["attempts"] == 1 and again.stage("a")["output"] == "out_a"
    assert "run" not in again.comparable()["stages"][0]
    with pytest.raises(ManifestError, match=r"rounds: 2 -> 3"):
        RunManifest.open(path, kind="pgrt", settings={"lr": 1e-3, "rounds": 3}, stages=["a", "b"])
    with pytest.raises(ManifestError, match="plans stages"):
        RunManifest.open(path, kind="pgrt", settings={"lr": 1e-3, "rounds": 2}, stages=["a", "b", "c"])
    with pytest.raises(ManifestError, match="no output yet"):
        again.output("b")
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left behind


@pytest.mark.parametrize("content, msg", [("{\"version\": 1, \"stages\": [", "not valid JSON"),
                                          ("[1, 2]", "expected a JSON object"),
                                          (json.dumps({"version": 1, "settings": {}, "stages": [{"name": "a"}]}),
                                           "stage entry 0")])
def test_damaged_manifest_is_named(tmp_path, content, msg):
    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(ManifestError, match=msg) as e:
        RunManifest.open(path, kind="pgrt", settings={}, stages=["a"])
    assert str(path) in str(e.value)


# ------------------------------------------------------------------------------------------ checkpoints
def _checkpoint(root, step, *, state=True):
    ck = root / f"checkpoint-{step}"
    ck.mkdir(parents=True)
    save_file({"w": torch.ones(4)}, str(ck / "model.safetensors"))
    torch.save({"state": {0: torch.zeros(2)}}, ck / "optimizer.pt")
    if state:
        (ck / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ck


def test_last_complete_checkpoint(tmp_path):
    assert last_complete_checkpoint(tmp_path / "missing") is None
    _checkpoint(tmp_path, 2)
    ck4 = _checkpoint(tmp_path, 4)
    _checkpoint(tmp_path, 6, state=False)  # the kill came while checkpoint-6 was being written
    assert last_complete_checkpoint(tmp_path) == ck4
    assert not (tmp_path / "checkpoint-6").exists()
    (ck4 / "trainer_state.json").write_text('{"global_step": 4')  # cut short while written: incomplete too
    assert last_complete_checkpoint(tmp_path).name == "checkpoint-2"


@pytest.mark.parametrize("name, cut", [("model.safetensors", 40), ("optimizer.pt", 30)])
def test_damaged_checkpoint_file_is_named(tmp_path, name, cut):
    ck = _checkpoint(tmp_path, 3)
    f = ck / name
    f.write_bytes(f.read_bytes()[:cut])
    with pytest.raises(CheckpointError, match=name) as e:
        last_complete_checkpoint(tmp_path)
    assert str(f) in str(e.value)


# ------------------------------------------------------------------------------------------ shipped configs
RECIPES = __import__("pathlib").Path(__file__).resolve().parents[2] / "recipes"


def _parse_pgrt(name, *extra):
    from trl import TrlParser

    from rlkit.train.config import RecipeModelConfig

    return TrlParser((PGRTArguments, GRPOConfig, RecipeModelConfig)).parse_args_and_config(
        args=["--config", str(RECIPES / name), "--use_cpu", "true", "--bf16", "false", *extra])


@pytest.mark.parametrize("name", ["pgrt/config_tiny.yaml", "pgrt/config_qwen2.5-vl-7b.yaml"])
def test_pgrt_configs_parse_and_check(name):
    s, g, m = _parse_pgrt(name)
    s.check()
    assert m.model_name_or_path and s.rounds >= 1 and g.max_steps > 0


def test_retouchiq_policy_configs_use_the_trained_grm_and_keep_the_rule_baseline():
    from rlkit.train.config import RetoucherArguments, parse_recipe_args

    flags = ["--use_cpu", "true", "--bf16", "false"]
    grm, _, _ = parse_recipe_args(RetoucherArguments, ["--config", str(RECIPES / "retoucher/config_qwen2.5-vl-7b.yaml"),
                                                       *flags])
    rule, _, _ = parse_recipe_args(RetoucherArguments, [
        "--config", str(RECIPES / "retoucher/config_qwen2.5-vl-7b_rule.yaml"), *flags])
    assert grm.rewards == ["format", "grm"] and rule.rewards == ["format", "image"] and rule.image_metric == "l1"
    s, g, _ = _parse_pgrt("pgrt/config_qwen2.5-vl-7b.yaml")
    # the policy config points at the GRM the 7B PGRT run writes last
    assert grm.grm_model_name_or_path == f"{g.output_dir}/grm/pgrt_{s.rounds}"


def test_manifest_grows_for_added_stages_and_allows_operational_changes(tmp_path):
    path = tmp_path / "manifest.json"
    m = RunManifest.open(path, kind="pgrt", settings={"lr": 1, "fig5": False, "url": "a"}, stages=["a", "b"])
    m.start("a")
    m.finish("a", output=None, metrics={}, run={})
    grown = RunManifest.open(path, kind="pgrt", settings={"lr": 1, "fig5": True, "url": "b"}, stages=["a", "b", "c"],
                             mutable=["url"], growable=["fig5"])
    assert [s["name"] for s in grown.data["stages"]] == ["a", "b", "c"] and grown.is_done("a")
    assert grown.status("c") == "pending" and grown.data["settings"]["fig5"] is True
    assert RunManifest.read(path).data["settings"]["url"] == "b"
    with pytest.raises(ManifestError, match="fig5"):  # a growable setting may not change without new stages
        RunManifest.open(path, kind="pgrt", settings={"lr": 1, "fig5": False, "url": "b"}, stages=["a", "b", "c"],
                         growable=["fig5"])
    with pytest.raises(ManifestError, match="lr: 1 -> 2"):
        RunManifest.open(path, kind="pgrt", settings={"lr": 2, "fig5": True, "url": "b"}, stages=["a", "b", "c", "d"],
                         growable=["fig5"])


# ------------------------------------------------------------------------------------------ where the GRM is served
def _run_with(tmp_path, *extra):
    from rlkit.testing import resolve_model_name
    from rlkit.train.pgrt_run import PGRTRun

    s, g, m = _parse_pgrt("pgrt/config_tiny.yaml", "--output_dir", str(tmp_path / "run"), *extra)
    m.model_name_or_path = resolve_model_name(m.model_name_or_path)
    return PGRTRun(s, g, m), m.model_name_or_path


def test_served_grm_answers_like_the_in_process_one(tmp_path):
    """grm_serve=local_server (rlkit's loopback server, HTTP + PNG) gives the policy's reward the same answers
    as the in-process judge; grm_serve=external runs the reload command on the new GRM folder and waits."""
    from PIL import Image

    from rlkit.rewards import DEFAULT_TEMPLATE, GRMServer

    run, tiny = _run_with(tmp_path, "--grm_max_completion_length", "12")
    reqs = [DEFAULT_TEMPLATE.messages(f"make it warmer {k}", Image.new("RGB", (32, 32), (20 * k, 90, 30)),
                                      [Image.new("RGB", (32, 32), (200, 10 * k, 60))]) for k in range(2)]
    local, none = run._serve_grm(tiny)
    assert none is None
    run.a.grm_serve = "local_server"
    served, server = run._serve_grm(tiny)
    try:
        assert [r.text for r in served.generate(reqs)] == [r.text for r in local.generate(reqs)]
    finally:
        server.stop()

    marker = tmp_path / "reloaded.txt"
    with GRMServer(lambda messages: "<metrics>1. ok</metrics><score>7</score>") as srv:
        run.a.grm_serve, run.a.grm_base_url = "external", srv.base_url
        run.a.grm_reload_command = f"echo {{checkpoint}} > {marker}"
        backend, stop = run._serve_grm(str(tmp_path))
        assert stop is None and marker.read_text().strip() == str(tmp_path.resolve())
        assert backend.generate(reqs[:1])[0].text.endswith("<score>7</score>")
        run.a.grm_reload_command = "exit 3"
        with pytest.raises(RuntimeError, match="grm_reload_command failed"):
            run._serve_grm(str(tmp_path))
