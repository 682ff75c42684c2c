"""Paired bootstrap CI against scipy.stats.bootstrap; `rlkit eval compare` on two result folders."""

import numpy as np
import pytest
from scipy import stats

from rlkit.eval import IdentitySystem, RandomProgramSystem, compare_results, paired_bootstrap, run_retouch


def test_paired_bootstrap_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(10, 2, 80)
    b = a + rng.normal(0.5, 1.0, 80)
    diff, lo, hi = paired_bootstrap(a, b, n_resamples=20000, seed=1)
    ref = stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(y - x, axis=axis), paired=True,
                          n_resamples=20000, method="percentile", random_state=2).confidence_interval
    assert diff == pytest.approx(np.mean(b - a))
    se = np.std(b - a, ddof=1) / np.sqrt(a.size)  # Monte Carlo error of the endpoints is a small share of it
    assert lo == pytest.approx(ref.low, abs=0.05 * se) and hi == pytest.approx(ref.high, abs=0.05 * se)
    assert lo < diff < hi
    with pytest.raises(ValueError, match="one length"):
        paired_bootstrap([1, 2, 3], [1, 2])


def test_compare_two_runs(retouch_samples, tmp_path):
    run_retouch(retouch_samples, [IdentitySystem(), RandomProgramSystem(seed=0)], tmp_path / "a", progress=False)
    run_retouch(retouch_samples, [IdentitySystem(), RandomProgramSystem(seed=5)], tmp_path / "b", progress=False)
    diffs = {(d.system, d.metric): d for d in compare_results(tmp_path / "a", tmp_path / "b", n_resamples=2000)}
    same = diffs[("identity", "l1")]
    assert same.diff == 0 and same.low == 0 and same.high == 0 and not same.significant
    rnd = diffs[("random", "l1")]
    assert rnd.n == len(retouch_samples) and rnd.low <= rnd.diff <= rnd.high
    assert rnd.diff == pytest.approx(rnd.mean_b - rnd.mean_a)
