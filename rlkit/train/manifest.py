"""A run directory's manifest: one JSON file listing every stage of a multi-stage run, with its inputs,
output, metrics and status, written atomically after each change so a killed run can be resumed.

Each stage entry holds ``name``, ``status`` (pending / running / done), ``output`` (a path relative to the
run directory), ``inputs``, ``metrics`` and ``run`` (attempts, timestamps and timings: the only fields that
differ between an interrupted-and-resumed run and an uninterrupted one). The run's settings are stored
too; resuming with different settings is refused, naming the fields that changed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from safetensors import safe_open

logger = logging.getLogger("rlkit.train")

__all__ = ["RunManifest", "ManifestError", "CheckpointError", "last_complete_checkpoint", "STATUSES"]

STATUSES = ("pending", "running", "done")
VERSION = 1


class ManifestError(ValueError):
    """The manifest file is unreadable, of another run, or was written with different settings."""


class CheckpointError(ValueError):
    """A trainer checkpoint is damaged; the message names the file."""


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class RunManifest:
    """The manifest of one run directory (see the module doc). Only the main process should write it."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    # -- opening -------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path) -> RunManifest:
        """Load an existing manifest; a missing, unparseable or malformed file raises :class:`ManifestError`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestError(f"run manifest {str(path)!r} does not exist") from None
        except OSError as exc:
            raise ManifestError(f"run manifest {str(path)!r} cannot be read: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(
                f"run manifest {str(path)!r} is not valid JSON ({exc}); rlkit writes it atomically, so it was "
                "damaged outside a run: restore it, or start the run in a new output_dir") from None
        problem = cls._malformed(data)
        if problem:
            raise ManifestError(f"run manifest {str(path)!r} is malformed: {problem}")
        return cls(path, data)

    @staticmethod
    def _malformed(data: Any) -> str | None:
        if not isinstance(data, dict):
            return f"expected a JSON object, got {type(data).__name__}"
        if data.get("version") != VERSION:
            return f"version {data.get('version')!r}, expected {VERSION}"
        if not isinstance(data.get("stages"), list) or not isinstance(data.get("settings"), dict):
            return "no 'stages' list or 'settings' object"
        for i, st in enumerate(data["stages"]):
            if not isinstance(st, dict) or not isinstance(st.get("name"), str) or st.get("status") not in STATUSES:
                return f"stage entry {i} needs a 'name' and a 'status' in {STATUSES}: {st!r}"[:300]
        return None

    @classmethod
    def open(cls, path: str | Path, *, kind: str, settings: Mapping[str, Any], stages: Iterable[str],
             mutable: Iterable[str] = (), growable: Iterable[str] = ()) -> RunManifest:
        """The manifest at ``path``: created (all stages pending) when absent, else loaded and checked against
        ``kind``, ``settings`` and the stage plan (a mismatch raises :class:`ManifestError`).

        Settings in ``mutable`` (operational ones, e.g. a server address) may change on resume; settings in
        ``growable`` may change when the new plan extends the old one (its stages are appended, pending).
        """
        path = Path(path)
        settings = _jsonable(dict(settings))
        names = list(stages)
        if len(set(names)) != len(names):
            raise ValueError(f"RunManifest: repeated stage names in {names}")
        if not path.exists():
            m = cls(path, {"version": VERSION, "kind": kind, "settings": settings,
                           "stages": [cls._entry(n) for n in names]})
            m.save()
            return m
        m = cls.read(path)
        if m.data.get("kind") != kind:
            raise ManifestError(f"run manifest {str(path)!r} belongs to a {m.data.get('kind')!r} run, not {kind!r}")
        old = m.data["settings"]
        have = [st["name"] for st in m.data["stages"]]
        grown_by = {k for k in growable if old.get(k) != settings.get(k)}
        grows = len(names) > len(have) and names[:len(have)] == have and bool(grown_by)
        allowed = set(mutable) | (set(growable) if grows else set())
        changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k) and k not in allowed)
        if changed:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in changed[:8])
            raise ManifestError(
                f"run manifest {str(path)!r} was written with other settings ({detail}); resume with the same "
                "settings, or start the run in a new output_dir")
        if have != names and not grows:
            raise ManifestError(f"run manifest {str(path)!r} plans stages {have}, this run plans {names}")
        if grows or old != settings:
            m.data["stages"] += [cls._entry(n) for n in names[len(have):]]
            m.data["settings"] = settings
            m.save()
        return m

    @staticmethod
    def _entry(name: str) -> dict[str, Any]:
        return {"name": name, "status": "pending", "output": None, "inputs": {}, "metrics": {},
                "run": {"attempts": 0}}

    # -- access -----------------------------------------------------------------------------------------------
    def stage(self, name: str) -> dict[str, Any]:
        for st in self.data["stages"]:
            if st["name"] == name:
                return st
        raise KeyError(f"no stage {name!r} in {str(self.path)!r}")

    def status(self, name: str) -> str:
        return self.stage(name)["status"]

    def is_done(self, name: str) -> bool:
        return self.status(name) == "done"

    def output(self, name: str) -> Path:
        """The absolute output path of a finished stage."""
        st = self.stage(name)
        if st["status"] != "done" or st["output"] is None:
            raise ManifestError(f"stage {name!r} has no output yet (status {st['status']!r}) in {str(self.path)!r}")
        return self.path.parent / st["output"]

    # -- changes ----------------------------------------------------------------------------------------------
    def start(self, name: str, *, inputs: Mapping[str, Any] | None = None) -> None:
        st = self.stage(name)
        st["status"] = "running"
        st["inputs"] = _jsonable(dict(inputs or {}))
        st["run"]["attempts"] = int(st["run"].get("attempts", 0)) + 1
        st["run"].setdefault("started", time.time())
        self.save()

    def finish(self, name: str, *, output: str | Path | None, metrics: Mapping[str, Any], run: Mapping[str, Any]
               ) -> None:
        st = self.stage(name)
        if output is not None:
            out = Path(output)
            output = str(out.relative_to(self.path.parent)) if out.is_absolute() else str(out)
        st.update(status="done", output=output, metrics=_jsonable(dict(metrics)))
        st["run"].update(_jsonable(dict(run)), finished=time.time())
        self.save()

    def save(self) -> None:
        """Write atomically: a temp file beside the manifest, flushed, then renamed over it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh, indent=1, sort_keys=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def comparable(self) -> dict[str, Any]:
        """The manifest without the per-attempt ``run`` fields (what a resumed run must reproduce)."""
        return {**{k: v for k, v in self.data.items() if k != "stages"},
                "stages": [{k: v for k, v in st.items() if k != "run"} for st in self.data["stages"]]}


# ------------------------------------------------------------------------------------------ checkpoints
def _check_file(f: Path) -> str | None:
    """Why ``f`` is damaged, or None. Cheap checks only: headers and central directories, no full reads."""
    try:
        if f.suffix == ".json":
            json.loads(f.read_text(encoding="utf-8"))
        elif f.suffix == ".safetensors":
            with safe_open(str(f), "pt") as sf:  # validates the header against the file length
                sf.keys()
        elif f.suffix in (".pt", ".pth", ".bin"):
            if f.stat().st_size == 0:
                return "empty file"
            with zipfile.ZipFile(f) as zf:  # torch.save's zip format: a cut file has no central directory
                zf.namelist()
    except Exception as exc:  # noqa: BLE001 - any failure to read the header means damage
        return f"{type(exc).__name__}: {exc}"
    return None


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that was written completely, or None.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint without a complete one was cut off by a
    kill while saving: it is deleted (with a warning) and the previous one is used. A complete checkpoint
    whose files are damaged raises :class:`CheckpointError` naming the file (resuming from it would crash deep
    in torch, or silently load wrong weights).
    """
    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = []
    for p in out.iterdir():
        name, _, step = p.name.partition("-")
        if p.is_dir() and name == "checkpoint" and step.isdigit():
            found.append((int(step), p))
    for _step, ckpt in sorted(found, reverse=True):
        # trainer_state.json is written last: missing or cut short means the kill came while saving
        if _check_file(ckpt / "trainer_state.json") is not None or not (ckpt / "trainer_state.json").is_file():
            logger.warning("removing %s: a kill interrupted its saving (no complete trainer_state.json)", ckpt)
            shutil.rmtree(ckpt)
            continue
        for f in sorted(ckpt.rglob("*")):
            if f.is_file():
                why = _check_file(f)
                if why:
                    raise CheckpointError(
                        f"checkpoint file {str(f)!r} is damaged ({why}); delete {str(ckpt)!r} to resume from the "
                        "previous checkpoint")
        return ckpt
    return None
