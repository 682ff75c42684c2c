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
