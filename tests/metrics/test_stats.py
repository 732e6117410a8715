import numpy as np
import pytest

from discern.metrics.stats import mean_interval, paired_bootstrap_grid, verdict_from_interval


def test_verdict_rule_never_holds_a_tie():
    assert verdict_from_interval(0.1, 2.0) == "held"
    assert verdict_from_interval(-2.0, -0.1) == "not held"
    assert verdict_from_interval(0.0, 1.0) == "inconclusive"
    assert verdict_from_interval(-1.0, 1.0) == "inconclusive"


def test_grid_bootstrap_constant_and_symmetric():
    const = paired_bootstrap_grid(np.full((4, 3), 2.5), n_boot=500)
    assert const["mean"] == 2.5 and const["ci"] == [2.5, 2.5] and const["p_value"] == 0.0
    # +1 / -1 in equal numbers in every row and column: the mean is 0 and the interval straddles it
    d = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]])
    res = paired_bootstrap_grid(d, n_boot=2000)
    assert res["mean"] == 0.0 and res["ci"][0] < 0 < res["ci"][1]
    assert verdict_from_interval(*res["ci"]) == "inconclusive"


def test_grid_bootstrap_one_seed_is_a_task_bootstrap_and_is_seeded():
    rng = np.random.default_rng(3)
    d = rng.normal(1.0, 1.0, size=(30, 1))
    a = paired_bootstrap_grid(d, n_boot=4000, seed=7)
    assert a == paired_bootstrap_grid(d, n_boot=4000, seed=7)
    # the percentile interval of a mean over 30 draws: close to mean +- 1.96 sd / sqrt(30)
    half = 1.96 * d.std() / np.sqrt(30)
    assert a["ci"][0] == pytest.approx(d.mean() - half, abs=0.1)
    assert a["ci"][1] == pytest.approx(d.mean() + half, abs=0.1)
    with pytest.raises(ValueError):
        paired_bootstrap_grid(np.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        paired_bootstrap_grid(np.array([[np.nan]]))


def test_mean_interval_is_student_t():
    from scipy import stats

    v = [0.1, 0.3, 0.2, 0.5]
    res = mean_interval(v)
    lo, hi = stats.t.interval(0.95, 3, loc=np.mean(v), scale=stats.sem(v))
    assert res["ci"] == pytest.approx([lo, hi])
