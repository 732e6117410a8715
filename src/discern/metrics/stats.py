"""Claim statistics: paired bootstrap intervals and the verdict rule.

A claim "A beats B" is ``held`` only when the whole 95% interval of the mean difference A - B is
above zero, ``not held`` when it is wholly below, and ``inconclusive`` otherwise (ties and
overlapping evidence are never held).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from discern.core.results import VERDICTS  # noqa: E402,F401  (one list of verdicts)


def verdict_from_interval(lo: float, hi: float) -> str:
    """``held`` if ``lo > 0``, ``not held`` if ``hi < 0``, else ``inconclusive``."""
    if lo > 0:
        return "held"
    if hi < 0:
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

def bootstrap_ci(x, statistic=np.mean, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0,
                 method: str = "BCa") -> dict:
    """``scipy.stats.bootstrap`` interval of ``statistic`` over the 1-D sample ``x``.

    Returns ``{"estimate", "ci": [lo, hi], "n", "test"}``; a constant sample gets a zero-width
    interval (scipy's BCa is undefined there)."""
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise ValueError("bootstrap_ci: need a finite, non-empty 1-D sample")
    est = float(statistic(v))
    if v.size < 2 or np.ptp(v) == 0:
        return {"estimate": est, "ci": [est, est], "n": int(v.size),
                "test": f"bootstrap ({method}) of a constant sample"}
    res = sps.bootstrap((v,), statistic, n_resamples=n_resamples, confidence_level=level, method=method,
                        rng=np.random.default_rng(seed), vectorized=False)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa can fail on degenerate samples
        res = sps.bootstrap((v,), statistic, n_resamples=n_resamples, confidence_level=level,
                            method="percentile", rng=np.random.default_rng(seed), vectorized=False)
        lo, hi, method = float(res.confidence_interval.low), float(res.confidence_interval.high), "percentile"
    return {"estimate": est, "ci": [lo, hi], "n": int(v.size),
            "test": f"bootstrap {method} {int(level * 100)}% interval ({n_resamples} resamples, n = {v.size})"}


def paired_bootstrap(a, b, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0) -> dict:
    """Mean of the paired differences ``a - b`` with a BCa bootstrap interval and the one-sided
    bootstrap p-value of ``mean(a - b) <= 0`` (share of percentile resamples at or below 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap: {a.shape} vs {b.shape}: pairs must match")
    d = a - b
    out = bootstrap_ci(d, np.mean, n_resamples, level, seed)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_resamples, d.size))
    means = d[idx].mean(axis=1)
    return {"mean": out["estimate"], "ci": out["ci"], "n": out["n"], "level": level,
            "p_value": float((means <= 0).mean()),
            "test": f"paired bootstrap of the mean difference (BCa {int(level * 100)}%, {n_resamples} resamples, "
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


def holm(p_values) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adj[i] = min(1.0, running)
    return adj.tolist()


def verdict_from_p(p_value: float | None, direction_ok: bool, alpha: float = 0.05) -> str:
    """One-sided test of the paper's direction: ``held`` if the effect goes the paper's way and
    ``p < alpha``; ``not held`` never comes from a p-value alone (absence of evidence), so the
    rest is ``inconclusive``.  Use :func:`verdict_from_interval` where an interval can show the
    opposite."""
    if p_value is not None and direction_ok and p_value < alpha:
        return "held"
    return "inconclusive"
