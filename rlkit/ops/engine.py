"""The retouch engine's entry points: apply edit programs (or raw slider values) to batches of sRGB images.

:func:`apply_program` and :func:`apply_params` check their inputs, turn programs into per-image slider
values, local offset maps (:mod:`rlkit.ops.local`) and point-curve tables, and pick one of the ways to
compute the same function:

- eager, stage by stage: :func:`rlkit.ops.pipeline.render` (the order) over :mod:`rlkit.ops.stages` (every
  stage formula);
- a fused 1-D lookup when the whole program is a per-channel map of the value (:mod:`rlkit.ops.fused`);
- ``compile=True``: the pipeline under torch.compile, or a closed form for exposure / white balance alone
  (:mod:`rlkit.ops.compiled`).

Grain, which needs the seeds, runs after the render. Neither fused path is used while autograd records, so
:func:`apply_params` with tensors that require grad gives gradients of the stage formulas themselves.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Mapping, Sequence

import torch

from . import compiled, fused, pipeline, stages
from .errors import ProgramError
from .local import LocalAdjustment, local_maps
from .lut import LUT_SIZE, curve_lut, lut_lerp
from .params import CURVE_CHANNELS, LOCAL_PARAMS, PARAM_SPECS
from .profiles import Profile
from .program import EditProgram
from .stages import STRUCTURAL_PARAMS, Params

__all__ = ["apply_program", "apply_params"]


def _check_images(images: object, where: str = "apply_program") -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{where}: images must be a torch.Tensor (N,3,H,W) in [0,1], got {type(images).__name__}; "
                        "use rlkit.ops.to_tensor for PIL images or arrays")
    if images.dim() == 3:
        raise ValueError(f"{where}: images must be (N,3,H,W); got a single (3,H,W) image, add a batch dim "
                         "with images[None]")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{where}: images must be (N,3,H,W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{where}: images must be float in [0,1], got dtype {images.dtype}; "
                         "divide uint8 images by 255 (or use rlkit.ops.to_tensor)")
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{where}: images must be non-empty, got shape {tuple(images.shape)}")
    return images


def _normalise_programs(programs: object, n: int) -> list[EditProgram]:
    if isinstance(programs, EditProgram):
        return [programs] * n
    if isinstance(programs, Mapping):
        return [EditProgram.from_dict(programs)] * n
    if isinstance(programs, (str, bytes)) or not isinstance(programs, Sequence):
        raise TypeError(f"apply_program: programs must be an EditProgram or a sequence of them, got "
                        f"{type(programs).__name__}")
    progs = list(programs)
    if len(progs) == 1:
        progs = progs * n
    if len(progs) != n:
        raise ValueError(f"apply_program: got {len(progs)} programs for a batch of {n} images; pass one program "
                         "(broadcast) or one per image")
    out = []
    for i, p in enumerate(progs):
        if isinstance(p, Mapping):
            p = EditProgram.from_dict(p)
        if not isinstance(p, EditProgram):
            raise TypeError(f"apply_program: programs[{i}] must be an EditProgram, got {type(p).__name__}")
        out.append(p)
    return out



def _seed_int(v: object, where: str) -> int:
    """An integer seed: Python, numpy or 0-d torch integers (``operator.index``); bools and floats are refused."""
    if isinstance(v, bool) or (isinstance(v, torch.Tensor) and v.dtype == torch.bool):
        raise TypeError(f"apply_program: {where} must be an integer, got {v!r}")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"apply_program: {where} must be an integer, got {type(v).__name__} {v!r}") from None


def _seeds(seed: int | Sequence[int] | None, n: int) -> list[int]:
    if seed is None:
        return [0] * n
    if isinstance(seed, (bool, float, str, bytes)):
        raise TypeError(f"apply_program: seed must be an integer or a sequence of integers, got {seed!r}")
    try:
        return [_seed_int(seed, "seed")] * n  # int, numpy integer, 0-d integer array or tensor
    except TypeError:
        pass
    try:
        s = list(seed)
    except TypeError:
        raise TypeError(f"apply_program: seed must be an integer or a sequence of integers, got "
                        f"{type(seed).__name__}") from None
    if len(s) != n:
        raise ValueError(f"apply_program: got {len(s)} seeds for a batch of {n} images")
    return [_seed_int(v, f"seed[{i}]") for i, v in enumerate(s)]


def apply_params(images: torch.Tensor, params: Mapping[str, torch.Tensor | float], *,
                 curves: Mapping[str, Sequence[tuple[float, float]]] | None = None,
                 local: Sequence[LocalAdjustment] | None = None, seed: int | Sequence[int] | None = None,
                 compile: bool = False, profile: Profile | None = None) -> torch.Tensor:
    """Apply sliders given as floats or tensors (scalar or (N,)) to a batch; differentiable in tensor values.

    Unlike :class:`EditProgram`, values are not range-checked beyond being finite, so gradient-based
    searches can move freely (each op clamps internally where it must). The sliders that size a blur kernel or
    pick a formula (:data:`~rlkit.ops.stages.STRUCTURAL_PARAMS`: ``sharpen_radius``, ``grain_size``,
    ``vignette_style``, ...) get no gradient (a warning says so when one is passed with ``requires_grad``).
    ``profile`` applies a Lightroom profile (:class:`~rlkit.ops.profiles.Profile`) to every image.
    """
    images = _check_images(images, "apply_params")
    n = images.shape[0]
    x = images.float()
    values: dict[str, torch.Tensor] = {}
    for k, v in params.items():
        if k not in PARAM_SPECS:
            raise ProgramError(f"apply_params: unknown parameter {k!r}")
        t = torch.as_tensor(v, dtype=torch.float32, device=x.device)
        if t.dim() == 0:
            t = t.expand(n)
        if t.shape != (n,):
            raise ValueError(f"apply_params: '{k}' must be a scalar or shape ({n},), got {tuple(t.shape)}")
        if not torch.isfinite(t.detach()).all():
            raise ProgramError(f"apply_params: '{k}' has non-finite values")
        if k in STRUCTURAL_PARAMS and t.requires_grad and torch.is_grad_enabled():
            warnings.warn(f"apply_params: '{k}' sets a blur kernel size or picks a formula and gets no gradient",
                          stacklevel=2)
        if not t.requires_grad and bool((t == PARAM_SPECS[k].default).all()):
            continue
        values[k] = t.reshape(n, 1, 1, 1)
    progs_local = [list(local or [])] * n  # one shared list: masks are rendered once
    prog_curves = [EditProgram(curves=dict(curves or {})).curves] * n
    return _run(images, x, values, progs_local, prog_curves, _seeds(seed, n), compile, [profile] * n)


def _curve_luts(x: torch.Tensor, curves: list[dict]) -> torch.Tensor | None:
    """(N, 4, LUT_SIZE) tables of the master / R / G / B point curves per image (identity where absent)."""
    if not any(curves):
        return None
    if not bool(torch.isfinite(x).all()):  # NaN/inf have no place on a lookup table: say so (not a gather error)
        raise ValueError("apply_program: images contain NaN or inf values; point tone curves need finite "
                         "inputs (check the image source, or torch.nan_to_num the batch)")
    ident = torch.linspace(0.0, 1.0, LUT_SIZE)
    rows = []
    for c in curves:
        rows.append(torch.stack([curve_lut(c[ch]) if ch in c else ident for ch in CURVE_CHANNELS]))
    return torch.stack(rows).to(x.device)


def _run(images: torch.Tensor, x: torch.Tensor, values: dict[str, torch.Tensor],
         locals_: list[list[LocalAdjustment]], curves: list[dict], seeds: list[int], compile: bool,
         profiles: list[Profile | None] | None = None) -> torch.Tensor:
    """Render ``x`` with per-image slider ``values``, local adjustments, curves and profiles; returns ``images``'
    dtype. Programs with a profile render eagerly (its table lookups are not compiled)."""
    n = x.shape[0]
    local = local_maps(x, locals_) if any(locals_) else {}
    for name in local:
        if name not in LOCAL_PARAMS:  # pragma: no cover - guarded by LocalAdjustment
            raise ProgramError(f"local parameter {name!r} is not supported")
    luts = _curve_luts(x, curves)
    P = Params(n, x.device, values, local, profiles)
    compile = compile and P.profiles is None
    fuse = fused.pays_off(x.device)
    # small images render stage by stage: building the tables would cost more than it saves
    big = fused.worth_tables(x.shape[-2] * x.shape[-1], curves=luts is not None)
    closed_form = fuse and compile and luts is None and fused.fusible(None, P, luts)
    tables = (fused.tables(P, luts, x.device)
              if fuse and big and not closed_form and fused.fusible(x, P, luts) else None)
    if closed_form:
        out = compiled.gain_only(x, P)
    elif tables is not None:
        out = compiled.call("lut", lut_lerp, x, *tables) if compile else lut_lerp(x, *tables)
    else:
        # the tail LUT approximates encode's derivative piecewise: only where no gradient is recorded
        grad = torch.is_grad_enabled() and (x.requires_grad or any(v.requires_grad for v in values.values())
                                            or any(v.requires_grad for v in local.values()))
        tail = fused.tail_tables(luts) if fuse and big and luts is not None and not grad else None
        if compile:
            out = compiled.render(x, P, luts, tail, grad)
        else:
            out = pipeline.render(x, P, luts, tail) if grad else pipeline.render_in_groups(x, P, luts, tail)
    if P.active("grain_amount"):
        out = stages.grain(out, P, seeds).clamp(0.0, 1.0)
    return out.to(images.dtype)


def apply_program(images: torch.Tensor, programs: EditProgram | Sequence[EditProgram], *,
                  seed: int | Sequence[int] | None = None, compile: bool = False) -> torch.Tensor:
    """Apply one program (broadcast) or one per image to ``images`` (N,3,H,W) float sRGB in [0,1].

    Returns a tensor of the same shape, dtype and device, in [0,1]. ``seed`` seeds the grain (an int for the
    whole batch, or one per image; None means 0, so results are deterministic). ``compile=True`` fuses the
    pipeline with ``torch.compile`` (falls back to eager if compiling fails). Half-precision inputs are
    processed in float32 and returned in their dtype.
    """
    images = _check_images(images)
    n = images.shape[0]
    progs = _normalise_programs(programs, n)
    if all(p.is_identity() for p in progs):
        return images.clone()
    x = images.float()
    names = sorted({k for p in progs for k in p.params})
    values = {
        k: torch.tensor([p.get(k) for p in progs], dtype=torch.float32).to(x.device).view(n, 1, 1, 1)
        for k in names
    }
    return _run(images, x, values, [p.local for p in progs], [p.curves for p in progs], _seeds(seed, n), compile,
                [p.profile for p in progs])
