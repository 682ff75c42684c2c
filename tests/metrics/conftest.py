"""Fixtures for the metric tests: independent reference implementations."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pysal():
    """pysaliency's metric modules (``metrics``, ``numba_utils``) as the reference implementation."""
    from rlkit.testing.references import load_pysaliency

    try:
        return load_pysaliency()
    except ImportError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def pysal_auc_judd(pysal):
    """pysaliency's Judd ROC (``general_roc_numba(..., judd=1)``) as ``auc(positives, negatives)``."""
    from rlkit.testing.references import pysaliency_auc_judd

    _, nu = pysal
    return lambda positives, negatives: pysaliency_auc_judd(nu, positives, negatives)


@pytest.fixture(params=["numba", "numpy"])
def saliency_path(request, monkeypatch):
    """Run a saliency test on both implementations: the numba kernels (when numba is installed) and numpy."""
    from rlkit.metrics import saliency

    monkeypatch.setattr(saliency, "_JIT", [])
    if request.param == "numpy":
        monkeypatch.setenv("RLKIT_NUMBA", "0")
    else:
        monkeypatch.delenv("RLKIT_NUMBA", raising=False)
        if saliency._jit() is None:
            pytest.skip("numba is not installed (the `metrics` extra installs it)")
    assert (saliency._jit() is None) == (request.param == "numpy")
    return request.param
