"""Draw docs/images/architecture.png: rlkit's rooms as floors, each arrow a permitted import (from the
layering test's ALLOWED table, so the picture cannot drift from what the test enforces)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JOBS = {
    "metrics": "saliency, correlation,\nimage, text metrics",
    "ops": "engine, programs,\nparser, masks, XMP",
    "data": "schemas, loaders,\nsynthetic sets, photos",
    "policies": "agents: prompts, parsers,\nperception, evaluation, action",
    "rewards": "rollouts, rewards,\nthe trl bridge, GRM",
    "envs": "Gymnasium envs, executor,\ntool envs, diffusers tools",
    "loops": "refinement loops",
    "eval": "suites, runner, reports",
    "train": "trainers + configs,\nquickstart",
}


def main() -> Path:
    spec = importlib.util.spec_from_file_location("layering", ROOT / "tests" / "test_layering.py")
    layering = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layering)
    order = sorted(layering.ALLOWED, key=lambda r: len(layering.ALLOWED[r]))
    fig, ax = plt.subplots(figsize=(9, 9.5), dpi=110)
    pos = {room: (0.5, 0.06 + i * 0.105) for i, room in enumerate(order)}
    for room, (x, y) in pos.items():
        ax.add_patch(FancyBboxPatch((x - 0.16, y - 0.035), 0.32, 0.07, boxstyle="round,pad=0.01",
                                    fc="#e8f0fb", ec="#345", lw=1.2))
        ax.text(x, y + 0.012, room, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(x, y - 0.016, JOBS.get(room, ""), ha="center", va="center", fontsize=7)
    # one arrow to the room directly below (the rest are implied: every room may use all rooms below it)
    for upper, lower in zip(order[1:], order[:-1]):
        (x1, y1), (x2, y2) = pos[upper], pos[lower]
        ax.add_patch(FancyArrowPatch((x1, y1 - 0.037), (x2, y2 + 0.037), arrowstyle="-|>", mutation_scale=14,
                                     color="#345"))
    ax.text(0.5, 0.99, "rlkit: rooms import downwards only (tests/test_layering.py)", ha="center", va="top",
            fontsize=12, weight="bold")
    ax.text(0.86, 0.5, "testing\n(tiny models)\nimports anything;\nno production\nmodule imports it",
            ha="center", va="center", fontsize=8, bbox={"boxstyle": "round", "fc": "#fbeee8", "ec": "#a54"})
    ax.text(0.14, 0.5, "cli.py, info.py\n(entry points)\nimport anything", ha="center", va="center", fontsize=8,
            bbox={"boxstyle": "round", "fc": "#eefbe8", "ec": "#4a5"})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    out = ROOT / "docs" / "images" / "architecture.png"
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main())
