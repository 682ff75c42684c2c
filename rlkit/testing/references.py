"""Reference implementations that rlkit's metric tests and benchmarks compare against.

pysaliency 0.2.22 is the saliency reference, but its package ``__init__`` imports ``pkg_resources`` (gone in
setuptools >= 81) and its Judd-AUC wrapper calls ``np.trapz`` (gone in numpy 2). Its metric modules need
only numpy/numba, so they are loaded without the package ``__init__``, and the Judd ROC runs pysaliency's
own threshold construction and kernel with ``np.trapezoid``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np

__all__ = ["load_pysaliency", "pysaliency_auc_judd"]


def load_pysaliency() -> tuple[Any, Any]:
    """pysaliency's ``metrics`` and ``numba_utils`` modules; ImportError naming the install when absent."""
    try:
        # deferred: pysaliency is an optional reference for tests (not a dependency)
        import pysaliency.metrics as metrics
        import pysaliency.numba_utils as numba_utils

        return metrics, numba_utils
    except ImportError:
        pass
    spec = importlib.util.find_spec("pysaliency")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pysaliency is not installed: pip install -e '.[dev]'")
    for name in [n for n in sys.modules if n == "pysaliency" or n.startswith("pysaliency.")]:
        del sys.modules[name]
    pkg = types.ModuleType("pysaliency")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["pysaliency"] = pkg
    return importlib.import_module("pysaliency.metrics"), importlib.import_module("pysaliency.numba_utils")


def pysaliency_auc_judd(numba_utils: Any, positives: np.ndarray, negatives: np.ndarray) -> float:
    """pysaliency's Judd AUC (``general_roc_numba(..., judd=1)``) of fixated vs non-fixated values."""
    if hasattr(np, "trapz"):
        return float(numba_utils.general_roc_numba(positives, negatives, judd=1)[0])
    sp, sn = np.sort(positives)[::-1], np.sort(negatives)[::-1]  # the same steps as general_roc_numba
    all_values = np.sort(np.hstack((max(sp[0], sn[0]) + 1, positives, min(sp[-1], sn[-1]))))[::-1]
    fpr, hr = np.zeros(len(all_values) + 1), np.zeros(len(all_values) + 1)
    hr, fpr = numba_utils._general_roc_numba(all_values, sp, sn, fpr, hr)
    return float(np.trapezoid(hr, fpr))
