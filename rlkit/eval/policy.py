"""Systems the retouching suites evaluate: baselines (identity, random valid program, expert) and policies.

A *system* turns a batch of :class:`Task` (image, instruction, expert program) into one text each. The suite
parses that text (any of the three program forms, auto-detected) and executes it, so baselines and policies
go through the same path. Policies come from a local/hub ``from_pretrained`` folder (transformers
generation, or vLLM when it is installed and CUDA is present) or an OpenAI-compatible endpoint (each
request with an overall deadline).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from peft import PeftModel
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    ProcessorMixin,
)

from rlkit.ops import PARAM_SPECS, EditProgram, render_program
from rlkit.policies import RETOUCHER_SYSTEM_PROMPT, load_processor, retoucher_prompt

logger = logging.getLogger("rlkit.eval")

__all__ = [
    "Task", "System", "IdentitySystem", "RandomProgramSystem", "ExpertSystem", "TransformersPolicy",
    "VLLMPolicy", "OpenAIPolicy", "load_system", "retoucher_messages", "BASELINES",
]


@dataclass
class Task:
    """One thing to retouch: the photo, the user's instruction, and the expert program when known."""

    id: str
    image: Image.Image
    instruction: str
    expert: EditProgram | None = None


@runtime_checkable
class System(Protocol):
    """What the retouching suites run: a name and ``generate(tasks) -> texts`` (one text per task)."""

    name: str

    def generate(self, tasks: Sequence[Task]) -> list[str]: ...


def retoucher_messages(instruction: str, system_prompt: str | None = None) -> list[dict[str, Any]]:
    """The RetouchIQ policy's chat prompt (the one rlkit's recipes train with): system, [image, instruction]."""
    return retoucher_prompt(instruction, system_prompt=RETOUCHER_SYSTEM_PROMPT if system_prompt is None
                            else (system_prompt or None))


def _seed_of(*key: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")


class IdentitySystem:
    """No edit: the program ``{}``. Its output is the input photo (the "null policy" row)."""

    name = "identity"

    def generate(self, tasks: Sequence[Task]) -> list[str]:
        return ["{}" for _ in tasks]


class ExpertSystem:
    """The expert's own program (the upper bound: L1 = L2 = 0 where the expert image is its rendering)."""

    name = "expert"

    def generate(self, tasks: Sequence[Task]) -> list[str]:
        missing = [t.id for t in tasks if t.expert is None]
        if missing:
            raise ValueError(f"expert baseline: sample(s) {missing[:5]} have no expert program")
        return [render_program(t.expert, "retouchiq") for t in tasks]


class RandomProgramSystem:
    """A random valid program per sample: 1-3 global sliders, each uniform over half its documented range
    around the default, seeded by (seed, sample id) so every process and every rerun draws the same."""

    name = "random"

    def __init__(self, seed: int = 0, *, spread: float = 0.5) -> None:
        self.seed, self.spread = seed, spread
        self._names = sorted(k for k, s in PARAM_SPECS.items() if s.group == "basic")

    def program(self, task_id: str) -> EditProgram:
        rng = random.Random(_seed_of("random-program", self.seed, task_id))
        params = {}
        for k in rng.sample(self._names, rng.randint(1, 3)):
            s = PARAM_SPECS[k]
            half = self.spread * (s.hi - s.lo) / 2
            v = min(s.hi, max(s.lo, s.default + rng.uniform(-half, half)))
            params[k] = round(v, 2)
        return EditProgram(params)

    def generate(self, tasks: Sequence[Task]) -> list[str]:
        return [render_program(self.program(t.id), "retouchiq") for t in tasks]


BASELINES: dict[str, Callable[[], System]] = {
    "identity": IdentitySystem, "random": RandomProgramSystem, "expert": ExpertSystem,
}


# ---------------------------------------------------------------------------------------------- transformers
def _is_adapter(path: Path) -> bool:
    return (path / "adapter_config.json").is_file()


class TransformersPolicy:
    """A policy folder or hub id (full model, or a LoRA adapter on its base) with batched greedy generation.

    Batches are left-padded; ``temperature=0`` (default) is greedy, so a rerun gives the same texts.
    """

    def __init__(self, path: str | Path, *, name: str | None = None, batch_size: int = 8,
                 max_new_tokens: int = 256, temperature: float = 0.0, device: str | None = None,
                 dtype: torch.dtype | str | None = None, system_prompt: str | None = None) -> None:
        p = Path(path)
        self.path = str(path)
        self.name = name or (p.name if p.name else str(path))
        base = self.path
        if p.is_dir() and _is_adapter(p):
            base = json.loads((p / "adapter_config.json").read_text())["base_model_name_or_path"]
        config = AutoConfig.from_pretrained(base)
        self.vision = hasattr(config, "vision_config")
        auto = AutoModelForImageTextToText if self.vision else AutoModelForCausalLM
        kwargs = {"dtype": dtype} if dtype is not None else {}
        model = auto.from_pretrained(base, **kwargs)
        if p.is_dir() and _is_adapter(p):
            model = PeftModel.from_pretrained(model, self.path).merge_and_unload()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        if self.vision:
            self.processor = load_processor(base) if Path(base).is_dir() else _hub_processor(base)
        else:
            self.processor = AutoTokenizer.from_pretrained(base)
        self.batch_size, self.max_new_tokens, self.temperature = batch_size, max_new_tokens, temperature
        self.system_prompt = system_prompt

    def generate(self, tasks: Sequence[Task]) -> list[str]:
        tok = getattr(self.processor, "tokenizer", self.processor)
        out: list[str] = []
        old = tok.padding_side
        tok.padding_side = "left"
        try:
            for start in range(0, len(tasks), self.batch_size):
                chunk = tasks[start:start + self.batch_size]
                msgs = [retoucher_messages(t.instruction, self.system_prompt) for t in chunk]
                if not self.vision:  # a text-only policy sees the instruction only
                    msgs = [[{**m, "content": [b for b in m["content"] if b.get("type") != "image"]}
                             for m in ms] for ms in msgs]
                texts = [self.processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
                         for m in msgs]
                kw: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
                if self.vision:
                    kw["images"] = [[t.image] for t in chunk]
                inputs = self.processor(**kw).to(self.device)
                gen: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.temperature > 0,
                                       "pad_token_id": tok.pad_token_id}
                if self.temperature > 0:
                    gen["temperature"] = self.temperature
                with torch.no_grad():
                    ids = self.model.generate(**inputs, **gen)
                out += [t.strip() for t in tok.batch_decode(ids[:, inputs["input_ids"].shape[1]:],
                                                            skip_special_tokens=True)]
        finally:
            tok.padding_side = old
        return out


def _hub_processor(model_id: str) -> ProcessorMixin:
    # GPU machines have torchvision: the full processor loads there
    return AutoProcessor.from_pretrained(model_id)


# ---------------------------------------------------------------------------------------------- vLLM
def vllm_usable() -> tuple[bool, str]:
    """(usable, why not): vLLM generation needs the ``vllm`` package and a CUDA device."""
    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed (pip install 'rlkit[vllm]' on a CUDA machine)"
    if not torch.cuda.is_available():
        return False, "vLLM generation needs a CUDA GPU; none is visible"
    return True, ""


def _data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _openai_messages(task: Task, system_prompt: str | None) -> list[dict[str, Any]]:
    """The policy prompt with the photo as an ``image_url`` data URL (OpenAI / vLLM chat format)."""
    out = []
    for m in retoucher_messages(task.instruction, system_prompt):
        content = m["content"]
        if isinstance(content, list):
            content = [{"type": "image_url", "image_url": {"url": _data_url(task.image)}}
                       if b.get("type") == "image" else b for b in content]
        out.append({"role": m["role"], "content": content})
    return out


class VLLMPolicy:
    """A policy served in-process by vLLM (GPU only): ``LLM.chat`` over the batch, greedy by default."""

    def __init__(self, path: str | Path, *, name: str | None = None, max_new_tokens: int = 256,
                 temperature: float = 0.0, system_prompt: str | None = None, **llm_kwargs: Any) -> None:
        ok, why = vllm_usable()
        if not ok:
            raise RuntimeError(f"VLLMPolicy: {why}")
        from vllm import LLM, SamplingParams  # deferred: GPU-only optional dependency

        self.name = name or Path(str(path)).name
        self.llm = LLM(model=str(path), limit_mm_per_prompt={"image": 1}, **llm_kwargs)
        self.params = SamplingParams(temperature=temperature, max_tokens=max_new_tokens)
        self.system_prompt = system_prompt

    def generate(self, tasks: Sequence[Task]) -> list[str]:
        convs = [_openai_messages(t, self.system_prompt) for t in tasks]
        outs = self.llm.chat(convs, self.params, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outs]


# ---------------------------------------------------------------------------------------------- endpoint
class OpenAIPolicy:
    """A policy behind an OpenAI-compatible ``/v1/chat/completions`` endpoint (``vllm serve``, an API).

    Each request has an overall ``deadline`` in seconds covering every retry (connection errors, 429, 5xx,
    malformed bodies are retried while time is left). A request that fails returns an empty text, so the
    sample counts as an invalid program, and the reason is logged and kept in ``errors``.
    """

    def __init__(self, base_url: str, model: str, *, name: str | None = None, api_key: str | None = None,
                 deadline: float = 120.0, max_new_tokens: int = 256, temperature: float = 0.0,
                 concurrency: int = 8, system_prompt: str | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"OpenAIPolicy: base_url must start with http:// or https://, got {base_url!r}")
        if deadline <= 0 or concurrency < 1:
            raise ValueError(f"OpenAIPolicy: need deadline > 0 and concurrency >= 1 (got {deadline}, {concurrency})")
        base = base_url.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.model, self.api_key, self.name = model, api_key, name or model
        self.deadline, self.max_new_tokens, self.temperature = float(deadline), max_new_tokens, temperature
        self.concurrency, self.system_prompt = concurrency, system_prompt
        self.errors: dict[str, str] = {}

    def _post(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        end = time.monotonic() + self.deadline
        attempt, last = 0, "no attempt"
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from {self.url} within the {self.deadline:g}s deadline ({last})")
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=left) as resp:
                    obj = json.loads(resp.read())
                content = obj["choices"][0]["message"]["content"]
                if isinstance(content, list):
                    content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
                if isinstance(content, str):
                    return content
                last = f"content is {type(content).__name__}, not text"
            except urllib.error.HTTPError as exc:
                if exc.code != 429 and exc.code < 500:
                    raise RuntimeError(f"HTTP {exc.code} from {self.url}: {exc.reason}") from None
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (ValueError, KeyError, IndexError, TypeError):
                last = "malformed response"
            attempt += 1
            time.sleep(min(0.25 * 2 ** attempt, 4.0, max(0.0, end - time.monotonic())))

    def _one(self, task: Task) -> str:
        body = json.dumps({"model": self.model, "messages": _openai_messages(task, self.system_prompt),
                           "max_tokens": self.max_new_tokens, "temperature": self.temperature}).encode()
        try:
            return self._post(body).strip()
        except (RuntimeError, TimeoutError) as exc:
            self.errors[task.id] = str(exc)
            logger.warning("policy %s: sample %s: %s", self.name, task.id, exc)
            return ""

    def generate(self, tasks: Sequence[Task]) -> list[str]:
        if not tasks:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(tasks))) as pool:
            return list(pool.map(self._one, tasks))


def load_system(spec: str, **kwargs: Any) -> System:
    """A system from a command-line spec: a baseline name (``identity``, ``random``, ``expert``), ``PATH`` (a
    ``from_pretrained`` folder or hub id: vLLM when it is installed and CUDA is present, else transformers;
    ``hf:PATH`` forces transformers, ``vllm:PATH`` vLLM), or ``openai:MODEL@URL`` for an endpoint; any of them
    as ``NAME=SPEC`` to name the row."""
    name = None
    if "=" in spec and not spec.startswith(("openai:", "http")):
        name, spec = spec.split("=", 1)
    if spec in BASELINES:
        sys_ = BASELINES[spec]()
        if name:
            sys_.name = name
        return sys_
    if spec.startswith("openai:"):
        model, sep, url = spec[len("openai:"):].partition("@")
        if not sep or not model or not url:
            raise ValueError(f"policy spec {spec!r}: expected openai:MODEL@http://host:port/v1")
        keep = {k: v for k, v in kwargs.items() if k in ("deadline", "max_new_tokens", "temperature", "api_key",
                                                         "system_prompt")}
        return OpenAIPolicy(url, model, name=name, **keep)
    keep = {k: v for k, v in kwargs.items() if k in ("max_new_tokens", "temperature", "system_prompt")}
    if spec.startswith("vllm:"):
        return VLLMPolicy(spec[len("vllm:"):], name=name, **keep)
    forced = spec.startswith("hf:")
    spec = spec[len("hf:"):] if forced else spec
    if not forced and vllm_usable()[0] and not (Path(spec) / "adapter_config.json").is_file():
        return VLLMPolicy(spec, name=name or Path(spec).name, **keep)  # vLLM when installed and CUDA is present
    keep.update({k: v for k, v in kwargs.items() if k in ("batch_size", "device")})
    return TransformersPolicy(spec, name=name, **keep)
