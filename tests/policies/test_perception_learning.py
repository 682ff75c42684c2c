"""The text-conditioned saliency net learns: trained tiny nets against uniform, centre-bias and untrained
baselines on held-out photos, AUC-Judd and NSS from ``rlkit.metrics``, two seeds, margins from the spread.

Criterion per metric: the worse trained seed beats the best baseline (uniform, centre bias, the untrained net
of either seed) by more than the trained seeds differ from each other. Maps are averaged only where the ground
truth is non-empty (RichHF). The VLM net's measurement (``rlkit.testing.saliency_learning``) does not
meet this criterion at tiny scale; ``python benchmarks/perception.py --learning`` prints it and
docs/perception.md records the numbers.
"""

from __future__ import annotations

import pytest

from rlkit.testing import one_torch_thread
from rlkit.testing.saliency_learning import margins, text_learning_run


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():  # tiny models: no thread contention on a loaded machine
        yield


@pytest.mark.slow
def test_text_net_beats_baselines_on_held_out_blemishes():
    run = text_learning_run((0, 1), steps=80)  # colour blotches: the category visible at 64 px
    assert run["n"] >= 20
    m = margins(run["trained"], run["baselines"])
    print(run, m)
    for metric, v in m.items():
        assert v["margin"] > v["spread"], (metric, run)
