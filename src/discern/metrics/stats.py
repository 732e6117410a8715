"""Claim statistics: paired bootstrap intervals and the verdict rule.

A claim "A beats B" is ``held`` only when the whole 95% interval of the mean difference A - B is
above zero, ``not held`` when it is wholly below, and ``inconclusive`` otherwise (ties and
overlapping evidence are never held).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

VERDICTS = ("held", "not held", "inconclusive", "self-test")


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
