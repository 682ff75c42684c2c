"""Check that two versions of rlkit's engine render bit for bit the same (``torch.equal``) on many programs.

Used when the engine's code is reorganised without meaning to change a single output bit. Three steps, the
render step run once per version of the tree (``PYTHONPATH`` picks which ``rlkit`` is imported)::

    python scripts/check_engine_bitwise.py programs -o /tmp/progs.json            # once, from either tree
    PYTHONPATH=/path/to/old python scripts/check_engine_bitwise.py render /tmp/progs.json -o /tmp/old.pt
    PYTHONPATH=/path/to/new python scripts/check_engine_bitwise.py render /tmp/progs.json -o /tmp/new.pt
    python scripts/check_engine_bitwise.py compare /tmp/old.pt /tmp/new.pt

Programs: the random programs of ``tests/ops/test_engine.py``'s hypothesis strategy (derandomised), seeded
weak variants of them from ``rlkit.data.perturb_program``, and every slider at once with each mask type.
Renders: per-image programs in batches of four on a photo and on noise (eager, grouped and whole-batch),
``apply_params`` with gradients (outputs and gradients), the planar (compile-form) render eagerly, and a few
programs under ``compile=True`` (``--compiled N``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _strategy_programs(n: int) -> list[dict]:
    """``n`` programs drawn (deterministically) by the engine tests' hypothesis strategy, as dicts."""
    from hypothesis import HealthCheck, given, settings

    spec = importlib.util.spec_from_file_location("_engine_tests", ROOT / "tests" / "ops" / "test_engine.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out: list[dict] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(mod._programs())
    def collect(p):
        out.append(p.to_dict())

    collect()
    return out


def _mask_programs() -> list[dict]:
    """Every slider moved part way (both directions) under each mask type, with curves on all channels."""
    from rlkit.ops import PARAM_SPECS

    def every(frac: float) -> dict:
        return {k: s.default + abs(frac) * ((s.hi if frac > 0 else s.lo) - s.default) for k, s in PARAM_SPECS.items()}

    masks = [
        {"type": "radial", "cx": 0.4, "cy": 0.5, "rx": 0.3, "ry": 0.2, "angle": 20, "feather": 50},
        {"type": "linear", "x0": 0, "y0": 0, "x1": 0.2, "y1": 0.6},
        {"type": "brush", "disks": [[0.3, 0.3, 0.1], [0.6, 0.5, 0.2]], "feather": 40},
        {"type": "tensor", "data": [[0.0, 0.5, 1.0], [1.0, 0.25, 0.0]]},
        {"type": "luminance_range", "lo": 0.3, "hi": 0.7, "feather": 0.1},
        {"type": "color_range", "hue": 30, "width": 40, "feather": 20},
        {"type": "composite", "parts": [["add", {"type": "radial", "cx": 0.5, "cy": 0.5, "rx": 0.3, "ry": 0.3}],
                                        ["subtract", {"type": "color_range", "hue": 200}]]},
    ]
    curves = {"master": [[0, 10], [64, 50], [128, 140], [255, 245]], "red": [[0, 0], [100, 110], [255, 255]],
              "blue": [[0, 5], [200, 190], [255, 250]]}
    out = []
    for i, m in enumerate(masks):
        frac = (0.15, -0.2, 0.3, -0.3, 0.25, -0.1, 0.35)[i]
        d = every(frac)
        d["local"] = [{"mask": m, "params": {"exposure": 0.6, "temperature": -25, "clarity": 30, "shadows": 20,
                                             "noise_reduction": 30, "sharpening": 40}}]
        if i % 2:
            d["tone_curve"] = curves
        out.append(d)
    out.append({"exposure": 0.7, "temperature": 20, "tint": -10})                      # fused LUT path
    out.append({"exposure": -1.3, "tone_curve": curves})                               # fused LUT with curves
    out.append({"contrast": 30, "grain_amount": 40, "grain_size": 60, "tone_curve": curves})  # tail LUT + grain
    return out


def cmd_programs(args: argparse.Namespace) -> None:
    from rlkit.data import perturb_program
    from rlkit.ops import EditProgram

    progs = _strategy_programs(args.n) + _mask_programs()
    strong = [EditProgram.from_dict(p) for p in progs if not EditProgram.from_dict(p).is_identity()]
    progs += [perturb_program(strong[i % len(strong)], seed=i).to_dict() for i in range(args.n_perturbed)]
    Path(args.output).write_text(json.dumps(progs))
    print(f"wrote {len(progs)} programs to {args.output}")


def _images(h: int, w: int) -> dict[str, torch.Tensor]:
    from PIL import Image

    from rlkit.data.photos import load_photo
    from rlkit.ops import to_tensor

    photo = to_tensor(load_photo("astronaut").resize((w, h), Image.LANCZOS))
    noise = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(11))
    return {"photo": photo, "noise": noise}


def cmd_render(args: argparse.Namespace) -> None:
    import rlkit.ops as ops
    from rlkit.ops import EditProgram, apply_params, apply_program

    torch.manual_seed(0)
    progs = [EditProgram.from_dict(d) for d in json.loads(Path(args.programs).read_text())]
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, img in _images(40, 48).items():
            for b in range(0, len(progs), 4):
                chunk = progs[b:b + 4]
                x = img.expand(len(chunk), -1, -1, -1).contiguous()
                out[f"{name}/batch{b}"] = apply_program(x, chunk, seed=list(range(b, b + len(chunk))))
            for i in range(0, len(progs), 7):  # single images, a different batch shape
                out[f"{name}/single{i}"] = apply_program(img, progs[i], seed=i)
    # a 600x520 render crosses the eager path's group size (several groups of images) and the downsampled blurs
    big = torch.rand(3, 3, 600, 520, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for i in range(0, len(progs), max(1, len(progs) // 12)):
            out[f"big/{i}"] = apply_program(big, progs[i], seed=1)
    # gradients through apply_params (the stage-by-stage path with autograd)
    x = _images(24, 32)["photo"].expand(2, -1, -1, -1).contiguous() * 0.9
    for i in range(0, len(progs), max(1, len(progs) // 20)):
        p = progs[i]
        vals = {k: torch.tensor(float(v), requires_grad=True) for k, v in p.params.items()
                if k not in ("sharpen_radius", "grain_size")}
        vals.update({k: float(v) for k, v in p.params.items() if k in ("sharpen_radius", "grain_size")})
        y = apply_params(x, vals, curves=p.curves, local=p.local, seed=2)
        out[f"grad/{i}/out"] = y.detach()
        leaves = [v for v in vals.values() if isinstance(v, torch.Tensor)]
        if leaves:
            grads = torch.autograd.grad(y.square().mean(), leaves, allow_unused=True)
            for (k, _), g in zip([(k, v) for k, v in vals.items() if isinstance(v, torch.Tensor)], grads):
                out[f"grad/{i}/{k}"] = g if g is not None else torch.tensor(float("nan"))
    # the planar form of the pipeline (what torch.compile runs), evaluated eagerly
    # (the stage driver is found by what it is, wherever the version under test defines and imports it)
    render = getattr(sys.modules.get("rlkit.ops.pipeline"), "render", None) or sys.modules["rlkit.ops.engine"]._render
    mods = [(m, k) for name, m in list(sys.modules.items()) if name.startswith("rlkit.ops") and m is not None
            for k in ("_render", "render") if getattr(m, k, None) is render]
    for m, k in mods:
        setattr(m, k, functools.partial(render, planar=True))
    try:
        with torch.no_grad():
            img = _images(40, 48)["photo"]
            for i in range(0, len(progs), 5):
                out[f"planar/{i}"] = apply_program(img, progs[i], seed=i)
    finally:
        for m, k in mods:
            setattr(m, k, render)
    with torch.no_grad():
        for i in range(args.compiled):
            p = progs[(i * 37) % len(progs)]
            out[f"compiled/{i}"] = apply_program(_images(40, 48)["noise"], p, compile=True)
    if args.compiled:
        cache = getattr(sys.modules.get("rlkit.ops.compiled"), "_COMPILED", None) \
            or sys.modules["rlkit.ops.engine"]._COMPILED
        failed = sorted(k for k, v in cache.items() if v is False)
        print(f"compiled graphs: {sorted(cache)}; fell back to eager: {failed or 'none'}")
    torch.save(out, args.output)
    print(f"{ops.__file__}: wrote {len(out)} tensors to {args.output}")


def cmd_compare(args: argparse.Namespace) -> int:
    a, b = torch.load(args.a), torch.load(args.b)
    if set(a) != set(b):
        print(f"different keys: {sorted(set(a) ^ set(b))[:10]}")
        return 1
    bad = [k for k in a if not (a[k].shape == b[k].shape and a[k].dtype == b[k].dtype
                                and (torch.equal(a[k], b[k]) or (a[k].isnan() == b[k].isnan()).all()
                                     and torch.equal(a[k].nan_to_num(), b[k].nan_to_num())))]
    n_el = sum(t.numel() for t in a.values())
    print(f"{len(a)} tensors ({n_el} values) compared with torch.equal: {len(bad)} differ")
    for k in bad[:20]:
        print(f"  {k}: max |diff| {float((a[k] - b[k]).abs().nan_to_num().max()):.3g}")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("programs", help="write the program set as JSON")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--n", type=int, default=300, help="programs from the tests' hypothesis strategy")
    p.add_argument("--n-perturbed", type=int, default=100, help="perturb_program variants")
    r = sub.add_parser("render", help="render every program with the rlkit on PYTHONPATH")
    r.add_argument("programs")
    r.add_argument("-o", "--output", required=True)
    r.add_argument("--compiled", type=int, default=0, help="also render N programs with compile=True")
    c = sub.add_parser("compare", help="compare two render files with torch.equal")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args()
    if args.cmd == "programs":
        cmd_programs(args)
    elif args.cmd == "render":
        cmd_render(args)
    else:
        return cmd_compare(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
