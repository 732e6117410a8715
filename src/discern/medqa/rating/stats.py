"""Statistics of a human evaluation as reported for Med-PaLM 2 (Singhal et al. 2023, section 4): bootstrap
confidence intervals (10,000 iterations) and two-tailed permutation tests (10,000 iterations), both clustered
so that all ratings of one item (pairwise) or one answer (independent) move together.

- Pairwise: per source pair and axis, the fraction of ratings choosing each source or a tie; 95% CIs by
  resampling items with replacement (the fraction of a resample is its total count over its total ratings);
  a p-value for "X chosen over Y" from random A/B label flips within items, i.e. sign flips of the per-item
  mean preference ``d_i = (#X - #Y) / #ratings``, with statistic ``|mean_i d_i|``.
- Independent: per axis and source, the fraction of ratings in the high-quality bin with CIs resampling
  answers; between two sources a p-value from permuting the source labels among answers (all ratings of an
  answer keep their label together), statistic ``|fraction_X - fraction_Y|``.

Permutation p-values are exact, by enumerating every sign flip or relabelling, when there are at most
``n_perm`` of them; otherwise they are Monte-Carlo estimates ``(1 + #{|T*| >= |T|}) / (1 + n_perm)``.
All draws come from ``numpy.random.default_rng(seed)`` and are vectorised in blocks of iterations.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from . import schema

_BLOCK = 4_000_000  # array elements per block of iterations


def _tol(t: float) -> float:
    return 1e-9 * max(1.0, abs(t))


def bootstrap_ratio(num, den, n_boot: int = 10000, seed: int = 0, level: float = 0.95) -> np.ndarray:
    """Percentile bootstrap CI of ``sum(num) / sum(den)`` resampling clusters (rows) with replacement.

    ``num``: shape (n,) or (n, k) for k ratios sharing the denominator ``den`` (shape (n,)).  The resamples
    are ``rng.integers(0, n, size=(n_boot, n))`` with ``rng = numpy.random.default_rng(seed)`` and the
    interval is ``numpy.quantile`` at ``(1 - level) / 2`` and ``(1 + level) / 2``.  Returns shape (2,) or
    (2, k): lower and upper bounds."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    n = len(den)
    if n == 0 or num.shape[0] != n:
        raise ValueError("bootstrap needs at least one cluster and matching num/den lengths")
    flat = num.ndim == 1
    num2 = num[:, None] if flat else num
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK // n)
    out = []
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        # how often each cluster is drawn in each resample; the sums over the resample are then products
        w = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n).astype(float)
        out.append((w @ num2) / (w @ den)[:, None])
    boots = np.concatenate(out)
    a = (1 - level) / 2
    ci = np.quantile(boots, [a, 1 - a], axis=0)
    return ci[:, 0] if flat else ci


def sign_flip_test(d, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-tailed p-value of ``|mean(d)|`` under random sign flips of the per-cluster values ``d`` (the null
    hypothesis that labels A/B are exchangeable within each cluster).  Clusters with ``d == 0`` cannot change
    the statistic and are left out; with ``m`` others, all ``2**m`` flips are enumerated when
    ``2**m <= n_perm`` (exact p), otherwise ``n_perm`` random flips are drawn."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        raise ValueError("a sign-flip test needs at least one cluster")
    d = d[d != 0]
    m = len(d)
    if m == 0:
        return 1.0
    t = abs(d.sum())
    tol = _tol(t)
    if m < 63 and 2 ** m <= n_perm:
        signs = ((np.arange(2 ** m)[:, None] >> np.arange(m)) & 1) * 2 - 1
        return float(np.mean(np.abs(signs @ d) >= t - tol))
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK // m)
    hits = 0
    for start in range(0, n_perm, block):
        signs = rng.integers(0, 2, size=(min(block, n_perm - start), m)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ d) >= t - tol))
    return (hits + 1) / (n_perm + 1)


def _group_diff(num: np.ndarray, den: np.ndarray, masks: np.ndarray) -> np.ndarray:
    m = masks.astype(float)
    return (m @ num) / (m @ den) - ((1 - m) @ num) / ((1 - m) @ den)


def label_permutation_test(num, den, labels, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-tailed p-value of the difference of two ratios, ``sum(num[g]) / sum(den[g])`` for the clusters with
    ``labels`` True minus the same for False, under random relabelling of clusters (group sizes kept).  All
    ``comb(n, k)`` relabellings are enumerated when there are at most ``n_perm``, else ``n_perm`` are drawn."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    n, k = len(labels), int(labels.sum())
    if k == 0 or k == n:
        raise ValueError("a permutation test needs clusters in both groups")
    if np.any(den <= 0):
        raise ValueError("every cluster needs at least one rating")
    t = abs(float(_group_diff(num, den, labels[None])[0]))
    tol = _tol(t)
    if math.comb(n, k) <= n_perm:
        masks = np.zeros((math.comb(n, k), n), dtype=bool)
        for r, chosen in enumerate(itertools.combinations(range(n), k)):
            masks[r, list(chosen)] = True
        return float(np.mean(np.abs(_group_diff(num, den, masks)) >= t - tol))
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK // n)
    hits = 0
    for start in range(0, n_perm, block):
        masks = rng.permuted(np.tile(labels, (min(block, n_perm - start), 1)), axis=1)
        hits += int(np.sum(np.abs(_group_diff(num, den, masks)) >= t - tol))
    return (hits + 1) / (n_perm + 1)


def _axis_order(kind: str, seen: Iterable[str]) -> list[str]:
    known = [a.key for a in schema.AXES.get(kind, ())]
    seen = set(seen)
    return [k for k in known if k in seen] + sorted(seen - set(known))


def _ci(lo_hi) -> list[float]:
    return [float(lo_hi[0]), float(lo_hi[1])]


def pairwise_summary(ratings: Iterable[dict], n_boot: int = 10000, n_perm: int = 10000, seed: int = 0,
                     level: float = 0.95) -> list[dict]:
    """Summarise un-blinded pairwise ratings ``{"item": id, "sources": [s1, s2], "values": {axis: chosen}}``
    where ``chosen`` is a source name or "tie".  One entry per source pair (sorted names X < Y) with, per
    axis, ``fraction`` and ``ci`` for X, Y and "tie" (item-clustered bootstrap), ``preference`` (the mean over
    items of ``(#X - #Y) / #ratings``) and ``p_value`` (sign flips per item)."""
    by_pair: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(list))
    for r in ratings:
        pair = tuple(sorted(r["sources"]))
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ValueError(f"item {r['item']!r}: a pairwise rating needs two different sources, got {pair}")
        by_pair[pair][r["item"]].append(r["values"])
    out = []
    for (x, y), items in sorted(by_pair.items()):
        ids = sorted(items, key=str)
        axes = _axis_order("pairwise", {k for vs in items.values() for v in vs for k in v})
        info = {a.key: a for a in schema.PAIRWISE_AXES}
        summary: dict = {"sources": [x, y], "n_items": len(ids), "n_ratings": sum(len(v) for v in items.values()),
                         "axes": {}}
        for axis in axes:
            counts = []
            for i in ids:
                c = [0, 0, 0]
                for v in items[i]:
                    if axis not in v:
                        continue
                    choice = v[axis]
                    if choice not in (x, y, "tie"):
                        raise ValueError(f"item {i!r}, axis {axis!r}: {choice!r} is neither {x!r}, {y!r} nor 'tie'")
                    c[(x, y, "tie").index(choice)] += 1
                if sum(c):
                    counts.append(c)
            cnt = np.array(counts, dtype=float)
            n = cnt.sum(1)
            frac = cnt.sum(0) / n.sum()
            ci = bootstrap_ratio(cnt, n, n_boot=n_boot, seed=seed, level=level)
            d = (cnt[:, 0] - cnt[:, 1]) / n
            entry = {"n_items": len(cnt), "n_ratings": int(n.sum()),
                     "fraction": {x: float(frac[0]), y: float(frac[1]), "tie": float(frac[2])},
                     "ci": {x: _ci(ci[:, 0]), y: _ci(ci[:, 1]), "tie": _ci(ci[:, 2])},
                     "preference": float(d.mean()), "p_value": sign_flip_test(d, n_perm=n_perm, seed=seed)}
            if axis in info:
                entry.update(question=info[axis].question, risk=info[axis].risk)
            summary["axes"][axis] = entry
        out.append(summary)
    return out


def independent_summary(ratings: Iterable[dict], kind: str = "physician", n_boot: int = 10000,
                        n_perm: int = 10000, seed: int = 0, level: float = 0.95) -> dict:
    """Summarise independent ratings ``{"item": answer id, "source": name, "values": {axis: option}}`` of one
    kind ("physician" or "lay").  Per axis and source: ``fraction`` of ratings in the axis's high-quality bin
    and ``ci`` (bootstrap over answers); per pair of sources (sorted X < Y): ``difference`` X - Y and
    ``p_value`` (answer labels permuted)."""
    axes = {a.key: a for a in schema.axes_for(kind)}
    per: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for r in ratings:
        per[r["source"]][r["item"]].append(r["values"])
    sources = sorted(per)
    out: dict = {"kind": kind, "sources": sources,
                 "n_ratings": sum(len(v) for s in per.values() for v in s.values()), "axes": {}}
    for key, axis in axes.items():
        good = {}  # source -> (in-bin counts per answer, ratings per answer)
        for s in sources:
            y, n = [], []
            for i in sorted(per[s], key=str):
                vals = [v[key] for v in per[s][i] if key in v]
                if vals:
                    y.append(sum(v == axis.good for v in vals))
                    n.append(len(vals))
            if n:
                good[s] = (np.array(y, dtype=float), np.array(n, dtype=float))
        if not good:
            continue
        entry: dict = {"question": axis.question, "good": axis.good, "good_label": axis.good_label, "sources": {},
                       "tests": []}
        for s, (y, n) in good.items():
            entry["sources"][s] = {"n_answers": len(n), "n_ratings": int(n.sum()), "fraction": float(y.sum() / n.sum()),
                                   "ci": _ci(bootstrap_ratio(y, n, n_boot=n_boot, seed=seed, level=level))}
        for x, z in itertools.combinations(sorted(good), 2):
            (yx, nx), (yz, nz) = good[x], good[z]
            labels = np.r_[np.ones(len(nx), bool), np.zeros(len(nz), bool)]
            p = label_permutation_test(np.r_[yx, yz], np.r_[nx, nz], labels, n_perm=n_perm, seed=seed)
            entry["tests"].append({"sources": [x, z], "difference": float(yx.sum() / nx.sum() - yz.sum() / nz.sum()),
                                   "p_value": p})
        out["axes"][key] = entry
    return out


def study_records(session, study_id: int) -> dict[str, list[dict]]:
    """The ratings of a study as un-blinded records for the summaries, keyed by rating kind."""
    from .db import study_ratings, unblind

    recs: dict[str, list[dict]] = {"pairwise": [], "physician": [], "lay": []}
    for rating, rater, item in study_ratings(session, study_id):
        values = unblind(item, rating.kind, rating.values)
        if rating.kind == "pairwise":
            recs["pairwise"].append({"item": item.id, "rater": rater.name, "sources": [item.source_a, item.source_b],
                                     "values": values})
        else:
            recs.setdefault(rating.kind, []).append({"item": item.id, "rater": rater.name, "source": item.source_a,
                                                     "values": values})
    return recs


def study_stats(session, study_id: int, n_boot: int = 10000, n_perm: int = 10000, seed: int = 0,
                level: float = 0.95) -> dict:
    """All summaries of a study's ratings as a JSON-able dict: ``pairwise`` (a list, one entry per source
    pair), ``physician`` and ``lay`` (independent summaries)."""
    from .db import get_study

    study = get_study(session, study_id)
    recs = study_records(session, study.id)
    kw = {"n_boot": n_boot, "n_perm": n_perm, "seed": seed, "level": level}
    return {"study": {"id": study.id, "name": study.name}, "level": level, "n_boot": n_boot, "n_perm": n_perm,
            "seed": seed, "n_ratings": {k: len(v) for k, v in recs.items()},
            "pairwise": pairwise_summary(recs["pairwise"], **kw),
            "physician": independent_summary(recs["physician"], "physician", **kw),
            "lay": independent_summary(recs["lay"], "lay", **kw)}
