"""The PGRT alternation as resumable stages: data, GRM SFT, [GRM RL on perturbed pairs], [policy SFT], rounds of
policy GRPO -> sampling -> policy pairs -> GRM PGRT, [Fig. 5]. See :mod:`rlkit.train.pgrt` and docs/pgrt.md.

Each stage is recorded in ``<output_dir>/manifest.json`` (:class:`~rlkit.train.manifest.RunManifest`); a
relaunch skips finished stages, continues a trainer stage from its last complete checkpoint and never
regenerates a saved sample shard. Stages seed themselves from the run's seed, so a resumed run reproduces an
uninterrupted one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import gc
import json
import logging
import os
import random
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from datasets import Dataset, concatenate_datasets, load_from_disk
from peft import LoraConfig
from rich.console import Console
from rich.table import Table
from transformers import TrainerCallback, TrainingArguments, set_seed
from trl import GRPOConfig, SFTConfig, get_peft_config

from rlkit.envs import RetouchEnvReward
from rlkit.metrics import l1
from rlkit.ops import EditProgram, apply_program, parse_program, to_pil, to_tensor
from rlkit.policies import (
    is_adapter_dir,
    load_policy,
    load_processing_class,
    resolve_model_path,
    retoucher_prompt,
    retoucher_rows,
)
from rlkit.rewards import (
    EndpointAnnotator,
    GenerativeRewardModel,
    GRMServer,
    MLLMPerturber,
    OpenAIBackend,
    RandomKeyPerturber,
    TemplateAnnotator,
    TransformersBackend,
    WeakFilter,
    build_perturbed_pairs,
    build_policy_pairs,
    load_pairs,
    pair_sources,
    retouchiq_policy_reward,
    save_pairs,
    transformers_answer_fn,
)
from rlkit.train.generate import generate_texts
from rlkit.train.grm import GRMSFTConfig, pair_accuracy, train_grm_sft
from rlkit.train.manifest import RunManifest, last_complete_checkpoint
from rlkit.train.pgrt import PGRTArguments, PGRTConfigError, train_grm_rl
from rlkit.train.pgrt_figure import write_fig5
from rlkit.train.recipe_data import load_rows
from rlkit.train.stages import (
    end_stage,
    init_distributed_for_deepspeed,
    is_main_process,
    train_grpo,
    train_sft,
)

logger = logging.getLogger("rlkit.train")

__all__ = ["PGRTRun", "run_pgrt"]


# ------------------------------------------------------------------------------------------ helpers
def _init_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


# Fields a stage never inherits from the run's GRPOConfig (each stage sets them, or trl derives them).
_PER_STAGE = {"learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "output_dir",
              "logging_dir", "run_name", "resume_from_checkpoint", "model_init_kwargs", "remove_unused_columns",
              "generation_batch_size", "steps_per_generation", "reward_weights"}


def _stage_args(base: GRPOConfig, cls: type, **overrides: Any) -> Any:
    """A ``cls`` config (SFTConfig, GRPOConfig, ...) for one stage: the run's Trainer settings (precision,
    DeepSpeed, seed, logging, saving) from ``base``, GRPO's own fields too when ``cls`` is a GRPOConfig, and
    ``overrides``. trl fields of the same name mean different things per trainer, so only these are shared."""
    shared = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    if issubclass(cls, GRPOConfig):
        shared |= {f.name for f in dataclasses.fields(GRPOConfig) if f.init}
    kwargs = {n: _init_value(getattr(base, n)) for n in sorted(shared - _PER_STAGE) if hasattr(base, n)}
    if isinstance(kwargs.get("report_to"), list) and not kwargs["report_to"]:
        kwargs["report_to"] = "none"
    kwargs.update(overrides)
    return cls(**kwargs)


def _curve(log_history: Sequence[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """First and last quarter means of a logged value (how a stage moved its own objective)."""
    vals = [float(e[key]) for e in log_history if key in e and "step" in e]
    if not vals:
        return None
    q = max(1, len(vals) // 4)
    return {"first": sum(vals[:q]) / q, "last": sum(vals[-q:]) / q, "points": len(vals)}


def _device() -> str:
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"


def _set_seed(seed: int) -> None:
    set_seed(seed)


class _Timer(TrainerCallback):
    """Wall time inside ``trainer.train`` (the benchmark's "inside trl" share)."""

    def __init__(self) -> None:
        self.seconds, self._t0 = 0.0, None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._t0 = time.perf_counter()

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._t0 is not None:
            self.seconds += time.perf_counter() - self._t0


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj), encoding="utf-8")
    os.replace(tmp, path)


# Settings that may change when a run is resumed: operational ones, and those that only add stages at the end
# (Fig. 5 after a finished alternation).
_MUTABLE = tuple(f"script.{k}" for k in ("endpoint_timeout", "grm_base_url", "grm_reload_command",
                                          "grm_reload_timeout", "perturber_base_url", "annotator_base_url"))
_GROWABLE = tuple(f"script.{k}" for k in ("fig5", "fig5_policy_max_steps", "judge_model_name_or_path",
                                           "judge_base_url"))


def _settings(script_args: PGRTArguments, grpo_args: GRPOConfig, model_args: Any) -> dict[str, Any]:
    """What determines the run's results (a resume must match it)."""
    keys = ("seed", "learning_rate", "max_steps", "num_train_epochs", "per_device_train_batch_size",
            "gradient_accumulation_steps", "num_generations", "max_completion_length", "temperature", "beta",
            "lr_scheduler_type", "warmup_steps", "warmup_ratio", "bf16", "use_vllm")
    out = {f"script.{k}": v for k, v in dataclasses.asdict(script_args).items()}
    out.update({f"grpo.{k}": _init_value(getattr(grpo_args, k, None)) for k in keys})
    for k in ("model_name_or_path", "dtype", "use_peft", "lora_r", "lora_alpha", "lora_target_modules"):
        out[f"model.{k}"] = getattr(model_args, k, None)
    return out


# ------------------------------------------------------------------------------------------ the runner
class PGRTRun:
    """The alternation as resumable stages (see the module doc); ``run()`` executes what is not done yet."""

    def __init__(self, script_args: PGRTArguments, grpo_args: GRPOConfig, model_args: Any) -> None:
        script_args.check()
        if not getattr(model_args, "model_name_or_path", None):
            raise PGRTConfigError("model_name_or_path is required (a folder, a hub id, or tiny:qwen2_5_vl)")
        self.a, self.g, self.m = script_args, grpo_args, model_args
        self.dir = Path(grpo_args.output_dir)
        self.policy_base = resolve_model_path(model_args.model_name_or_path)
        self.grm_base = resolve_model_path(script_args.grm_model_name_or_path or model_args.model_name_or_path)
        self.fmt = script_args.program_format
        self.weak_filter = WeakFilter(script_args.grm_gap_metric, script_args.grm_min_gap)
        self.init_kwargs = dict(grpo_args.model_init_kwargs or {})
        if getattr(model_args, "dtype", None) and "dtype" not in self.init_kwargs:
            self.init_kwargs["dtype"] = model_args.dtype
        self.plan = self._plan()
        self.manifest: RunManifest | None = None
        self.current: str | None = None
        self._processors: dict[str, Any] = {}
        self._cache: dict[str, Any] = {}
        self._timing: dict[str, float] = {"train_s": 0.0, "generate_s": 0.0}

    # -- plan -------------------------------------------------------------------------------------------
    def grm_variants(self) -> list[str]:
        """The GRMs of Fig. 5: untrained, perturbation-only, and PGRT after each round."""
        return ["untrained", "perturbed"] + [f"pgrt_{r}" for r in range(1, self.a.rounds + 1)]

    def _plan(self) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [("data", self._data), ("grm_sft", self._grm_sft)]
        if self.a.grm_rl_initial_steps > 0:
            plan.append(("grm_rl0", self._grm_rl0))
        if not self.a.policy_sft_model_path:
            plan.append(("policy_sft", self._policy_sft))
        for r in range(1, self.a.rounds + 1):
            plan += [(f"policy_grpo_{r}", lambda r=r: self._policy_grpo(r)),
                     (f"sample_{r}", lambda r=r: self._sample(r)),
                     (f"pairs_{r}", lambda r=r: self._pairs(r)),
                     (f"grm_pgrt_{r}", lambda r=r: self._grm_pgrt(r))]
        if self.a.fig5:
            plan += [(f"fig5_policy_{v}", lambda v=v: self._fig5_policy(v)) for v in self.grm_variants()]
            plan.append(("fig5_report", self._fig5_report))
        return plan

    # -- paths ------------------------------------------------------------------------------------------
    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def rel(self, path: str | Path) -> str:
        """``path`` relative to the run directory when inside it (manifests stay comparable across copies)."""
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.dir.resolve()))
        except ValueError:
            return str(path)

    def grm_path(self, variant: str) -> str:
        """The GRM checkpoint of a Fig. 5 variant (``untrained`` = the base model)."""
        if variant == "untrained":
            return self.grm_base
        if variant == "perturbed":
            return str(self.path("grm", "rl0" if self.a.grm_rl_initial_steps > 0 else "sft"))
        return str(self.path("grm", variant))

    def grm_after_round(self, r: int) -> str:
        return self.grm_path("perturbed" if r == 0 else f"pgrt_{r}")

    def policy_after_round(self, r: int) -> str:
        if r == 0:
            return self.a.policy_sft_model_path or str(self.path("policy", "sft"))
        return str(self.path("policy", f"round_{r}"))

    # -- running ----------------------------------------------------------------------------------------
    def _barrier(self) -> None:
        PartialState().wait_for_everyone()

    def run(self) -> dict[str, Any]:
        # Every stage ends with full garbage collections (trainer teardown); keep the objects alive since import
        # (modules, tokenizers, ...) out of them, or each collection rescans them all (~0.7 s at tiny scale).
        gc.freeze()
        init_distributed_for_deepspeed()
        names = [n for n, _ in self.plan]
        if is_main_process():
            self.dir.mkdir(parents=True, exist_ok=True)
            RunManifest.open(self.path("manifest.json"), kind="pgrt", settings=_settings(self.a, self.g, self.m),
                             stages=names, mutable=_MUTABLE, growable=_GROWABLE)
        self._barrier()
        self.manifest = RunManifest.read(self.path("manifest.json"))
        t_run = time.perf_counter()
        for name, fn in self.plan:
            if self.manifest.is_done(name):
                continue
            self.current = name
            if is_main_process():
                self.manifest.start(name)
                logger.warning("rlkit pgrt: stage %s", name)
            t0 = time.perf_counter()
            self._timing = {"train_s": 0.0, "generate_s": 0.0}
            result = fn()
            self._barrier()
            if is_main_process():
                run = {**self._timing, "wall_s": time.perf_counter() - t0}
                self.manifest.finish(name, output=result.pop("output", None), metrics=result, run=run)
            self.manifest = RunManifest.read(self.path("manifest.json"))
        self.current = None
        if is_main_process():
            _print_summary(self.manifest, time.perf_counter() - t_run)
        return self.manifest.data

    # -- loading (each model at most once per stage) ------------------------------------------------------
    def processor(self, path: str) -> Any:
        key = str(Path(path).resolve()) if Path(path).exists() else path
        if key not in self._processors:
            self._processors[key] = load_processing_class(path)
        return self._processors[key]

    def rows(self, which: str) -> list[dict[str, Any]]:
        """Training or held-out records (saved by the data stage; cached per process)."""
        if which not in self._cache:
            self._cache[which] = [dict(r) for r in load_from_disk(str(self.path("data", f"{which}_records")))]
        return self._cache[which]

    def pairs(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = load_pairs(self.path("data", name))
        return self._cache[name]

    def grm_backend(self, path: str) -> TransformersBackend:
        model = load_policy(path, trainable_adapter=False, dtype=self.init_kwargs.get("dtype"))
        return TransformersBackend(model, self.processor(path), device=_device(), batch_size=self.a.grm_eval_batch_size,
                                   max_new_tokens=self.a.grm_max_completion_length)

    def accuracy(self, backend: TransformersBackend, pairs: Any) -> dict[str, Any]:
        """The GRM's accuracy on ``pairs`` asked both ways: the pair prompt (both orders; what PGRT trains)
        and one edit at a time (what the policy's pointwise reward asks)."""
        t0 = time.perf_counter()
        out = {mode: pair_accuracy(backend, pairs, mode=mode) for mode in ("pair", "pointwise")}
        self._timing["generate_s"] += time.perf_counter() - t0
        return out

    def _resume(self, out_dir: Path) -> str | None:
        ckpt = last_complete_checkpoint(out_dir)
        return str(ckpt) if ckpt is not None else None

    def _start_model(self, path: str, peft_config: Any) -> tuple[Any, Any]:
        """(model, peft_config) for a trainer continuing from ``path``: an adapter keeps training itself."""
        if is_adapter_dir(path):
            return load_policy(path, dtype=self.init_kwargs.get("dtype")), None
        return path, peft_config

    def _grm_peft(self) -> Any:
        if not self.a.grm_use_peft:
            return None

        return LoraConfig(r=self.a.grm_lora_r, lora_alpha=self.a.grm_lora_alpha, target_modules="all-linear",
                          task_type="CAUSAL_LM")

    def _policy_peft(self) -> Any:
        return get_peft_config(self.m)

    def _finish_trainer(self, trainer: Any, timer: _Timer) -> dict[str, Any]:
        self._timing["train_s"] += timer.seconds
        info = {"global_step": trainer.state.global_step}
        for key, name in (("loss", "loss"), ("reward", "reward"), ("rewards/pgrt_ranking/mean", "ranking"),
                          ("rewards/pgrt_format/mean", "format")):
            c = _curve(trainer.state.log_history, key)
            if c is not None:
                info[name] = c
        return info

    # -- stages -----------------------------------------------------------------------------------------
    def _data(self) -> dict[str, Any]:
        a = self.a
        out: dict[str, Any] = {"output": self.path("data"), "filter": self.weak_filter.describe()}
        if is_main_process():
            train, test = load_rows(a.dataset_name, task="retoucher", image_size=a.image_size, size=a.synthetic_size,
                                    seed=a.synthetic_seed, max_train_samples=a.max_train_samples)
            if a.eval_dataset_name is None:
                heldout = test
            else:
                h_train, h_test = load_rows(a.eval_dataset_name, task="retoucher", image_size=a.image_size,
                                            size=a.eval_size, seed=a.eval_seed)
                heldout = h_train + h_test
            if not heldout:
                raise PGRTConfigError("the held-out split is empty; set eval_dataset_name or a dataset with a test split")
            lacking = [r.get("id") or i for i, r in enumerate(heldout) if r.get("target_image") is None]
            if lacking:
                raise PGRTConfigError(f"held-out rows {lacking[:5]} have no expert image ('after'/'target_image'): the "
                                      "policy's held-out score is its distance to it")
            for name, rows in (("train", train), ("heldout", heldout)):
                Dataset.from_list(rows).save_to_disk(str(self.path("data", f"{name}_records")))
            perturber = RandomKeyPerturber() if a.perturber == "random" else MLLMPerturber(
                OpenAIBackend(a.perturber_base_url, a.perturber_model, timeout=a.endpoint_timeout, temperature=0.7))
            annotator = TemplateAnnotator(full_gap=a.template_full_gap) if a.annotator == "template" else EndpointAnnotator(
                OpenAIBackend(a.annotator_base_url, a.annotator_model, timeout=a.endpoint_timeout))
            for name, rows, ann, seed in (("perturbed_train", train, annotator, self.g.seed),
                                          ("perturbed_heldout", heldout, None, self.g.seed + 1)):
                built = build_perturbed_pairs(pair_sources(rows), per_record=a.grm_pairs_per_record,
                                              candidates=a.grm_candidates, perturber=perturber, annotator=ann,
                                              weak_filter=self.weak_filter, seed=seed, progress=True)
                if built.kept == 0:
                    raise PGRTConfigError(f"no {name} pair passed the filter ({built.summary()}); lower grm_min_gap")
                save_pairs(built.dataset, self.path("data", name))
                out[name] = built.summary()
            out.update(train_records=len(train), heldout_records=len(heldout))
        return out

    def _grm_sft(self) -> dict[str, Any]:
        a, out_dir = self.a, self.path("grm", "sft")
        args = _stage_args(self.g, GRMSFTConfig, output_dir=str(out_dir), learning_rate=a.grm_sft_learning_rate,
                           max_steps=a.grm_sft_max_steps, num_train_epochs=a.grm_sft_num_train_epochs,
                           per_device_train_batch_size=a.grm_sft_batch_size or self.g.per_device_train_batch_size,
                           pointwise_rows=a.grm_pointwise_rows, model_init_kwargs=self.init_kwargs or None)
        _set_seed(self.g.seed)
        timer = _Timer()
        trainer = train_grm_sft(self.grm_base, self.pairs("perturbed_train"), args,
                                processing_class=self.processor(self.grm_base), peft_config=self._grm_peft(),
                                callbacks=[timer], resume_from_checkpoint=self._resume(out_dir))
        info = self._finish_trainer(trainer, timer)
        info["heldout_perturbed"] = self._eval_trained_grm(trainer, out_dir, "perturbed_heldout")
        end_stage(trainer)
        return {"output": out_dir, **info}

    def _trained_model(self, trainer: Any, out_dir: Path) -> Any:
        """A just-trained model ready to generate: the trainer's own, or (ZeRO-3 shards it) its saved copy."""
        plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
        if trainer.is_deepspeed_enabled and getattr(plugin, "zero_stage", 0) == 3:
            return load_policy(out_dir, trainable_adapter=False, dtype=self.init_kwargs.get("dtype"))
        return trainer.accelerator.unwrap_model(trainer.model)

    def _eval_trained_grm(self, trainer: Any, out_dir: Path, *pair_sets: str) -> dict[str, Any] | None:
        """Pair accuracy of a just-trained GRM on the named held-out pair sets (main process only)."""
        if not is_main_process():
            return None
        backend = TransformersBackend(self._trained_model(trainer, out_dir), self.processor(self.grm_base),
                                      device=_device(), batch_size=self.a.grm_eval_batch_size,
                                      max_new_tokens=self.a.grm_max_completion_length)
        res = {name: self.accuracy(backend, self.pairs(name)) for name in pair_sets}
        backend.model.train()
        return res if len(pair_sets) > 1 else res[pair_sets[0]]

    def _grm_rl_args(self, out_dir: Path, steps: int) -> GRPOConfig:
        a = self.a
        return _stage_args(self.g, GRPOConfig, output_dir=str(out_dir), learning_rate=a.grm_rl_learning_rate,
                           max_steps=steps, per_device_train_batch_size=a.grm_rl_batch_size or
                           self.g.per_device_train_batch_size, num_generations=a.grm_num_generations,
                           max_completion_length=a.grm_max_completion_length,
                           reward_weights=[a.ranking_weight, a.format_weight],
                           model_init_kwargs=self.init_kwargs or None)

    def _grm_rl(self, start: str, pairs_name: str, out_dir: Path, steps: int, eval_sets: tuple[str, ...]
                ) -> dict[str, Any]:
        args = self._grm_rl_args(out_dir, steps)
        _set_seed(self.g.seed)
        model, peft = self._start_model(start, self._grm_peft())
        timer = _Timer()
        trainer = train_grm_rl(model, self.pairs(pairs_name), args, processing_class=self.processor(self.grm_base),
                               peft_config=peft, callbacks=[timer], resume_from_checkpoint=self._resume(out_dir))
        info = self._finish_trainer(trainer, timer)
        acc = self._eval_trained_grm(trainer, out_dir, *eval_sets)
        info["heldout"] = acc if len(eval_sets) > 1 or acc is None else {eval_sets[0]: acc}
        end_stage(trainer)
        return {"output": out_dir, "start": self.rel(start), **info}

    def _grm_rl0(self) -> dict[str, Any]:
        return self._grm_rl(str(self.path("grm", "sft")), "perturbed_train", self.path("grm", "rl0"),
                            self.a.grm_rl_initial_steps, ("perturbed_heldout",))

    def _grm_pgrt(self, r: int) -> dict[str, Any]:
        return self._grm_rl(self.grm_after_round(r - 1), f"policy_{r}_train", self.path("grm", f"pgrt_{r}"),
                            self.a.grm_pgrt_max_steps, ("perturbed_heldout", f"policy_{r}_heldout"))

    def _policy_sft(self) -> dict[str, Any]:
        a, out_dir = self.a, self.path("policy", "sft")

        args = _stage_args(self.g, SFTConfig, output_dir=str(out_dir), learning_rate=a.policy_sft_learning_rate,
                           max_steps=a.policy_sft_max_steps, num_train_epochs=a.policy_sft_num_train_epochs,
                           per_device_train_batch_size=self.g.per_device_train_batch_size, max_length=None,
                           model_init_kwargs=self.init_kwargs or None)
        _set_seed(self.g.seed)
        timer = _Timer()
        rows = self.rows("train") if self.a.policy_sft_reasoning else [
            {**r, "reasoning": ""} for r in self.rows("train")]
        ds = Dataset.from_list(retoucher_rows(rows, stage="sft", fmt=self.fmt))
        trainer = train_sft(self.policy_base, ds, args, processing_class=self.processor(self.policy_base),
                            peft_config=self._policy_peft(), callbacks=[timer],
                            resume_from_checkpoint=self._resume(out_dir))
        info = self._finish_trainer(trainer, timer)
        info["heldout"] = self._eval_policy(trainer, out_dir)
        end_stage(trainer)
        return {"output": out_dir, **info}

    # -- the policy's GRPO with a GRM as reward --------------------------------------------------------------
    def _serve_grm(self, grm: str) -> tuple[Any, Any]:
        """(backend, server to stop) for the GRM at ``grm`` as configured by ``grm_serve``."""
        a = self.a
        if a.grm_serve == "in_process":
            return self.grm_backend(grm), None
        if a.grm_serve == "local_server":
            server = GRMServer(transformers_answer_fn(self.grm_backend(grm)), model_name=a.grm_served_name).start()
            return OpenAIBackend(server.base_url, a.grm_served_name, timeout=a.endpoint_timeout,
                                 max_tokens=a.grm_max_completion_length), server
        if is_main_process():
            self._reload_external(grm)
        self._barrier()
        return OpenAIBackend(a.grm_base_url, a.grm_served_name, timeout=a.endpoint_timeout,  # type: ignore[arg-type]
                             max_tokens=a.grm_max_completion_length), None

    def _reload_external(self, grm: str) -> None:
        a = self.a
        cmd = a.grm_reload_command.replace("{checkpoint}", str(Path(grm).resolve()))  # type: ignore[union-attr]
        proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=a.grm_reload_timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"grm_reload_command failed ({proc.returncode}): {cmd}\n{proc.stderr[-2000:]}")
        url = a.grm_base_url.rstrip("/")  # type: ignore[union-attr]
        url = (url if url.endswith("/v1") else url + "/v1") + "/models"
        deadline = time.monotonic() + a.grm_reload_timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    if resp.status == 200:
                        return
            except OSError as exc:
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"GRM server {url} not ready {a.grm_reload_timeout:g}s after reloading {grm}: {last}")
            time.sleep(2.0)

    def _train_policy(self, start: str, grm: str, out_dir: Path, steps: int) -> dict[str, Any]:
        """Policy GRPO from ``start`` with format + the GRM at ``grm`` (Eq. 2), executed in RetouchEnv."""
        a = self.a
        backend, server = self._serve_grm(grm)
        try:
            judge = GenerativeRewardModel(backend, mode=a.grm_reward_mode, program_format=self.fmt,
                                          seed=self.g.seed)
            reward = RetouchEnvReward(retouchiq_policy_reward(judge, fmt=self.fmt),
                                      image_size=(a.image_size, a.image_size), fmt=self.fmt, name="retouchiq")
            args = _stage_args(self.g, GRPOConfig, output_dir=str(out_dir), learning_rate=self.g.learning_rate,
                               max_steps=steps, num_train_epochs=self.g.num_train_epochs,
                               per_device_train_batch_size=self.g.per_device_train_batch_size,
                               model_init_kwargs=self.init_kwargs or None)
            _set_seed(self.g.seed)
            model, peft = self._start_model(start, self._policy_peft())
            timer = _Timer()
            ds = Dataset.from_list(retoucher_rows(self.rows("train"), stage="grpo", fmt=self.fmt))
            trainer = train_grpo(model, [reward], ds, args, processing_class=self.processor(self.policy_base),
                                 peft_config=peft, callbacks=[timer], resume_from_checkpoint=self._resume(out_dir))
        finally:
            if server is not None:
                server.stop()
        info = self._finish_trainer(trainer, timer)
        info["heldout"] = self._eval_policy(trainer, out_dir)
        end_stage(trainer)
        return {"output": out_dir, "start": self.rel(start), "grm": self.rel(grm), **info}

    def _policy_grpo(self, r: int) -> dict[str, Any]:
        return self._train_policy(self.policy_after_round(r - 1), self.grm_after_round(r - 1),
                                  self.path("policy", f"round_{r}"), self.g.max_steps)

    def _eval_policy(self, trainer: Any, out_dir: Path) -> dict[str, Any] | None:
        """Held-out score of a just-trained policy: greedy edits, L1 to the expert edit (rlkit.metrics.l1)."""
        if not is_main_process():
            return None
        model = self._trained_model(trainer, out_dir)
        res = self._policy_scores(model, self.processor(self.policy_base))
        model.train()
        return res

    def _policy_scores(self, model: Any, processor: Any) -> dict[str, Any]:
        rows = self.rows("heldout")
        t0 = time.perf_counter()
        texts = generate_texts(model, processor, [retoucher_prompt(r["instruction"]) for r in rows],
                               [r["image"] for r in rows], temperature=0.0,
                               max_new_tokens=self.g.max_completion_length, batch_size=16, seed=self.g.seed)
        self._timing["generate_s"] += time.perf_counter() - t0
        dists, parsed = [], 0
        outputs = []
        for r, (text,) in zip(rows, texts):
            p = parse_program(text, self.fmt)
            parsed += p.program is not None
            src = to_tensor(r["image"])
            out = apply_program(src, p.program if p.program is not None else EditProgram())
            outputs.append(out)
            dists.append(float(l1(out, to_tensor(r["target_image"]))[0]))
        res = {"l1": sum(dists) / len(dists), "parsed": parsed / len(rows), "records": len(rows)}
        judge = self._judge()
        if judge is not None:
            scores = []
            for r, out in zip(rows, outputs):
                p = asyncio.run(judge.judge(r["instruction"], r["image"], [to_pil(out)[0]]))
                scores.append(p.score)
            ok = [s for s in scores if s is not None]
            res["judge"] = sum(ok) / len(ok) if ok else None
            res["judge_answered"] = len(ok) / len(scores)
        return res

    def _judge(self) -> GenerativeRewardModel | None:
        a = self.a
        if "judge" not in self._cache:
            if a.judge_base_url:
                backend: Any = OpenAIBackend(a.judge_base_url, a.judge_model_name_or_path or "judge",
                                             timeout=a.endpoint_timeout)
            elif a.judge_model_name_or_path:
                backend = self.grm_backend(resolve_model_path(a.judge_model_name_or_path))
            else:
                backend = None
            self._cache["judge"] = GenerativeRewardModel(backend) if backend is not None else None
        return self._cache["judge"]

    # -- sampling and policy pairs ----------------------------------------------------------------------------
    def _sample(self, r: int) -> dict[str, Any]:
        """Policy edits on the GRM's training instructions (and the held-out ones), saved in shards; ranks share
        the shards, and a shard on disk is never generated again."""
        a = self.a
        rng = random.Random(self.g.seed * 7919 + r)
        train_ids = list(range(len(self.rows("train"))))
        rng.shuffle(train_ids)
        jobs = [("train", sorted(train_ids[:a.samples_per_round]), a.samples_per_instruction, a.sample_temperature),
                ("heldout", list(range(len(self.rows("heldout")))), a.heldout_samples_per_instruction,
                 a.sample_temperature)]
        out_dir = self.path("samples", f"round_{r}")
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        todo = []
        for split, ids, k, temp in jobs:
            (out_dir / split).mkdir(parents=True, exist_ok=True)
            for s, start in enumerate(range(0, len(ids), a.sample_shard_size)):
                f = out_dir / split / f"shard_{s:05d}.json"
                if s % world == rank and not f.exists():
                    todo.append((f, split, ids[start:start + a.sample_shard_size], k, temp, s))
        if todo:
            model = load_policy(self.policy_after_round(r), trainable_adapter=False,
                                dtype=self.init_kwargs.get("dtype")).to(_device())
            processor = self.processor(self.policy_base)
            for f, split, ids, k, temp, s in todo:
                rows = [self.rows(split)[i] for i in ids]
                t0 = time.perf_counter()
                texts = generate_texts(model, processor, [retoucher_prompt(x["instruction"]) for x in rows],
                                       [x["image"] for x in rows], num_samples=k, temperature=temp,
                                       max_new_tokens=self.g.max_completion_length, batch_size=16,
                                       seed=self.g.seed * 100_003 + r * 1009 + s * 2 + (split == "heldout"))
                self._timing["generate_s"] += time.perf_counter() - t0
                _atomic_json(f, {"ids": ids, "completions": texts})
        return {"output": out_dir, "train_records": min(a.samples_per_round, len(train_ids)),
                "heldout_records": len(self.rows("heldout"))}

    def _read_samples(self, r: int, split: str) -> tuple[list[int], list[list[str]]]:
        ids, comps = [], []
        for f in sorted(self.path("samples", f"round_{r}", split).glob("shard_*.json")):
            try:
                obj = json.loads(f.read_text(encoding="utf-8"))
                ids += [int(i) for i in obj["ids"]]
                comps += [[str(t) for t in c] for c in obj["completions"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"sample shard {str(f)!r} is damaged ({exc}); delete it to sample it again") from None
        return ids, comps

    def _pairs(self, r: int) -> dict[str, Any]:
        out: dict[str, Any] = {"output": self.path("data")}
        if not is_main_process():
            return out
        for split in ("train", "heldout"):
            ids, comps = self._read_samples(r, split)
            items = pair_sources([self.rows(split)[i] for i in ids])
            built = build_policy_pairs(items, comps, fmt=self.fmt, weak_filter=self.weak_filter,
                                       seed=self.g.seed * 31 + r, unparsed=self.a.policy_unparsed)
            if split == "train" and built.kept == 0:
                raise RuntimeError(f"round {r}: no policy edit passed the filter ({built.summary()}); the GRM has "
                                   "nothing to learn from; sample more (samples_per_round) or lower grm_min_gap")
            save_pairs(built.dataset, self.path("data", f"policy_{r}_{split}"))
            out[f"policy_{r}_{split}"] = built.summary()
        # the GRM before PGRT, on this round's held-out policy pairs (the PGRT stage reports it after)
        backend = self.grm_backend(self.grm_after_round(r - 1))
        out["grm_before_pgrt"] = {"policy_heldout": self.accuracy(backend, self.pairs(f"policy_{r}_heldout"))}
        return out

    # -- Fig. 5 -------------------------------------------------------------------------------------------
    def _fig5_policy(self, variant: str) -> dict[str, Any]:
        steps = self.a.fig5_policy_max_steps or self.g.max_steps
        return self._train_policy(self.policy_after_round(0), self.grm_path(variant),
                                  self.path("fig5", f"policy_{variant}"), steps)

    def _fig5_report(self) -> dict[str, Any]:
        out_dir = self.path("fig5")
        if not is_main_process():
            return {"output": out_dir}
        policy_sets = [self.pairs(f"policy_{r}_heldout") for r in range(1, self.a.rounds + 1)]
        policy_pairs = concatenate_datasets(policy_sets) if policy_sets else None
        rows = []
        m = self.manifest
        for v in self.grm_variants():
            backend = self.grm_backend(self.grm_path(v))
            acc_p = self.accuracy(backend, self.pairs("perturbed_heldout"))
            acc_q = self.accuracy(backend, policy_pairs) if policy_pairs is not None and len(policy_pairs) else None
            del backend
            pol = m.stage(f"fig5_policy_{v}")["metrics"].get("heldout") or {}  # type: ignore[union-attr]
            rows.append({"grm": v, "acc_perturbed": acc_p, "acc_policy": acc_q, "policy": pol})
        refs = {"policy_sft": (m.stage("policy_sft")["metrics"].get("heldout") if not self.a.policy_sft_model_path
                               else None), "identity_l1": self._identity_l1()}  # type: ignore[union-attr]
        files = write_fig5(out_dir, rows, refs)
        return {"output": out_dir, "rows": rows, "references": refs, "files": [str(Path(f).name) for f in files]}

    def _identity_l1(self) -> float:
        rows = self.rows("heldout")
        return sum(float(l1(to_tensor(r["image"]), to_tensor(r["target_image"]))[0]) for r in rows) / len(rows)


def _print_summary(manifest: RunManifest, wall: float) -> None:
    """A short table of the stages (rich)."""
    table = Table(title=f"rlkit pgrt: {manifest.path.parent} ({wall:.0f}s this launch)")
    for col in ("stage", "status", "wall s", "key result"):
        table.add_column(col)
    for st in manifest.data["stages"]:
        met = st.get("metrics") or {}
        key = ""
        for name in ("ranking", "reward", "loss"):
            if isinstance(met.get(name), dict):
                key = f"{name} {met[name]['first']:.3f} -> {met[name]['last']:.3f}"
                break
        acc = met.get("heldout_perturbed") or (met.get("heldout") or {}).get("perturbed_heldout")
        if isinstance(acc, dict) and "pair" in acc:
            key += (f"  acc(perturbed) pair {acc['pair']['accuracy']:.2f} / pointwise "
                    f"{acc['pointwise']['accuracy']:.2f}")
        pol = (met.get("heldout") or {}) if isinstance(met.get("heldout"), dict) else {}
        if "l1" in pol:
            key += f"  held-out L1 {pol['l1']:.4f}"
        wall_s = st.get("run", {}).get("wall_s")
        table.add_row(st["name"], st["status"], f"{wall_s:.1f}" if wall_s is not None else "", key.strip())
    Console().print(table)


def run_pgrt(script_args: PGRTArguments, grpo_args: GRPOConfig, model_args: Any) -> dict[str, Any]:
    """Run (or resume) the alternation in ``grpo_args.output_dir``; returns the manifest's data."""
    return PGRTRun(script_args, grpo_args, model_args).run()
