"""The project's one statistics module: every interval, test and verdict of a claim comes from here,
built on ``scipy.stats`` (and numpy where scipy has no vectorised form, with parity tests against scipy).

- Verdicts: :func:`verdict_from_interval` (``held`` only when the whole 95% interval lies on the paper's
  side, ``not held`` when it lies wholly on the other, ``inconclusive`` otherwise: ties and overlapping
  evidence are never held) and :func:`verdict_from_p`.
- Intervals: :func:`bootstrap_ci` (``scipy.stats.bootstrap``), :func:`cluster_bootstrap_ratio` (a ratio of
  sums, clusters resampled together), :func:`paired_bootstrap_grid` (tasks x seeds), :func:`mean_interval`
  (Student t), :func:`proportion_ci` (Wilson via ``scipy.stats.binomtest``).
- Tests: :func:`paired_bootstrap`, :func:`permutation_paired`, :func:`sign_flip_test`,
  :func:`cluster_permutation_ratio_test` (``scipy.stats.permutation_test``), :func:`binomial_test`,
  :func:`mcnemar` (exact), :func:`paired_t` (``scipy.stats.ttest_rel``), :func:`wilcoxon_signed_rank`
  (``scipy.stats.wilcoxon``) and :func:`holm` (Holm-Bonferroni adjusted p-values).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from discern.core.results import VERDICTS  # noqa: F401  (one list of verdicts, re-exported)


def verdict_from_interval(lo: float, hi: float, threshold: float = 0.0) -> str:
    """``held`` if the whole interval lies above ``threshold`` (``lo > threshold``), ``not held`` if
    wholly below (``hi < threshold``), else ``inconclusive``."""
    if lo > threshold:
        return "held"
    if hi < threshold:
        return "not held"
    return "inconclusive"


def paired_bootstrap_grid(diff, n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> dict:
    """Mean of a (tasks, seeds) grid of paired differences with a two-way bootstrap interval.

    Each resample draws tasks and seeds independently with replacement and takes the mean of
    the selected cells, so the interval reflects both which tasks were chosen and which
    pre-training seeds happened to run (a cluster bootstrap in both directions).  With one
    seed it is a bootstrap over tasks, with one task over seeds.  Percentile interval.

    Returns ``{"mean", "ci": [lo, hi], "n_tasks", "n_seeds", "p_value", "test"}`` where
    ``p_value`` is the one-sided bootstrap p of ``mean <= 0``."""
    d = np.asarray(diff, dtype=np.float64)
    if d.ndim != 2 or d.size == 0 or not np.isfinite(d).all():
        raise ValueError("paired_bootstrap_grid: need a finite, non-empty (tasks, seeds) array")
    T, S = d.shape
    rng = np.random.default_rng(seed)
    ti = rng.integers(0, T, size=(n_boot, T))
    si = rng.integers(0, S, size=(n_boot, S))
    # mean over the resampled grid = mean over (task draw, seed draw) pairs
    means = np.array([d[np.ix_(ti[b], si[b])].mean() for b in range(n_boot)])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return {"mean": float(d.mean()), "ci": [float(lo), float(hi)], "n_tasks": T, "n_seeds": S,
            "p_value": float((means <= 0).mean()), "level": level,
            "test": f"two-way paired bootstrap over {T} tasks x {S} seeds ({n_boot} resamples, percentile)"}


def mean_interval(values, level: float = 0.95) -> dict:
    """Mean with a Student-t interval (``scipy.stats.t``); a single value gets no interval."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_interval: no values")
    m = float(v.mean())
    if v.size < 2:
        return {"mean": m, "ci": [float("nan"), float("nan")], "n": 1}
    half = float(sps.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return {"mean": m, "ci": [m - half, m + half], "n": int(v.size)}


# --- the shared toolbox: every interval and test of the project comes from here ------------------

_VECTORISED = {np.mean: "mean", np.median: "median", np.sum: "sum", np.std: "std", np.var: "var"}


def bootstrap_ci(x, statistic=np.mean, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0,
                 method: str = "BCa") -> dict:
    """``scipy.stats.bootstrap`` interval of ``statistic`` over the 1-D sample ``x``.

    ``method`` is scipy's (``"BCa"``, ``"percentile"``, ``"basic"``); the resamples are drawn from
    ``numpy.random.default_rng(seed)``.  numpy's reductions (``np.mean``, ``np.median`` ...) run
    vectorised.  Returns ``{"estimate", "ci": [lo, hi], "n", "test"}``; a constant sample gets a
    zero-width interval (scipy's BCa is undefined there), and a BCa interval that scipy cannot compute
    falls back to the percentile interval (named in ``test``)."""
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise ValueError("bootstrap_ci: need a finite, non-empty 1-D sample")
    est = float(statistic(v))
    if v.size < 2 or np.ptp(v) == 0:
        return {"estimate": est, "ci": [est, est], "n": int(v.size),
                "test": f"bootstrap ({method}) of a constant sample"}
    vectorised = statistic in _VECTORISED

    def interval(m):
        res = sps.bootstrap((v,), statistic, n_resamples=n_resamples, confidence_level=level, method=m,
                            rng=np.random.default_rng(seed), vectorized=vectorised)
        return float(res.confidence_interval.low), float(res.confidence_interval.high)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=sps.DegenerateDataWarning)
        lo, hi = interval(method)
        if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa can fail on degenerate samples
            method = "percentile"
            lo, hi = interval(method)
    return {"estimate": est, "ci": [lo, hi], "n": int(v.size),
            "test": f"bootstrap {method} {level:.0%} interval ({n_resamples} resamples, n = {v.size})"}


def _batches(n_resamples: int, n: int, batch: int | None):
    """Block sizes of resamples so that one block holds about 4 million draws (``batch`` overrides)."""
    b = batch or max(1, 4_000_000 // max(n, 1))
    for start in range(0, n_resamples, b):
        yield min(b, n_resamples - start)


def cluster_bootstrap_ratio(num, den, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0,
                            batch: int | None = None) -> dict:
    """Percentile bootstrap interval of the ratio of sums ``sum(num) / sum(den)``, resampling clusters.

    Each row is one cluster (an item with all its ratings, an utterance with its words) and moves as a
    whole: ``num`` has shape (n,) or (n, k) (k ratios sharing the denominator, e.g. the shares of
    three choices), ``den`` shape (n,).  The resamples are the indices
    ``rng.integers(0, n, (b, n))`` of ``numpy.random.default_rng(seed)``, drawn in blocks of ``b``
    resamples, so the interval equals ``scipy.stats.bootstrap((num, den), ratio, paired=True,
    method="percentile", batch=b)`` with the same generator (tested); the sums of a resample are
    computed from how often each cluster was drawn.  A resample whose denominators sum to 0 has no
    ratio and is left out of the quantiles.

    Returns ``{"estimate", "ci", "n", "test"}``: ``estimate`` a float (or a list of k) and ``ci``
    ``[lo, hi]`` (or ``[[lo_1 .. lo_k], [hi_1 .. hi_k]]``)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    n = den.shape[0] if den.ndim == 1 else -1
    if den.ndim != 1 or n == 0 or num.shape[:1] != (n,) or num.ndim > 2:
        raise ValueError("cluster_bootstrap_ratio: need den of shape (n,) with n > 0 and num of shape (n,) or (n, k)")
    if not (np.isfinite(num).all() and np.isfinite(den).all()) or den.sum() == 0:
        raise ValueError("cluster_bootstrap_ratio: need finite values and a positive total denominator")
    flat = num.ndim == 1
    num2 = num[:, None] if flat else num
    rng = np.random.default_rng(seed)
    out = []
    for b in _batches(n_resamples, n, batch):
        idx = rng.integers(0, n, size=(b, n))
        # (b, n): how often each cluster is drawn in each resample; sums over a resample are then products
        w = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        tot = w @ den
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((w @ num2) / np.where(tot > 0, tot, np.nan)[:, None])
    boots = np.concatenate(out)  # (n_resamples, k)
    a = (1 - level) / 2
    ci = np.nanquantile(boots, [a, 1 - a], axis=0)  # (2, k)
    est = num2.sum(0) / den.sum()
    return {"estimate": float(est[0]) if flat else est.tolist(),
            "ci": ci[:, 0].tolist() if flat else ci.tolist(), "n": int(n),
            "test": f"cluster bootstrap of a ratio of sums (percentile {level:.0%}, {n_resamples} resamples of "
                    f"{n} clusters)"}


def bootstrap_ratio_of_means(num, den, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0) -> dict:
    """``mean(num) / mean(den)`` of two independent samples, with the percentile interval of
    ``scipy.stats.bootstrap((num, den), ..., paired=False)`` (each sample resampled on its own, from
    ``numpy.random.default_rng(seed)``).  For timings measured in two processes, where no step of
    one is paired with a step of the other.  Returns ``{"estimate", "ci", "n", "test"}`` (``n`` the
    two sample sizes)."""
    a = np.asarray(num, dtype=np.float64)
    b = np.asarray(den, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.size == 0 or b.size == 0:
        raise ValueError("bootstrap_ratio_of_means: need two non-empty 1-D samples")
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or b.mean() <= 0:
        raise ValueError("bootstrap_ratio_of_means: need finite values and a positive mean denominator")
    est = float(a.mean() / b.mean())
    test = f"percentile bootstrap {level:.0%} of a ratio of means, two independent samples ({n_resamples} resamples)"
    if (a.size < 2 or np.ptp(a) == 0) and (b.size < 2 or np.ptp(b) == 0):
        return {"estimate": est, "ci": [est, est], "n": [int(a.size), int(b.size)], "test": test}
    res = sps.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) / y.mean(axis), paired=False, vectorized=True,
                        n_resamples=n_resamples, confidence_level=level, method="percentile",
                        rng=np.random.default_rng(seed))
    return {"estimate": est, "ci": [float(res.confidence_interval.low), float(res.confidence_interval.high)],
            "n": [int(a.size), int(b.size)], "test": test}


def paired_bootstrap(a, b, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0) -> dict:
    """Mean of the paired differences ``a - b`` with a BCa bootstrap interval and the one-sided
    bootstrap p-value of ``mean(a - b) <= 0``: the share of resamples (indices
    ``rng.integers(0, n, (n_resamples, n))`` of ``numpy.random.default_rng(seed)``) whose mean is at or
    below 0.  ``share_positive`` is the share whose mean is above 0 (the "probability of
    improvement" of Koehn 2004 / Bisani and Ney 2004 when a and b are error counts)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap: {a.shape} vs {b.shape}: pairs must match")
    d = a - b
    out = bootstrap_ci(d, np.mean, n_resamples, level, seed)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_resamples, d.size))
    means = d[idx].mean(axis=1)
    below = int((means <= 0).sum())
    return {"mean": out["estimate"], "ci": out["ci"], "n": out["n"], "level": level,
            "p_value": below / n_resamples, "share_positive": (n_resamples - below) / n_resamples,
            "test": f"paired bootstrap of the mean difference (BCa {level:.0%}, {n_resamples} resamples, "
                    f"n = {d.size})"}


def permutation_paired(a, b, alternative: str = "greater", n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Paired sign-flip permutation test of ``mean(a - b)`` (``scipy.stats.permutation_test``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("permutation_paired: need two non-empty samples of the same shape")
    res = sps.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
                               alternative=alternative, n_resamples=n_resamples, vectorized=True,
                               rng=np.random.default_rng(seed))
    return {"mean": float((a - b).mean()), "p_value": float(res.pvalue), "n": int(a.size),
            "test": f"paired permutation test ({alternative}, {n_resamples} sign flips, n = {a.size})"}


def sign_flip_test(d, n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Two-sided sign-flip permutation test of ``mean(d) = 0`` for per-cluster values ``d`` (the null that
    the two labels are exchangeable within each cluster), statistic ``|sum(d)|``, by
    ``scipy.stats.permutation_test``.

    Zeros cannot change the statistic and are left out; with ``m`` others, all ``2**m`` flips are
    enumerated when ``2**m <= n_resamples`` (exact p), otherwise ``n_resamples`` random flips give
    ``(1 + #{|T*| >= |T|}) / (1 + n_resamples)``."""
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    if d.size == 0 or not np.isfinite(d).all():
        raise ValueError("sign_flip_test: need at least one finite value")
    nz = d[d != 0]
    m = int(nz.size)
    if m == 0:
        return {"p_value": 1.0, "statistic": 0.0, "exact": True, "n": int(d.size),
                "test": "sign-flip permutation test (no non-zero differences)"}
    if m == 1:  # both flips give the same |sum| (scipy needs two observations)
        return {"p_value": 1.0, "statistic": float(abs(nz[0])), "exact": True, "n": int(d.size),
                "test": f"two-sided sign-flip permutation test (all 2 flips, 1 non-zero of {d.size} clusters)"}
    res = sps.permutation_test((nz,), lambda x, axis: np.abs(np.sum(x, axis=axis)), permutation_type="samples",
                               vectorized=True, n_resamples=n_resamples, alternative="greater",
                               rng=np.random.default_rng(seed))
    exact = m < 63 and 2 ** m <= n_resamples
    how = f"all 2^{m} flips" if exact else f"{n_resamples} random flips"
    return {"p_value": float(res.pvalue), "statistic": float(res.statistic), "exact": exact, "n": int(d.size),
            "test": f"two-sided sign-flip permutation test ({how}, {m} non-zero of {d.size} clusters)"}


def cluster_permutation_ratio_test(num_x, den_x, num_y, den_y, n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Two-sided permutation test of the difference of two ratios of sums,
    ``sum(num_x) / sum(den_x) - sum(num_y) / sum(den_y)``, relabelling whole clusters between the groups
    (group sizes kept), statistic ``|difference|``, by ``scipy.stats.permutation_test``.  All
    ``comb(n_x + n_y, n_x)`` relabellings are enumerated when there are at most ``n_resamples``,
    otherwise ``n_resamples`` random ones give ``(1 + hits) / (1 + n_resamples)``."""
    x = np.stack([np.asarray(num_x, dtype=np.float64), np.asarray(den_x, dtype=np.float64)])  # (2, n_x)
    y = np.stack([np.asarray(num_y, dtype=np.float64), np.asarray(den_y, dtype=np.float64)])  # (2, n_y)
    if x.shape[1] == 0 or y.shape[1] == 0:
        raise ValueError("cluster_permutation_ratio_test: a permutation test needs clusters in both groups")
    if np.any(x[1] <= 0) or np.any(y[1] <= 0):
        raise ValueError("cluster_permutation_ratio_test: every cluster needs a positive denominator")

    def stat(a, b, axis):  # a: (..., 2, n_x), b: (..., 2, n_y)
        return np.abs(a[..., 0, :].sum(-1) / a[..., 1, :].sum(-1) - b[..., 0, :].sum(-1) / b[..., 1, :].sum(-1))

    nx, ny = x.shape[1], y.shape[1]
    exact = math.comb(nx + ny, nx) <= n_resamples or min(nx, ny) == 1
    if min(nx, ny) == 1:  # scipy needs two clusters per group: enumerate the n relabellings here
        both = np.concatenate([x, y], axis=1)  # (2, n)
        lone = 0 if nx == 1 else 1  # which group holds the single cluster
        t = stat(x, y, -1)
        null = []
        for i in range(nx + ny):
            rest = np.delete(both, i, axis=1)
            one = both[:, i:i + 1]
            null.append(stat(one, rest, -1) if lone == 0 else stat(rest, one, -1))
        null = np.asarray(null)
        p = float(np.mean(null >= t - 1e-14 * max(1.0, abs(t))))
    else:
        p = float(sps.permutation_test((x, y), stat, permutation_type="independent", vectorized=True, axis=-1,
                                       n_resamples=n_resamples, alternative="greater",
                                       rng=np.random.default_rng(seed)).pvalue)
    how = "all relabellings" if exact else f"{n_resamples} random relabellings"
    return {"p_value": p, "difference": float(x[0].sum() / x[1].sum() - y[0].sum() / y[1].sum()),
            "exact": exact, "n": [nx, ny],
            "test": f"two-sided cluster permutation test of a difference of ratios ({how}, {nx} vs {ny} clusters)"}


def proportion_ci(k: int, n: int, level: float = 0.95, method: str = "wilson") -> dict:
    """A proportion ``k / n`` with ``scipy.stats.binomtest(...).proportion_ci`` (Wilson by default)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"proportion_ci: need 0 <= k <= n and n > 0, got k={k}, n={n}")
    ci = sps.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method=method)
    return {"p": k / n, "ci": [float(ci.low), float(ci.high)], "k": int(k), "n": int(n),
            "test": f"{method} {int(level * 100)}% interval"}


def binomial_test(k: int, n: int, p: float, alternative: str = "greater") -> dict:
    """Exact binomial test of ``k`` successes in ``n`` against rate ``p`` (e.g. accuracy vs chance)."""
    res = sps.binomtest(int(k), int(n), p, alternative=alternative)
    return {"p_value": float(res.pvalue), "k": int(k), "n": int(n), "p0": p,
            "test": f"exact binomial test vs {p:.3g} ({alternative})"}


def mcnemar(a_correct, b_correct, alternative: str = "greater") -> dict:
    """Exact McNemar test on paired right/wrong outcomes: is A right more often than B?

    Uses the exact binomial test on the discordant pairs (A right / B wrong = ``b01``; A wrong / B
    right = ``b10``); ``alternative="greater"`` asks whether A beats B."""
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mcnemar: {a.shape} vs {b.shape}: pairs must match")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else float(sps.binomtest(a_only, n, 0.5, alternative=alternative).pvalue)
    return {"p_value": p, "a_only": a_only, "b_only": b_only, "n": int(a.size),
            "diff": float(a.mean() - b.mean()) if a.size else 0.0,
            "test": f"exact McNemar test ({alternative}; {a_only} vs {b_only} discordant pairs)"}


def paired_t(a, b, alternative: str = "two-sided") -> dict:
    """``scipy.stats.ttest_rel`` with the Student-t interval of the mean difference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.size < 2:
        raise ValueError("paired_t: need two samples of the same shape with >= 2 pairs")
    d = a - b
    if np.ptp(d) == 0:
        m = float(d.mean())
        ok = {"two-sided": m != 0, "greater": m > 0, "less": m < 0}[alternative]
        p = 0.0 if ok else 1.0
        return {"mean": m, "ci": [m, m], "p_value": p, "n": int(d.size), "test": "paired t-test (constant differences)"}
    res = sps.ttest_rel(a, b, alternative=alternative)
    ci = mean_interval(d)["ci"]
    return {"mean": float(d.mean()), "ci": ci, "p_value": float(res.pvalue), "t": float(res.statistic),
            "df": int(d.size - 1), "n": int(d.size), "test": f"paired t-test ({alternative}, n = {d.size})"}


def wilcoxon_signed_rank(a, b, alternative: str = "two-sided") -> dict:
    """``scipy.stats.wilcoxon`` on the paired differences ``a - b`` (zero differences dropped, exact
    distribution for small samples without ties); no non-zero difference gives p = 1."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("wilcoxon_signed_rank: need two non-empty samples of the same shape")
    d = a - b
    if not np.any(d != 0):
        return {"statistic": None, "p_value": 1.0, "n": int(d.size), "test": "Wilcoxon signed-rank test (all ties)"}
    res = sps.wilcoxon(d, alternative=alternative)
    return {"statistic": float(res.statistic), "p_value": float(res.pvalue), "n": int(d.size),
            "test": f"Wilcoxon signed-rank test ({alternative}, n = {d.size})"}


def holm(p_values) -> list:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order.

    With the ``m`` p-values sorted ascending, ``adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))``.
    ``None`` entries stay ``None`` and are not part of the family."""
    ps = list(p_values)
    valid = [(float(p), i) for i, p in enumerate(ps) if p is not None]
    m = len(valid)
    out: list = [None] * len(ps)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(valid)):  # ties keep the input order
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def verdict_from_p(p_value: float | None, direction_ok: bool, alpha: float = 0.05) -> str:
    """One-sided test of the paper's direction: ``held`` if the effect goes the paper's way and
    ``p < alpha``; ``not held`` never comes from a p-value alone (absence of evidence), so the
    rest is ``inconclusive``.  Use :func:`verdict_from_interval` where an interval can show the
    opposite."""
    if p_value is not None and direction_ok and p_value < alpha:
        return "held"
    return "inconclusive"
