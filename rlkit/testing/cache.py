"""Build-once, on-disk cache of the tiny models, keyed by kind and a hash of the build recipe.

``tiny_model_path(kind)`` returns ``$RLKIT_CACHE/tiny/<kind>-<hash>`` (default cache root
``~/.cache/rlkit``), building it first when missing. Builds go to a temporary sibling directory that
is renamed into place atomically, so concurrent processes never see a half-written model; the loser
of a race discards its copy. The hash covers the recipe constants, the tokenizer corpus, a manual
``RECIPE_VERSION`` and the versions of the libraries whose ``save_pretrained`` format or shipped chat
templates end up in the files, so a changed recipe or an upgraded stack rebuilds instead of loading
stale files. The warm path imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from rlkit.policies.loading import register_processors

from . import diffusion, perception, vlm
from .corpus import CORPUS

RECIPE_VERSION = 1
"""Bump when a builder changes in a way the recipe constants do not capture."""

TINY_KINDS: tuple[str, ...] = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl", "text", "sd_inpaint", "flux_fill",
                               *perception.PERCEPTION_KINDS)
"""Kinds that ``tiny_model_path`` / ``build_tiny_model`` / ``rlkit make-tiny`` accept."""

_DIFFUSION_KINDS = ("sd_inpaint", "flux_fill")
_MANIFEST = "rlkit_tiny.json"
_KEY_CACHE: dict[tuple[str, int], str] = {}
# Builders seed torch's global RNG; serialise builds within a process so threads get seeded weights.
_BUILD_LOCK = threading.Lock()


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache root: ``cache_dir``, else ``$RLKIT_CACHE``, else ``~/.cache/rlkit``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("RLKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlkit"


def _check_kind(kind: str) -> None:
    if kind not in TINY_KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of: {', '.join(TINY_KINDS)}")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def recipe_hash(kind: str, seed: int = 0) -> str:
    """12-hex-digit hash of everything that determines the files written for ``kind``."""
    _check_kind(kind)
    cached = _KEY_CACHE.get((kind, seed))
    if cached is not None:
        return cached
    libs = ["transformers", "tokenizers"]
    libs += ["diffusers"] if kind in _DIFFUSION_KINDS else ["trl"]
    if kind in perception.PERCEPTION_KINDS:  # the nets' files also depend on peft and on the VLM recipe
        libs.append("peft")
        recipe = {"perception": perception.RECIPE[kind], "vlm": vlm.RECIPE}
    else:
        recipe = diffusion.RECIPE[kind] if kind in _DIFFUSION_KINDS else vlm.RECIPE
    payload = {
        "kind": kind,
        "seed": seed,
        "version": RECIPE_VERSION,
        "recipe": recipe,
        "corpus": hashlib.sha256(CORPUS.encode("utf-8")).hexdigest(),
        "libs": {name: _version(name) for name in libs},
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:12]
    _KEY_CACHE[(kind, seed)] = digest
    return digest


def _builder(kind: str) -> Callable[..., Path]:
    if kind in vlm.VLM_KINDS:
        return lambda out, seed: vlm.build_vlm(kind, out, seed=seed)
    if kind == "text":
        return lambda out, seed: vlm.build_text_lm(out, seed=seed)
    if kind == "sd_inpaint":
        return lambda out, seed: diffusion.build_sd_inpaint(out, seed=seed)
    if kind == "saliency_text":
        return lambda out, seed: perception.build_text_saliency(out, seed=seed)
    if kind == "saliency_vlm":
        return lambda out, seed: perception.build_vlm_saliency(out, seed=seed)
    return lambda out, seed: diffusion.build_flux_fill(out, seed=seed)


def build_tiny_model(kind: str, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build the tiny ``kind`` model from scratch into ``out_dir`` (new or empty) and return it.

    Weights are random but seeded (same seed -> identical files); tokenizers are trained on the
    in-repo corpus. Raises ``ValueError`` for an unknown kind, ``FileExistsError`` if ``out_dir``
    is a non-empty directory or a file.
    """
    _check_kind(kind)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"build_tiny_model: output {str(out)!r} exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)

    # fork_rng: builders seed torch's global RNG; the caller's RNG state is left as it was.
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        bars_were_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            _builder(kind)(out, seed)
        finally:
            if bars_were_enabled:
                hf_logging.enable_progress_bar()
    manifest = {
        "kind": kind,
        "seed": seed,
        "recipe_hash": recipe_hash(kind, seed),
        "rlkit_recipe": RECIPE_VERSION,
    }
    (out / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def tiny_model_path(kind: str, cache_dir: str | Path | None = None, *, seed: int = 0) -> Path:
    """Directory of the cached tiny ``kind`` model, building it once if needed (seconds).

    Load it with the ordinary calls, e.g. ``AutoModelForImageTextToText.from_pretrained(p)`` and
    ``rlkit.policies.load_processor(p)`` (or ``AutoProcessor``: the image-only Qwen-VL processors are
    registered here) for the VLMs, ``DiffusionPipeline.from_pretrained(p)`` for ``"sd_inpaint"`` /
    ``"flux_fill"``, ``rlkit.policies.load_saliency_net(p)`` for ``"saliency_text"`` / ``"saliency_vlm"``.
    Safe to call from concurrent processes.
    """
    _check_kind(kind)
    register_processors()
    root = cache_root(cache_dir) / "tiny"
    final = root / f"{kind}-{recipe_hash(kind, seed)}"
    if (final / _MANIFEST).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    if final.exists():  # a broken leftover (no manifest): a complete build always carries one
        shutil.rmtree(final, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        build_tiny_model(kind, tmp, seed=seed)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process finished first (final exists and is non-empty): use theirs.
            if not (final / _MANIFEST).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


TINY_PREFIX = "tiny:"


def resolve_model_name(name_or_path: str) -> str:
    """``"tiny:<kind>"`` -> the cached tiny model folder (built once, no download); anything else unchanged.

    Entry points (the CLI, the recipe scripts, the quickstart demo) call this so ``tiny:`` names work in
    configs; library code takes real paths and hub ids only.
    """
    if isinstance(name_or_path, str) and name_or_path.startswith(TINY_PREFIX):
        kind = name_or_path[len(TINY_PREFIX):]
        if kind not in TINY_KINDS:
            raise ValueError(f"model_name_or_path={name_or_path!r}: unknown tiny kind {kind!r}; "
                             f"choose one of {sorted(TINY_KINDS)}")
        return str(tiny_model_path(kind))
    return name_or_path


__all__ = ["RECIPE_VERSION", "TINY_KINDS", "TINY_PREFIX", "build_tiny_model", "cache_root", "recipe_hash",
           "resolve_model_name", "tiny_model_path"]
