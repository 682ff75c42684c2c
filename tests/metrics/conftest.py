"""Fixtures for the metric tests: independent reference implementations."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest


@pytest.fixture(scope="session")
def pysal():
    """pysaliency's metric modules (``metrics``, ``numba_utils``) as the reference implementation.

    pysaliency's package ``__init__`` imports ``pkg_resources``, which setuptools >= 81 no longer ships; its
    metric modules themselves only need numpy/numba, so when the package import fails we load them
    without running the package ``__init__``.
    """
    try:
        import pysaliency.metrics as m
        import pysaliency.numba_utils as nu

        return m, nu
    except ImportError:
        pass
    spec = importlib.util.find_spec("pysaliency")
    if spec is None:
        pytest.fail("pysaliency is not installed (pip install -e '.[dev]')")
    for name in [n for n in sys.modules if n == "pysaliency" or n.startswith("pysaliency.")]:
        del sys.modules[name]
    pkg = types.ModuleType("pysaliency")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["pysaliency"] = pkg
    return importlib.import_module("pysaliency.metrics"), importlib.import_module("pysaliency.numba_utils")


@pytest.fixture(scope="session")
def pysal_auc_judd(pysal):
    """pysaliency's Judd ROC (``general_roc_numba(..., judd=1)``).

    numpy 2 removed ``np.trapz`` that pysaliency's wrapper calls, so we run its own threshold construction
    and ROC kernel (``_general_roc_numba``) and integrate with ``np.trapezoid``.
    """
    import numpy as np

    _, nu = pysal

    def auc(positives, negatives):
        if hasattr(np, "trapz"):
            return nu.general_roc_numba(positives, negatives, judd=1)[0]
        sp, sn = np.sort(positives)[::-1], np.sort(negatives)[::-1]
        min_val = min(sp[-1], sn[-1])
        max_val = max(sp[0], sn[0]) + 1
        all_values = np.sort(np.hstack((max_val, positives, min_val)))[::-1]
        fpr, hr = np.zeros(len(all_values) + 1), np.zeros(len(all_values) + 1)
        hr, fpr = nu._general_roc_numba(all_values, sp, sn, fpr, hr)
        return np.trapezoid(hr, fpr)

    return auc
