"""Analysis of a nuReality study: decision times per scenario and repeated-measures comparisons with baseline.

From the publications: the primary measure is **how quickly the pedestrian decides it is safe to cross**
(relative to the vehicle's onset), with **repeated surveys of subjective experience**; expressive
behaviours such as easing into a stop or stopping farther away gave **quicker decisions**.  The paper's
statistical methods are not in our sources; the procedure below is our choice (assumption), the usual one
for a within-subject design:

- The unit is the **participant**: each participant's decision time in a scenario is the mean over that
  scenario's repetitions in which they signalled safe (trials without a "safe" signal count in
  ``n_never``, not in the mean; a participant with none in a scenario has no value there).
- **Summary** per scenario over participants: n, mean, median, sd (ddof 1), the 95% t-interval
  ``mean +- t(0.975, n - 1) sd / sqrt(n)`` and a seeded percentile **bootstrap** interval of the mean
  (participants resampled with replacement), plus the crossing rate and the mean of each Likert item.
- **Comparison** of each scenario with the baseline on paired participant means: differences
  ``scenario - baseline``, the paired t-test (``scipy.stats.ttest_rel``), the Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``, two-sided, zero differences dropped), Cohen's ``d_z = mean(diff) / sd(diff)``,
  and **Holm**-corrected p-values over the family of comparisons (separately for t and Wilcoxon).

A trial record is a dict with ``participant``, ``scenario``, ``decision_time_s`` (seconds or None),
``cross`` (bool or None) and optionally ``likert`` (``{item: value}`` or a list of values, 1..7) and
``complete`` (records with ``complete: false`` are left out and counted in ``n_incomplete``).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from discern.core.errors import DataError

BOOTSTRAP_RESAMPLES = 2000


def _records(records: Iterable[dict]) -> list[dict]:
    """Validated copies of the trial records (DataError names the record and the field)."""
    out = []
    for i, r in enumerate(records):
        where = f"trial record {i}"
        if not isinstance(r, dict):
            raise DataError(f"{where}: must be an object, got {type(r).__name__}")
        for key in ("participant", "scenario", "decision_time_s"):
            if key not in r:
                raise DataError(f"{where}: field {key!r} is missing")
        if not isinstance(r["participant"], (str, int)) or isinstance(r["participant"], bool):
            raise DataError(f"{where}: participant must be a string or integer, got {r['participant']!r}")
        if not isinstance(r["scenario"], str) or not r["scenario"]:
            raise DataError(f"{where}: scenario must be a non-empty string, got {r['scenario']!r}")
        t = r["decision_time_s"]
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
            raise DataError(f"{where}: decision_time_s must be a finite number or null, got {t!r}")
        cross = r.get("cross")
        if cross is not None and not isinstance(cross, bool):
            raise DataError(f"{where}: cross must be true, false or null, got {cross!r}")
        likert = r.get("likert") or {}
        if isinstance(likert, list):
            likert = {str(k): v for k, v in enumerate(likert)}
        if not isinstance(likert, dict):
            raise DataError(f"{where}: likert must be an object or a list, got {type(likert).__name__}")
        for item, value in likert.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 7:
                raise DataError(f"{where}: likert item {item!r} must be a number in 1..7, got {value!r}")
        complete = r.get("complete", True)
        out.append({"participant": str(r["participant"]), "scenario": r["scenario"],
                    "decision_time_s": None if t is None else float(t), "cross": cross,
                    "likert": {str(k): float(v) for k, v in likert.items()}, "complete": complete is not False})
    return out


def _order(recs: list[dict], baseline: str | None, order: Iterable[str] | None) -> list[str]:
    seen = list(dict.fromkeys(r["scenario"] for r in recs))
    if order is not None:
        order = list(order)
        return order + [s for s in seen if s not in order]
    if baseline in seen:
        seen.remove(baseline)
        seen.insert(0, baseline)
    return seen


def participant_means(records: Iterable[dict]) -> dict[str, dict[str, float]]:
    """``{scenario: {participant: mean decision time over the trials where they signalled safe}}``."""
    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in _records(records):
        if r["complete"] and r["decision_time_s"] is not None:
            times[r["scenario"]][r["participant"]].append(r["decision_time_s"])
    return {s: {p: float(np.mean(v)) for p, v in ps.items()} for s, ps in times.items()}


def t_interval(values, confidence: float = 0.95) -> tuple[float, float] | None:
    """``mean +- t((1 + confidence) / 2, n - 1) * sd / sqrt(n)``; None for fewer than 2 values."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, x.size - 1)) * float(np.std(x, ddof=1)) / math.sqrt(x.size)
    m = float(np.mean(x))
    return m - half, m + half


def bootstrap_interval(values, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                       confidence: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean: ``resamples`` resamples with replacement drawn by
    ``np.random.default_rng(seed).integers(0, n, (resamples, n))``; None for fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(means, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(lo), float(hi)


def summarize(records: Iterable[dict], baseline: str = "baseline", order: Iterable[str] | None = None,
              seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> list[dict[str, Any]]:
    """One row per scenario (baseline first, then first appearance, or ``order``); see the module docstring."""
    recs = _records(records)
    means = participant_means(recs)
    rows = []
    for sid in _order(recs, baseline, order):
        mine = [r for r in recs if r["scenario"] == sid]
        done = [r for r in mine if r["complete"]]
        x = np.array(list(means.get(sid, {}).values()), dtype=np.float64)
        crosses = [r["cross"] for r in done if r["cross"] is not None]
        items: dict[str, list[float]] = defaultdict(list)
        for r in done:
            for item, value in r["likert"].items():
                items[item].append(value)
        n = int(x.size)
        rows.append({
            "scenario": sid, "baseline": sid == baseline, "n": n,
            "n_trials": len(done), "n_never": sum(r["decision_time_s"] is None for r in done),
            "n_incomplete": len(mine) - len(done),
            "mean": float(np.mean(x)) if n else None,
            "median": float(np.median(x)) if n else None,
            "sd": float(np.std(x, ddof=1)) if n >= 2 else None,
            "ci_t": t_interval(x), "ci_boot": bootstrap_interval(x, seed=seed, resamples=resamples),
            "cross_rate": (sum(crosses) / len(crosses)) if crosses else None,
            "likert": {item: float(np.mean(v)) for item, v in sorted(items.items())},
        })
    return rows


def holm(pvalues: Iterable[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None entries stay None and do not count in the family).

    Sorted ascending ``p_(1) <= ... <= p_(m)``: ``adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))``.
    """
    ps = list(pvalues)
    valid = [(p, i) for i, p in enumerate(ps) if p is not None]
    m = len(valid)
    out: list[float | None] = [None] * len(ps)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(valid)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def compare(records: Iterable[dict], baseline: str = "baseline",
            order: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Each scenario against ``baseline`` on participants who have a decision time in both."""
    from scipy import stats

    recs = _records(records)
    means = participant_means(recs)
    if baseline not in {r["scenario"] for r in recs}:
        raise DataError(f"trial records: no trials of the baseline scenario {baseline!r}")
    base = means.get(baseline, {})
    rows = []
    for sid in _order(recs, baseline, order):
        if sid == baseline:
            continue
        other = means.get(sid, {})
        ids = sorted(set(base) & set(other))
        a = np.array([other[p] for p in ids], dtype=np.float64)
        b = np.array([base[p] for p in ids], dtype=np.float64)
        d = a - b
        row = {"scenario": sid, "n_pairs": len(ids), "mean_diff": float(np.mean(d)) if ids else None,
               "sd_diff": None, "t": None, "df": None, "p_t": None, "d_z": None, "w": None, "p_w": None}
        if len(ids) >= 2:
            sd = float(np.std(d, ddof=1))
            row["sd_diff"] = sd
            if sd > 0:
                res = stats.ttest_rel(a, b)
                row.update(t=float(res.statistic), df=len(ids) - 1, p_t=float(res.pvalue), d_z=float(np.mean(d)) / sd)
            if np.any(d != 0):
                w = stats.wilcoxon(d)
                row.update(w=float(w.statistic), p_w=float(w.pvalue))
        rows.append(row)
    for key in ("p_t", "p_w"):
        for row, adj in zip(rows, holm([r[key] for r in rows])):
            row[f"{key}_holm"] = adj
    return rows


def analyze(records: Iterable[dict], baseline: str = "baseline", order: Iterable[str] | None = None,
            seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, list[dict[str, Any]]]:
    """``{"summary": summarize(...), "comparisons": compare(...)}``."""
    recs = _records(records)
    return {"summary": summarize(recs, baseline, order, seed, resamples), "comparisons": compare(recs, baseline, order)}


def plot(summary: list[dict[str, Any]], path: str | Path, title: str = "Decision time to 'safe to cross'") -> Path:
    """Mean decision time per scenario with its 95% t-interval (black) and bootstrap interval (gray); the
    baseline bar is highlighted and a scenario without any decision is labelled "never safe".  Written
    atomically (temporary name, then rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    rows = list(summary)
    if not any(r["mean"] is not None for r in rows):
        raise DataError(f"{path}: nothing to plot (no scenario has a decision time)")
    fig = Figure(figsize=(max(6.0, 0.8 * len(rows) + 2.0), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = np.arange(len(rows))
    means = np.array([np.nan if r["mean"] is None else r["mean"] for r in rows])
    colors = ["#d62728" if r.get("baseline") else "#1f77b4" for r in rows]
    ax.bar(xs, np.nan_to_num(means), color=colors, alpha=0.75, edgecolor="black", linewidth=0.6)
    for x, r in zip(xs, rows):
        if r["mean"] is None:  # shown, not dropped: a scenario nobody judged safe
            ax.text(x, 0.5, f"never safe\n({r['n_never']} trials)", ha="center", va="center", fontsize=7,
                    rotation=90, transform=ax.get_xaxis_transform())
            continue
        if r["ci_t"] is not None:
            ax.errorbar([x], [r["mean"]], yerr=[[r["mean"] - r["ci_t"][0]], [r["ci_t"][1] - r["mean"]]],
                        fmt="none", ecolor="black", capsize=4, linewidth=1.2)
        if r["ci_boot"] is not None:
            ax.plot([x + 0.18, x + 0.18], r["ci_boot"], color="gray", linewidth=2.5, solid_capstyle="butt")
        ax.text(x, 0.02, f"n={r['n']}", ha="center", va="bottom", fontsize=7, transform=ax.get_xaxis_transform())
    base = [r for r in rows if r.get("baseline")]
    if base:
        ax.axhline(base[0]["mean"], color="#d62728", linestyle="--", linewidth=0.8, label="baseline mean")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels([r["scenario"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("seconds after vehicle onset")
    ax.set_title(title + "\n(black: 95% t-interval; gray: bootstrap interval)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
