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

Every interval and test is :mod:`discern.metrics.stats`'s (``mean_interval``, ``bootstrap_ci``,
``paired_t``, ``wilcoxon_signed_rank``, ``holm``).

**Claims** (:func:`decision_claims`): "easing into a stop" and "stopping farther away" lead to quicker
decisions than the baseline stop.  Each is a one-sided paired t-test (scenario < baseline) on participant
means, Holm-adjusted over the two claims: ``held`` when the adjusted p is below 0.05, ``not held`` when
the 95% t-interval of the paired difference lies wholly above 0 (slower decisions), ``inconclusive``
otherwise.  Trials of simulated pedestrians (our decision model) test our own platform, so their claims
get the verdict ``self-test`` whatever the numbers.

A trial record is a dict with ``participant``, ``scenario``, ``decision_time_s`` (seconds or None),
``cross`` (bool or None) and optionally ``likert`` (``{item: value}`` or a list of values, 1..7),
``complete`` (records with ``complete: false`` are left out and counted in ``n_incomplete``) and
``study`` (the study's name).  :func:`read_trials` reads them from the study's CSV export or a JSON list.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from discern.core.errors import DataError
from discern.core.files import brief, is_finite_number, read_json
from discern.metrics import stats

BOOTSTRAP_RESAMPLES = 2000


def _records(records: Iterable[dict]) -> list[dict]:
    """Validated copies of the trial records (DataError names the record and the field)."""
    return [_record(r, f"trial record {i}") for i, r in enumerate(records)]


def _record(r: Any, where: str) -> dict:
    """One validated copy of a trial record; a DataError starts with ``where``."""
    if not isinstance(r, dict):
        raise DataError(f"{where}: must be an object, got {type(r).__name__}")
    for key in ("participant", "scenario", "decision_time_s"):
        if key not in r:
            raise DataError(f"{where}: field {key!r} is missing")
    if not isinstance(r["participant"], (str, int)) or isinstance(r["participant"], bool):
        raise DataError(f"{where}: participant must be a string or integer, got {brief(r['participant'])}")
    if not isinstance(r["scenario"], str) or not r["scenario"]:
        raise DataError(f"{where}: scenario must be a non-empty string, got {brief(r['scenario'])}")
    t = r["decision_time_s"]
    if t is not None and not is_finite_number(t):
        raise DataError(f"{where}: decision_time_s must be a finite number or null, got {brief(t)}")
    cross = r.get("cross")
    if cross is not None and not isinstance(cross, bool):
        raise DataError(f"{where}: cross must be true, false or null, got {brief(cross)}")
    likert = r.get("likert") or {}
    if isinstance(likert, list):
        likert = {str(k): v for k, v in enumerate(likert)}
    if not isinstance(likert, dict):
        raise DataError(f"{where}: likert must be an object or a list, got {type(likert).__name__}")
    for item, value in likert.items():
        if not is_finite_number(value) or not 1 <= value <= 7:
            raise DataError(f"{where}: likert item {brief(item)} must be a number in 1..7, got {brief(value)}")
    complete = r.get("complete", True)
    return {"participant": str(r["participant"]), "scenario": r["scenario"],
            "decision_time_s": None if t is None else float(t), "cross": cross,
            "likert": {str(k): float(v) for k, v in likert.items()}, "complete": complete is not False}


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
    """``mean +- t((1 + confidence) / 2, n - 1) * sd / sqrt(n)`` (``stats.mean_interval``); None for fewer
    than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    lo, hi = stats.mean_interval(x, level=confidence)["ci"]
    return lo, hi


def bootstrap_interval(values, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                       confidence: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean (``stats.bootstrap_ci``): ``resamples`` resamples with
    replacement, indices ``np.random.default_rng(seed).integers(0, n, (resamples, n))``; None for fewer
    than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    lo, hi = stats.bootstrap_ci(x, np.mean, n_resamples=resamples, level=confidence, seed=seed,
                                method="percentile")["ci"]
    return lo, hi


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
    """Holm-Bonferroni adjusted p-values (``stats.holm``; None entries stay None and are not in the family)."""
    return stats.holm(list(pvalues))


def compare(records: Iterable[dict], baseline: str = "baseline",
            order: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Each scenario against ``baseline`` on participants who have a decision time in both: the paired
    difference with its 95% t-interval (``ci_diff``), the two-sided paired t-test (``p_t``), the one-sided
    one of "quicker than the baseline" (``p_t_less``), the Wilcoxon signed-rank test (``p_w``), ``d_z`` and
    Holm-adjusted ``p_t_holm`` / ``p_w_holm`` over the scenarios."""
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
               "sd_diff": None, "ci_diff": None, "t": None, "df": None, "p_t": None, "p_t_less": None, "d_z": None,
               "w": None, "p_w": None}
        if len(ids) >= 2:
            sd = float(np.std(d, ddof=1))
            row["sd_diff"] = sd
            if sd > 0:
                two = stats.paired_t(a, b)
                row.update(t=two["t"], df=two["df"], p_t=two["p_value"], ci_diff=two["ci"],
                           p_t_less=stats.paired_t(a, b, alternative="less")["p_value"], d_z=float(np.mean(d)) / sd)
            if np.any(d != 0):
                w = stats.wilcoxon_signed_rank(a, b)
                row.update(w=w["statistic"], p_w=w["p_value"])
        rows.append(row)
    for key in ("p_t", "p_w"):
        for row, adj in zip(rows, stats.holm([r[key] for r in rows])):
            row[f"{key}_holm"] = adj
    return rows


def analyze(records: Iterable[dict], baseline: str = "baseline", order: Iterable[str] | None = None,
            seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, list[dict[str, Any]]]:
    """``{"summary": summarize(...), "comparisons": compare(...)}``."""
    recs = _records(records)
    return {"summary": summarize(recs, baseline, order, seed, resamples), "comparisons": compare(recs, baseline, order)}


#: the published finding (RA-L 2022 abstract; no numbers published) and the scenarios that test it
PAPER_FINDING = ("expressive behaviours such as easing into a full stop or stopping farther away can help "
                 "pedestrians make quicker decisions to cross (RA-L 2022 abstract; no numbers published)")
CLAIM_SCENARIOS = (("early_eased", "easing into a stop"), ("stop_farther", "stopping farther away"))
SIMULATED_NOTE = ("simulated pedestrians (our evidence-accumulation decision model, parameters set by hand, not "
                  "fitted to people) through the study server")


def decision_claims(result: dict, simulated: bool, n_participants: int | None = None, baseline: str = "baseline",
                    alpha: float = 0.05) -> list:
    """The claims "easing into a stop / stopping farther away leads to quicker decisions to cross than the
    baseline stop" from :func:`analyze`'s result (see the module docstring for the test).  ``simulated``:
    the trials come from our simulated pedestrian, so the verdict is ``self-test`` (the numbers still
    say whether the platform's analysis recovers what the simulation builds in)."""
    from discern.core import Claim

    summary = {r["scenario"]: r for r in result["summary"]}
    comp = {r["scenario"]: r for r in result["comparisons"]}
    present = [(sid, words) for sid, words in CLAIM_SCENARIOS if sid in comp]
    adj = dict(zip([sid for sid, _ in present], stats.holm([comp[sid]["p_t_less"] for sid, _ in present])))
    test = (f"one-sided paired t-test of participant mean decision times ({{sid}} < {baseline}), Holm-adjusted over "
            f"the {len(present)} claims; held if the adjusted p < {alpha}, not held if the 95% t-interval of the "
            "difference lies above 0")
    who = SIMULATED_NOTE if simulated else "participants"
    claims = []
    for sid, words in present:
        c, p = comp[sid], adj[sid]
        statement = f"{words} leads to quicker decisions to cross than the baseline stop"
        if p is None:
            ours = (f"{sid}: not testable: {c['n_pairs']} participants with decisions in both scenarios"
                    + (" and no spread in their differences" if c["n_pairs"] >= 2 else ""))
            if simulated:
                ours += f"; {who}"
            claims.append(Claim(statement=statement, paper=PAPER_FINDING, ours=ours, test=test.format(sid=sid),
                                verdict="self-test" if simulated else "inconclusive"))
            continue
        lo, hi = c["ci_diff"]
        n = n_participants if n_participants is not None else c["n_pairs"]
        ours = (f"{sid}: {summary[sid]['mean']:.2f} s vs baseline {summary[baseline]['mean']:.2f} s, paired "
                f"difference {c['mean_diff']:+.2f} s [{lo:+.2f}, {hi:+.2f}] (d_z {c['d_z']:.2f}, Holm p {p:.2g}, "
                f"{c['n_pairs']} of {n} {who})")
        if p < alpha and c["mean_diff"] < 0:
            verdict = "held"
        elif lo > 0:
            verdict = "not held"
        else:
            verdict = "inconclusive"
        if simulated:
            found = {"held": "recovers the quicker decisions built into the simulation",
                     "not held": "finds slower decisions", "inconclusive": "finds no clear difference"}[verdict]
            ours += f"; the platform's analysis {found}: a test of our platform, not evidence about people"
            verdict = "self-test"
        claims.append(Claim(statement=statement, paper=PAPER_FINDING, ours=ours, test=test.format(sid=sid),
                            p_value=p, ci=(lo, hi), verdict=verdict, level=1 - alpha))
    return claims


def is_simulated(records: Iterable[dict]) -> bool:
    """Whether trial records come from a simulated study: every record names a study, and each name starts
    with ``simulated-`` (the name the reproduction gives its studies)."""
    names = [r.get("study") for r in records]
    return bool(names) and all(isinstance(n, str) and n.startswith("simulated-") for n in names)


def read_trials(path: str | Path) -> list[dict]:
    """Trial records from a study's CSV export (``.csv``) or a JSON list of records (``.json``); a bad
    file or value is a DataError naming the file and the line (the record, in a JSON list), and so is a
    file without any trial."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of trial records")
        for i, r in enumerate(data):
            _record(r, f"{path}: trial record {i}")  # checked here, so that the message names the file
        if not data:
            raise DataError(f"{path}: no trial records")
        return data
    out = []
    rows = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = csv.DictReader(f)
            need = {"participant", "scenario", "decision_time_s"}
            if not need <= set(rows.fieldnames or ()):
                raise DataError(f"{path}: a trials CSV needs the columns {sorted(need)} (the study export)")
            for i, r in enumerate(rows, 2):
                if None in r or any(v is None for v in r.values()):
                    raise DataError(f"{path}:{i}: expected {len(rows.fieldnames)} columns")
                try:
                    t = float(r["decision_time_s"]) if r["decision_time_s"] else None
                except ValueError:
                    raise DataError(f"{path}:{i}: decision_time_s must be a number or empty, "
                                    f"got {brief(r['decision_time_s'])}") from None
                likert = {}
                for k, v in r.items():
                    if k.startswith("likert_") and v:
                        try:
                            likert[k[len("likert_"):]] = float(v)
                        except ValueError:
                            raise DataError(f"{path}:{i}: {brief(k, quote=False)} must be a number or empty, "
                                            f"got {brief(v)}") from None
                rec = {"participant": r["participant"], "scenario": r["scenario"], "decision_time_s": t,
                       "cross": {"true": True, "false": False}.get(r.get("cross", "")), "likert": likert,
                       "complete": r.get("complete", "true") != "false"}
                if r.get("study"):
                    rec["study"] = r["study"]
                _record(rec, f"{path}:{i}")  # NaN, inf, a Likert value outside 1..7, an empty scenario
                out.append(rec)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:  # e.g. a field longer than csv.field_size_limit()
        line = rows.line_num if rows is not None else 1
        raise DataError(f"{path}:{line}: unreadable CSV ({brief(str(e), 100, quote=False)})") from None
    if not out:
        raise DataError(f"{path}: no trial records (only a header)")
    return out


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
