"""discern.train.bench.step_ratio: the throughput ratio of a benchmark and its interval over step pairs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from discern.train.bench import step_ratio


def test_ratio_is_the_previous_paths_seconds_over_ours_with_scipys_interval():
    rng = np.random.default_rng(0)
    ours = 0.060 + 0.004 * rng.random(12)
    before = 0.150 + 0.010 * rng.random(12)
    r = step_ratio(list(ours), list(before))
    assert r["ratio"] == pytest.approx(before.sum() / ours.sum(), rel=1e-12)
    assert r["pairs"] == 12
    lo, hi = r["ci"]
    assert lo < r["ratio"] < hi
    # the same percentile interval as scipy's paired bootstrap with the same generator
    ref = stats.bootstrap((before, ours), lambda b, o, axis=-1: b.sum(axis) / o.sum(axis), paired=True,
                          vectorized=True, method="percentile", n_resamples=10_000,
                          random_state=np.random.default_rng(0), batch=None)
    assert lo == pytest.approx(ref.confidence_interval.low, rel=1e-9)
    assert hi == pytest.approx(ref.confidence_interval.high, rel=1e-9)


def test_pairs_with_one_ratio_give_a_point_interval():
    ours = [0.05, 0.07, 0.06, 0.08]
    r = step_ratio(ours, [2.5 * t for t in ours])
    assert r["ratio"] == pytest.approx(2.5)
    assert r["ci"] == pytest.approx([2.5, 2.5])
