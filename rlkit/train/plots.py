"""PNG figures of a training run: the reward curve and a before/after grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

matplotlib.use("Agg")  # figures are written to files; no display is needed (or present on a training node)

__all__ = ["reward_history", "save_reward_curve", "save_image_grid"]


def reward_history(log_history: Sequence[Mapping[str, float]], key: str = "reward") -> tuple[list[int], list[float]]:
    """(steps, values) of ``key`` in a trainer's ``state.log_history``."""
    steps, values = [], []
    for entry in log_history:
        if key in entry and "step" in entry:
            steps.append(int(entry["step"]))
            values.append(float(entry[key]))
    return steps, values


def save_reward_curve(path: str | Path, steps: Sequence[int], rewards: Sequence[float], *,
                      hlines: Mapping[str, float] | None = None, title: str = "GRPO training reward",
                      window: int = 5) -> Path:
    """Plot per-step reward (and its moving average) with optional labelled horizontal reference lines."""
    if len(steps) != len(rewards):
        raise ValueError(f"save_reward_curve: {len(steps)} steps for {len(rewards)} rewards")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, rewards, color="tab:blue", alpha=0.35, lw=1, label="train reward (per step)")
    if len(rewards) >= window:
        avg = [sum(rewards[i - window + 1:i + 1]) / window for i in range(window - 1, len(rewards))]
        ax.plot(steps[window - 1:], avg, color="tab:blue", lw=2, label=f"train reward ({window}-step mean)")
    colors = ["tab:orange", "tab:green", "tab:red", "tab:purple"]
    for (label, value), c in zip((hlines or {}).items(), colors):
        ax.axhline(value, ls="--", color=c, lw=1.5, label=f"{label}: {value:.3f}")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("reward")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def save_image_grid(path: str | Path, rows: Sequence[Sequence[Image.Image | np.ndarray]], *,
                    column_titles: Sequence[str], row_titles: Sequence[str] | None = None, captions: Sequence[Sequence[str]] | None = None,
                    cell: int = 128) -> Path:
    """A labelled grid of PIL images (rows x columns), each cell resized to ``cell`` pixels, with an optional
    caption under each image (e.g. the program text and its score)."""
    if not rows:
        raise ValueError("save_image_grid: no rows")
    ncols = len(column_titles)
    for i, r in enumerate(rows):
        if len(r) != ncols:
            raise ValueError(f"save_image_grid: row {i} has {len(r)} images for {ncols} column titles")
    if captions is not None and (len(captions) != len(rows) or any(len(c) != ncols for c in captions)):
        raise ValueError("save_image_grid: captions must give one string per image")
    scale = cell / 100
    lines = max((c.count("\n") + 1 for row in captions or [] for c in row), default=0)
    height = scale * 1.15 + lines * 0.16
    fig, axes = plt.subplots(len(rows), ncols, figsize=(ncols * scale * 1.1, len(rows) * height),
                             dpi=100, squeeze=False)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            ax = axes[i][j]
            ax.imshow(im.resize((cell, cell), resample=0) if hasattr(im, "resize") else im)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(column_titles[j], fontsize=9)
            if j == 0 and row_titles:
                ax.set_ylabel(row_titles[i], fontsize=8)
            if captions is not None:
                ax.set_xlabel(captions[i][j], fontsize=7, family="monospace")
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    """Lay out ``fig``, write it to ``path`` (parent folders made) and close it."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
