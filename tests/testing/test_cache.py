"""The on-disk cache: location, warm path, recipe-keyed rebuilds, determinism, races, bad input."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

import rlkit.testing as rt
from rlkit.testing import cache, vlm


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_cache_root_follows_argument_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("RLKIT_CACHE", str(tmp_path / "env"))
    assert rt.cache_root() == tmp_path / "env"
    assert rt.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("RLKIT_CACHE")
    assert rt.cache_root() == Path.home() / ".cache" / "rlkit"


def test_builds_once_then_warm_path_is_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("RLKIT_CACHE", str(tmp_path))
    path = rt.tiny_model_path("text")
    assert path.parent == tmp_path / "tiny" and path.name.startswith("text-")
    assert (path / "config.json").is_file() and (path / "rlkit_tiny.json").is_file()
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    for _ in range(10):
        assert rt.tiny_model_path("text") == path
    assert time.perf_counter() - start < 1.0
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime  # not rebuilt
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [path.name]  # no temp dirs left


def test_changed_recipe_builds_a_new_entry(monkeypatch, tmp_path):
    old = rt.tiny_model_path("text", tmp_path)
    monkeypatch.setattr(cache, "_KEY_CACHE", {})
    monkeypatch.setattr(vlm, "RECIPE", {**vlm.RECIPE, "changed": True})
    assert rt.recipe_hash("text") != old.name.split("-")[-1]
    monkeypatch.setattr(cache, "RECIPE_VERSION", cache.RECIPE_VERSION + 1)
    monkeypatch.setattr(cache, "_KEY_CACHE", {})
    new = rt.tiny_model_path("text", tmp_path)
    assert new != old and new.is_dir() and old.is_dir()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = rt.build_tiny_model("text", tmp_path / "a")
    b = rt.build_tiny_model("text", tmp_path / "b")
    c = rt.build_tiny_model("text", tmp_path / "c", seed=1)
    assert _digest(a) == _digest(b) != _digest(c)
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_concurrent_builds_agree(tmp_path):
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker():
        try:
            results.append(rt.tiny_model_path("text", tmp_path))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [results[0].name]
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(results[0])


def test_broken_leftover_is_rebuilt(tmp_path):
    path = rt.tiny_model_path("text", tmp_path)
    (path / "rlkit_tiny.json").unlink()
    (path / "model.safetensors").write_bytes(b"garbage")
    again = rt.tiny_model_path("text", tmp_path)
    assert again == path and (path / "rlkit_tiny.json").is_file()
    assert (path / "model.safetensors").stat().st_size > 100_000


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown tiny model kind 'qwen9'.*qwen2_5_vl"):
        rt.tiny_model_path("qwen9")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="full"):
        rt.build_tiny_model("text", tmp_path / "full")
    assert set(rt.TINY_KINDS) == {"qwen2_5_vl", "qwen2_vl", "qwen3_vl", "text", "sd_inpaint", "flux_fill",
                                  "saliency_text", "saliency_vlm"}


def _build_in_child(root: str, queue) -> None:
    queue.put(str(rt.tiny_model_path("qwen2_vl", root)))


@pytest.mark.slow
def test_concurrent_processes_share_one_entry(tmp_path):
    import multiprocessing as mp

    # fork: the children inherit the imported modules, so they start building at once.
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    outs = [queue.get(timeout=5) for _ in procs]
    assert outs[0] == outs[1]
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [Path(outs[0]).name]
    assert rt.load_processor(outs[0]).image_processor.patch_size == 14
