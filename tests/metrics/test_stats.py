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


# --- the shared toolbox: parity with a direct formula or with scipy, and hand-computed answers -------

from discern.metrics import stats as S  # noqa: E402


def test_bootstrap_ci_percentile_is_the_direct_resampling_formula():
    x = np.array([5.2, 4.8, 6.0, 5.5, 5.1, 3.9, 4.4])
    res = S.bootstrap_ci(x, np.mean, n_resamples=800, seed=3, method="percentile")
    boot = x[np.random.default_rng(3).integers(0, x.size, size=(800, x.size))].mean(axis=1)
    assert res["ci"] == pytest.approx(list(np.percentile(boot, [2.5, 97.5])), abs=1e-12)
    assert res["estimate"] == pytest.approx(x.mean()) and res["n"] == 7
    med = S.bootstrap_ci(x, np.median, n_resamples=800, seed=3, method="percentile")
    assert med["ci"] == pytest.approx(list(np.percentile(np.median(x[np.random.default_rng(3).integers(
        0, x.size, size=(800, x.size))], axis=1), [2.5, 97.5])), abs=1e-12)


def test_bootstrap_ci_bca_is_scipys_and_a_constant_sample_has_no_width():
    from scipy import stats

    x = np.random.default_rng(0).exponential(size=25)
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(5))
    res = S.bootstrap_ci(x, np.mean, n_resamples=2000, seed=5)
    assert res["ci"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], abs=1e-12)
    assert S.bootstrap_ci([2.0, 2.0, 2.0])["ci"] == [2.0, 2.0]
    with pytest.raises(ValueError):
        S.bootstrap_ci([])


def test_cluster_bootstrap_ratio_matches_numpy_and_scipy():
    from scipy import stats

    num = np.array([[2, 1, 0], [0, 3, 0], [1, 1, 1], [3, 0, 0], [0, 0, 2], [1, 2, 0]], dtype=float)
    den = num.sum(1)
    res = S.cluster_bootstrap_ratio(num, den, n_resamples=5000, seed=11)
    idx = np.random.default_rng(11).integers(0, len(den), size=(5000, len(den)))
    boots = num[idx].sum(1) / den[idx].sum(1)[:, None]
    np.testing.assert_allclose(res["ci"], np.quantile(boots, [0.025, 0.975], axis=0), rtol=0, atol=1e-12)
    assert res["estimate"] == pytest.approx(list(num.sum(0) / den.sum()))
    # one column at a time against scipy's paired percentile bootstrap, in blocks of 7 resamples
    for k in range(3):
        one = S.cluster_bootstrap_ratio(num[:, k], den, n_resamples=300, seed=2, batch=7)
        ref = stats.bootstrap((num[:, k], den), lambda a, b, axis: a.sum(axis) / b.sum(axis), paired=True,
                              vectorized=True, n_resamples=300, batch=7, method="percentile",
                              rng=np.random.default_rng(2))
        assert one["ci"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], abs=1e-12)
    assert S.cluster_bootstrap_ratio(num, den, n_resamples=500, seed=12)["ci"] != \
        S.cluster_bootstrap_ratio(num, den, n_resamples=500, seed=13)["ci"]


def test_cluster_bootstrap_ratio_leaves_out_resamples_without_a_denominator():
    num, den = np.array([1.0, 2.0, 0.0]), np.array([0.0, 4.0, 0.0])
    res = S.cluster_bootstrap_ratio(num, den, n_resamples=400, seed=0)
    idx = np.random.default_rng(0).integers(0, 3, size=(400, 3))
    tot = den[idx].sum(1)
    ok = tot > 0
    ratios = num[idx].sum(1)[ok] / tot[ok]
    assert res["ci"] == pytest.approx(list(np.quantile(ratios, [0.025, 0.975])), abs=1e-12)
    with pytest.raises(ValueError):
        S.cluster_bootstrap_ratio([1.0], [0.0])


def test_paired_bootstrap_p_value_and_share_are_the_direct_counts():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.3, 1, 30), rng.normal(0, 1, 30)
    res = S.paired_bootstrap(a, b, n_resamples=1000, seed=9)
    d = a - b
    means = d[np.random.default_rng(9).integers(0, 30, size=(1000, 30))].mean(1)
    assert res["p_value"] == (means <= 0).mean() and res["share_positive"] == (means > 0).mean()
    assert res["mean"] == pytest.approx(d.mean())
    assert res["ci"][0] < d.mean() < res["ci"][1]


def test_sign_flip_test_exact_and_monte_carlo():
    import itertools
    import math

    d = np.array([1.0, 1, 1, -1, 1, 1, 0.5, 1, -1, 1, 1, 1 / 3, 0])
    nz = d[d != 0]
    t = abs(nz.sum())
    flips = [abs(sum(s * x for s, x in zip(signs, nz))) for signs in itertools.product([-1, 1], repeat=len(nz))]
    exact = sum(f >= t - 1e-12 for f in flips) / len(flips)
    res = S.sign_flip_test(d, n_resamples=2 ** 12)
    assert res["exact"] and res["p_value"] == pytest.approx(exact, abs=1e-15)
    mc = S.sign_flip_test(d, n_resamples=4000, seed=1)  # 2**12 > 4000: random flips
    assert not mc["exact"] and mc["p_value"] != exact
    assert abs(mc["p_value"] - exact) < 4 * math.sqrt(exact * (1 - exact) / 4000)
    assert mc["p_value"] == pytest.approx(round(mc["p_value"] * 4001) / 4001)  # (1 + hits) / (1 + n)
    assert S.sign_flip_test(np.zeros(4))["p_value"] == 1.0
    assert S.sign_flip_test([1.0, 1, 1, 1, 1])["p_value"] == 2 / 2 ** 5  # only all or none flipped


def test_cluster_permutation_ratio_test_enumerates_every_relabelling():
    import itertools
    import math

    y = np.array([2.0, 3, 0, 1, 1, 0])
    n = np.array([3.0, 3, 2, 3, 1, 2])

    def diff(mask):
        m = np.asarray(mask)
        return y[m].sum() / n[m].sum() - y[~m].sum() / n[~m].sum()

    first = np.arange(6) < 3
    t = abs(diff(first))
    masks = [np.isin(np.arange(6), c) for c in itertools.combinations(range(6), 3)]
    exact = sum(abs(diff(m)) >= t - 1e-12 for m in masks) / len(masks)
    res = S.cluster_permutation_ratio_test(y[:3], n[:3], y[3:], n[3:], n_resamples=10000)
    assert res["exact"] and res["p_value"] == pytest.approx(exact, abs=1e-15)
    assert res["difference"] == pytest.approx(diff(first))
    mc = S.cluster_permutation_ratio_test(y[:3], n[:3], y[3:], n[3:], n_resamples=19, seed=3)
    assert not mc["exact"] and mc["p_value"] == pytest.approx(round(mc["p_value"] * 20) / 20)
    # complete separation of 4 vs 4 clusters: only the two extreme labellings are as extreme
    ones = np.ones(4)
    sep = S.cluster_permutation_ratio_test(3 * ones, 3 * ones, 0 * ones, 3 * ones)
    assert sep["p_value"] == pytest.approx(2 / math.comb(8, 4), abs=1e-15)
    with pytest.raises(ValueError):
        S.cluster_permutation_ratio_test([1.0], [0.0], [1.0], [1.0])


def test_wilson_interval_is_the_closed_form():
    z = 1.959963984540054
    for k, n in ((8, 10), (0, 7), (24, 24), (7, 24)):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        res = S.proportion_ci(k, n)
        assert res["ci"] == pytest.approx([centre - half, centre + half], abs=1e-12) and res["p"] == p
    with pytest.raises(ValueError):
        S.proportion_ci(0, 0)


def test_binomial_and_mcnemar_on_hand_computed_tables():
    # 5 of 5 right at chance 1/4: P(X >= 5) = 4^-5
    assert S.binomial_test(5, 5, 0.25)["p_value"] == pytest.approx(1 / 1024, abs=1e-15)
    # 2 of 2 right at 1/4 is not below 0.05: 1/16
    assert S.binomial_test(2, 2, 0.25)["p_value"] == pytest.approx(1 / 16, abs=1e-15)
    # paired table: both right 5, only A 8, only B 2, both wrong 5 (n = 20)
    a = [1] * 5 + [1] * 8 + [0] * 2 + [0] * 5
    b = [1] * 5 + [0] * 8 + [1] * 2 + [0] * 5
    res = S.mcnemar(a, b)
    # P(X >= 8 | 10, 1/2) = (C(10,8) + C(10,9) + C(10,10)) / 2^10 = 56 / 1024
    assert (res["a_only"], res["b_only"], res["n"]) == (8, 2, 20)
    assert res["p_value"] == pytest.approx(56 / 1024, abs=1e-15)
    assert res["diff"] == pytest.approx(0.3)
    assert S.mcnemar(a, b, alternative="two-sided")["p_value"] == pytest.approx(112 / 1024, abs=1e-15)
    assert S.mcnemar(b, a)["p_value"] == pytest.approx(1 - 11 / 1024, abs=1e-15)  # P(X >= 2 | 10, 1/2)
    assert S.mcnemar([1, 0], [1, 0])["p_value"] == 1.0  # no discordant pair


def test_paired_t_and_wilcoxon_on_hand_values():
    import math

    from scipy import stats

    base = np.array([5.2, 4.8, 6.0, 5.5, 5.1])
    fast = np.array([4.1, 4.0, 5.0, 4.3, 4.6])
    d = fast - base
    t = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    res = S.paired_t(fast, base)
    assert res["t"] == pytest.approx(t, abs=1e-9) and res["df"] == 4
    assert res["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 4), abs=1e-12)
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert res["ci"] == pytest.approx([d.mean() - half, d.mean() + half], abs=1e-12)
    assert S.paired_t(fast, base, alternative="less")["p_value"] == pytest.approx(stats.t.cdf(t, 4), abs=1e-12)
    w = S.wilcoxon_signed_rank(fast, base)
    assert (w["statistic"], w["p_value"]) == (0.0, pytest.approx(2 / 32, abs=1e-15))  # all five below: W = 0
    assert S.wilcoxon_signed_rank(base, base)["p_value"] == 1.0


def test_holm_on_a_hand_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
    assert S.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert S.holm([0.5, None, 0.2]) == [0.5, None, 0.4]
    assert S.holm([0.6, 0.7]) == [1.0, 1.0]
    assert S.holm([]) == []


def test_verdict_from_p_needs_the_direction_and_the_level():
    assert S.verdict_from_p(0.01, True) == "held"
    assert S.verdict_from_p(0.01, False) == "inconclusive"
    assert S.verdict_from_p(0.05, True) == "inconclusive"
    assert S.verdict_from_p(None, True) == "inconclusive"


def test_permutation_tests_with_a_single_cluster_enumerate_by_hand():
    # one cluster against three: the four relabellings put each cluster alone in turn
    y, n = np.array([3.0, 0.0, 1.0, 0.0]), np.array([3.0, 2.0, 2.0, 1.0])

    def diff(i):
        rest = np.delete(np.arange(4), i)
        return abs(y[i] / n[i] - y[rest].sum() / n[rest].sum())

    t = diff(0)
    expected = np.mean([diff(i) >= t - 1e-12 for i in range(4)])
    res = S.cluster_permutation_ratio_test(y[:1], n[:1], y[1:], n[1:])
    assert res["exact"] and res["p_value"] == pytest.approx(expected, abs=1e-15) and expected == 0.25
    # the mirror image (three against one) is the same test
    assert S.cluster_permutation_ratio_test(y[1:], n[1:], y[:1], n[:1])["p_value"] == pytest.approx(0.25)
    assert S.sign_flip_test([0.0, 0.5, 0.0])["p_value"] == 1.0  # one non-zero value: both flips tie


def test_verdict_from_interval_against_a_threshold():
    from discern.metrics.stats import verdict_from_interval

    assert verdict_from_interval(0.1, 0.3) == "held"
    assert verdict_from_interval(-0.3, -0.1) == "not held"
    assert verdict_from_interval(-0.1, 0.3) == "inconclusive"
    assert verdict_from_interval(0.0, 0.3) == "inconclusive"  # touching the threshold is a tie
    assert verdict_from_interval(0.51, 0.6, threshold=0.5) == "held"
    assert verdict_from_interval(0.02, 0.03, threshold=0.5) == "not held"
    assert verdict_from_interval(0.4, 0.6, threshold=0.5) == "inconclusive"
