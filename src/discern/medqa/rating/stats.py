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
Every interval and test is :mod:`discern.metrics.stats`'s (``cluster_bootstrap_ratio``,
``sign_flip_test``, ``cluster_permutation_ratio_test``); all draws come from
``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from discern.metrics import stats

from . import schema


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
            ci = np.asarray(stats.cluster_bootstrap_ratio(cnt, n, n_resamples=n_boot, seed=seed, level=level)["ci"])
            d = (cnt[:, 0] - cnt[:, 1]) / n
            entry = {"n_items": len(cnt), "n_ratings": int(n.sum()),
                     "fraction": {x: float(frac[0]), y: float(frac[1]), "tie": float(frac[2])},
                     "ci": {x: _ci(ci[:, 0]), y: _ci(ci[:, 1]), "tie": _ci(ci[:, 2])},
                     "preference": float(d.mean()),
                     "p_value": stats.sign_flip_test(d, n_resamples=n_perm, seed=seed)["p_value"]}
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
                                   "ci": _ci(stats.cluster_bootstrap_ratio(y, n, n_resamples=n_boot, seed=seed,
                                                                            level=level)["ci"])}
        for x, z in itertools.combinations(sorted(good), 2):
            (yx, nx), (yz, nz) = good[x], good[z]
            p = stats.cluster_permutation_ratio_test(yx, nx, yz, nz, n_resamples=n_perm, seed=seed)["p_value"]
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


SUMMARY_COLUMNS = ("kind", "axis", "comparison", "source", "statistic", "value", "ci_low", "ci_high", "n_items",
                   "n_ratings", "p_value")


def summary_rows(res: dict) -> list[dict]:
    """The summaries as flat rows (``SUMMARY_COLUMNS``): pairwise fractions per source pair, axis and choice;
    independent fractions per kind, axis and source; independent differences between sources."""
    rows = []
    for pair in res["pairwise"]:
        comp = " vs ".join(pair["sources"])
        for axis, e in pair["axes"].items():
            for k in (*pair["sources"], "tie"):
                rows.append({"kind": "pairwise", "axis": axis, "comparison": comp, "source": k,
                             "statistic": "fraction", "value": e["fraction"][k], "ci_low": e["ci"][k][0],
                             "ci_high": e["ci"][k][1], "n_items": e["n_items"], "n_ratings": e["n_ratings"],
                             "p_value": e["p_value"]})
    for kind in ("physician", "lay"):
        for axis, e in res[kind]["axes"].items():
            for src, v in e["sources"].items():
                rows.append({"kind": kind, "axis": axis, "comparison": "", "source": src, "statistic": "fraction",
                             "value": v["fraction"], "ci_low": v["ci"][0], "ci_high": v["ci"][1],
                             "n_items": v["n_answers"], "n_ratings": v["n_ratings"], "p_value": ""})
            for t in e["tests"]:
                rows.append({"kind": kind, "axis": axis, "comparison": " vs ".join(t["sources"]), "source": "",
                             "statistic": "difference", "value": t["difference"], "ci_low": "", "ci_high": "",
                             "n_items": "", "n_ratings": "", "p_value": t["p_value"]})
    return rows
