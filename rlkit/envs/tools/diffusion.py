"""Diffusers-backed local tools: mask-based inpainting and instruction editing (the papers' action toolkits).

Agentic Retoucher's action agent repaints flaw masks with SD-inpainting or Flux-Fill; EditRefiner's
re-edits the image with an instruction-editing model under a mask. Both tools here take a pipeline
object or load one with ``from_pretrained(path_or_id, device=..., dtype=...)`` (nothing is downloaded
unless the caller passes a hub id and allows it), run it at a size the pipeline accepts, resize the
result back, and by default keep every pixel outside the mask exactly as it was (``composite=True``)
so a local fix cannot drift the rest of the image. Seeds make calls reproducible.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import diffusers  # a lazy module: the pipeline classes load when load_pipeline first asks for one
import numpy as np
import torch
from PIL import Image
from typing_extensions import TypedDict, Unpack

from rlkit.envs._images import ImageArray, mask_to_tensor, resize, to_chw, to_pil

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from typing_extensions import Self

#: a diffusers pipeline, or any callable taking its keyword arguments (``prompt``, ``image``, ...)
Pipeline: TypeAlias = "DiffusionPipeline | Callable[..., object]"

__all__ = ["InpaintTool", "InstructionEditTool", "ToolError", "load_pipeline"]


class ToolError(RuntimeError):
    """A tool could not run (bad pipeline, bad arguments, pipeline failure); the message says which."""


def load_pipeline(
    path_or_id: str | Path,
    *,
    pipeline_class: str | type | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    **kwargs: Any,
) -> DiffusionPipeline:
    """Load a diffusers pipeline (class from ``model_index.json`` or ``pipeline_class``) onto ``device``."""
    if pipeline_class is None:
        cls = diffusers.DiffusionPipeline
    elif isinstance(pipeline_class, str):
        cls = getattr(diffusers, pipeline_class, None)
        if cls is None:
            raise ToolError(f"diffusers has no pipeline class {pipeline_class!r}")
    else:
        cls = pipeline_class
    try:
        pipe = cls.from_pretrained(str(path_or_id), dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:
        raise ToolError(f"could not load a diffusers pipeline from {str(path_or_id)!r}: {exc}") from exc
    pipe = pipe.to(device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


def _call_params(pipe: Pipeline) -> set[str] | None:
    """Names ``pipe.__call__`` accepts, or None when it takes **kwargs (anything goes)."""
    try:
        sig = inspect.signature(pipe.__call__ if not inspect.isfunction(pipe) else pipe)
    except (TypeError, ValueError):
        return None
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        names = set(params)
        names.discard("kwargs")
        return names | {"*"}
    return set(params)


def _size_multiple(pipe: Pipeline) -> int:
    factor = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    # Flux-family transformers pack 2x2 latent patches: sizes must be multiples of 2 * vae_scale_factor.
    if "Flux" in type(pipe).__name__ or "QwenImage" in type(pipe).__name__:
        factor *= 2
    return factor


def _round_size(h: int, w: int, multiple: int) -> tuple[int, int]:
    return max(multiple, round(h / multiple) * multiple), max(multiple, round(w / multiple) * multiple)


def _first_image(out: object) -> torch.Tensor:
    images = out.images if hasattr(out, "images") else out[0] if isinstance(out, tuple) else out
    if isinstance(images, np.ndarray):
        img = images[0] if images.ndim == 4 else images
        return to_chw(img.astype(np.float32), "pipeline output")
    if isinstance(images, torch.Tensor):
        return to_chw(images[0] if images.ndim == 4 else images, "pipeline output")
    if isinstance(images, list) and images:
        first = images[0]
        if isinstance(first, np.ndarray):
            return to_chw(first.astype(np.float32), "pipeline output")
        return to_chw(first, "pipeline output")
    if isinstance(images, Image.Image):
        return to_chw(images, "pipeline output")
    raise ToolError(f"the pipeline returned no image (got {type(out).__name__})")


class DiffusionToolSettings(TypedDict, total=False):
    """Settings every diffusers tool takes (see :class:`_DiffusionTool`)."""

    num_inference_steps: int
    guidance_scale: float | None
    seed: int | None
    composite: bool
    call_kwargs: Mapping[str, Any] | None


def _mask_image(m: torch.Tensor, width: int, height: int) -> Image.Image:
    """A 0/255 PIL mask of the (H, W) mask tensor at the pipeline's size (nearest: the mask stays binary)."""
    return Image.fromarray((m > 0.5).numpy().astype(np.uint8) * 255).resize((width, height), Image.NEAREST)


class _DiffusionTool:
    """Shared machinery: argument filtering, sizing, seeding, compositing."""

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        pipeline_class: str | type | None = None,
        load_kwargs: Mapping[str, Any] | None = None,
        **tool_kwargs: Any,
    ) -> Self:
        """Load the pipeline at ``path_or_id`` (class from its model_index.json, or ``pipeline_class``) and
        wrap it in this tool; ``tool_kwargs`` go to the tool's constructor."""
        pipe = load_pipeline(
            path_or_id, pipeline_class=pipeline_class, device=device, dtype=dtype, **dict(load_kwargs or {})
        )
        return cls(pipe, **tool_kwargs)

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        num_inference_steps: int = 20,
        guidance_scale: float | None = None,
        seed: int | None = None,
        composite: bool = True,
        call_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(pipeline):
            raise ToolError(f"pipeline must be a callable diffusers pipeline, got {type(pipeline).__name__}")
        if int(num_inference_steps) < 1:
            raise ToolError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        self.pipeline = pipeline
        self.num_inference_steps = int(num_inference_steps)
        self.guidance_scale = guidance_scale
        self.seed = seed
        self.composite = bool(composite)
        self.call_kwargs = dict(call_kwargs or {})
        self._params = _call_params(pipeline)
        unknown = [k for k in self.call_kwargs if not self._accepts(k)]
        if unknown:
            raise ToolError(f"{type(pipeline).__name__} does not take call_kwargs {unknown}")
        self.calls = 0

    def _accepts(self, name: str) -> bool:
        return self._params is None or name in self._params or "*" in self._params

    def _generator(self, seed: int | None) -> torch.Generator | None:
        seed = self.seed if seed is None else seed
        if seed is None:
            return None
        device = getattr(self.pipeline, "device", torch.device("cpu"))
        device = torch.device(device)
        gen = torch.Generator(device=device.type if device.type != "mps" else "cpu")
        return gen.manual_seed(int(seed))

    def _run(self, kwargs: dict[str, Any], seed: int | None) -> torch.Tensor:
        kwargs = dict(kwargs)
        kwargs["num_inference_steps"] = self.num_inference_steps
        if self.guidance_scale is not None:
            kwargs["guidance_scale"] = float(self.guidance_scale)
        gen = self._generator(seed)
        if gen is not None:
            kwargs["generator"] = gen
        kwargs["output_type"] = "np"
        kwargs.update(self.call_kwargs)
        kwargs = {k: v for k, v in kwargs.items() if self._accepts(k)}
        try:
            with torch.inference_mode():
                out = self.pipeline(**kwargs)
        except Exception as exc:  # a pipeline failure is reported with the tool that hit it
            raise ToolError(
                f"{type(self).__name__}: the pipeline {type(self.pipeline).__name__} failed: {exc}"
            ) from exc
        self.calls += 1
        return _first_image(out)

    @staticmethod
    def _finish(
        original: torch.Tensor, result: torch.Tensor, mask: torch.Tensor | None, composite: bool
    ) -> torch.Tensor:
        result = resize(result.to(device=original.device, dtype=original.dtype), tuple(original.shape[-2:]))
        if mask is None or not composite:
            return result
        m = mask.to(device=original.device, dtype=original.dtype)[None]
        return (m * result + (1.0 - m) * original).clamp(0.0, 1.0)


class InpaintTool(_DiffusionTool):
    """Repaint the masked part of an image with a diffusers inpainting pipeline (SD-inpaint, Flux-Fill, ...).

    ``tool(image, mask, prompt, seed=...)`` returns a (3, H, W) float tensor of the input's size; pixels
    outside the mask are unchanged when ``composite`` (default). An empty mask returns the image as is.
    """

    def __init__(self, pipeline: Pipeline, *, strength: float = 1.0, negative_prompt: str | None = None,
                 **settings: Unpack[DiffusionToolSettings]) -> None:
        super().__init__(pipeline, **settings)
        if not 0.0 < float(strength) <= 1.0:
            raise ToolError(f"strength must be in (0, 1], got {strength}")
        if self._params is not None and "mask_image" not in self._params:
            raise ToolError(
                f"{type(pipeline).__name__} takes no `mask_image`: it is not an inpainting pipeline "
                "(use StableDiffusionInpaintPipeline, FluxFillPipeline, or InstructionEditTool)"
            )
        self.strength = float(strength)
        self.negative_prompt = negative_prompt

    def __call__(self, image: ImageArray, mask: np.ndarray | torch.Tensor, prompt: str = "", *,
                 seed: int | None = None) -> torch.Tensor:
        """Inpaint ``mask`` (bool/0-1 (H, W), 1 = repaint) of ``image`` guided by ``prompt``."""
        original = to_chw(image, "InpaintTool image")
        h, w = original.shape[-2:]
        m = mask_to_tensor(mask, (h, w), "InpaintTool mask")
        if not bool((m > 0).any()):
            return original.clone()
        if not isinstance(prompt, str):
            raise ToolError(f"InpaintTool prompt must be a string, got {type(prompt).__name__}")
        ph, pw = _round_size(h, w, _size_multiple(self.pipeline))
        src = to_pil(resize(original, (ph, pw)))
        kwargs: dict[str, Any] = {
            "prompt": prompt,
            "image": src,
            "mask_image": _mask_image(m, pw, ph),
            "height": ph,
            "width": pw,
            "strength": self.strength,
        }
        if self.negative_prompt is not None:
            kwargs["negative_prompt"] = self.negative_prompt
        result = self._run(kwargs, seed)
        return self._finish(original, result, m, self.composite)


class InstructionEditTool(_DiffusionTool):
    """Edit an image by a text instruction with any diffusers image-editing pipeline the user gives.

    Works with pipelines called as ``pipe(prompt=..., image=...)`` (InstructPix2Pix, Qwen-Image-Edit,
    Flux-Kontext, ...). With a mask, it is passed as ``mask_image`` when the pipeline takes one, and the
    result is composited under the mask (EditRefiner's masked re-editing). ``source_mode="list"`` passes
    ``image=[source, current]`` for multi-image editors; ``prepare`` may rewrite the call kwargs.
    """

    def __init__(self, pipeline: Pipeline, *, source_mode: str = "ignore", resize_to_multiple: bool = True,
                 prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 **settings: Unpack[DiffusionToolSettings]) -> None:
        super().__init__(pipeline, **settings)
        if source_mode not in ("ignore", "list"):
            raise ToolError(f"source_mode must be 'ignore' or 'list', got {source_mode!r}")
        self.source_mode = source_mode
        self.resize_to_multiple = bool(resize_to_multiple)
        self.prepare = prepare

    def __call__(
        self,
        image: ImageArray,
        instruction: str,
        *,
        mask: np.ndarray | torch.Tensor | None = None,
        source: ImageArray | None = None,
        seed: int | None = None,
    ) -> torch.Tensor:
        """Apply ``instruction`` to ``image`` (optionally only under ``mask``); (3, H, W), same size."""
        if not isinstance(instruction, str) or not instruction.strip():
            raise ToolError("InstructionEditTool needs a non-empty instruction string")
        original = to_chw(image, "InstructionEditTool image")
        h, w = original.shape[-2:]
        m = None if mask is None else mask_to_tensor(mask, (h, w), "InstructionEditTool mask")
        if m is not None and not bool((m > 0).any()):
            return original.clone()
        ph, pw = _round_size(h, w, _size_multiple(self.pipeline)) if self.resize_to_multiple else (h, w)
        current = to_pil(resize(original, (ph, pw)))
        image_arg: Image.Image | list[Image.Image] = current
        if self.source_mode == "list" and source is not None:
            image_arg = [to_pil(resize(to_chw(source, "InstructionEditTool source"), (ph, pw))), current]
        kwargs: dict[str, Any] = {"prompt": instruction, "image": image_arg}
        if m is not None and self._params is not None and "mask_image" in self._params:
            kwargs["mask_image"] = _mask_image(m, pw, ph)
        if self.prepare is not None:
            kwargs = self.prepare(kwargs)
        result = self._run(kwargs, seed)
        return self._finish(original, result, m, self.composite)
