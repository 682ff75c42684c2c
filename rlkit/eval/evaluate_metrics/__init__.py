"""``evaluate`` metric modules of rlkit's metrics, loadable offline: ``evaluate.load(metric_path("rlkit_image"))``."""

from pathlib import Path

__all__ = ["EVALUATE_METRICS", "metric_path"]

EVALUATE_METRICS = ("rlkit_saliency", "rlkit_correlation", "rlkit_image", "rlkit_text")


def metric_path(name: str) -> str:
    """The folder of an ``evaluate`` metric module shipped with rlkit (pass it to ``evaluate.load``)."""
    if name not in EVALUATE_METRICS:
        raise ValueError(f"unknown rlkit evaluate metric {name!r}; choose from {EVALUATE_METRICS}")
    return str(Path(__file__).parent / name)
