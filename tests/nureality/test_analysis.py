from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from discern.core.errors import DataError
from discern.nureality import analysis as A
from discern.nureality import pedestrian as P
from discern.nureality import scenarios

# participant -> decision times per scenario (None = never signalled safe)
TIMES = {
    "fast": {"P1": [4.1], "P2": [4.0], "P3": [5.0], "P4": [4.3], "P5": [4.6]},
    "baseline": {"P1": [5.0, 5.4], "P2": [4.8], "P3": [6.0, None], "P4": [5.5], "P5": [5.1]},
    "slow": {"P1": [5.9], "P2": [4.6], "P3": [6.35], "P4": [5.6], "P5": [5.6]},
    "never": {"P1": [None], "P2": [None], "P3": [None], "P4": [None], "P5": [None]},
}
BASE = np.array([5.2, 4.8, 6.0, 5.5, 5.1])
FAST = np.array([4.1, 4.0, 5.0, 4.3, 4.6])
SLOW = np.array([5.9, 4.6, 6.35, 5.6, 5.6])


def records():
    rows = []
    for sid, per in TIMES.items():
        for pid, times in per.items():
            for k, t in enumerate(times):
                rows.append({"participant": pid, "scenario": sid, "decision_time_s": t, "cross": t is not None,
                             "likert": {"0": 6 if sid == "fast" else 4, "1": k + 3}})
    rows.append({"participant": "P1", "scenario": "fast", "decision_time_s": 1.0, "cross": True, "complete": False})
    return rows


def test_participant_means_average_the_repetitions_with_a_decision():
    m = A.participant_means(records())
    assert m["baseline"] == pytest.approx(dict(zip(["P1", "P2", "P3", "P4", "P5"], BASE)), abs=1e-12)
    assert m["fast"]["P1"] == 4.1  # the incomplete trial is left out
    assert "never" not in m


def test_summary_matches_numpy_and_scipy():
    summary = A.summarize(records(), seed=3, resamples=500)
    assert [r["scenario"] for r in summary] == ["baseline", "fast", "slow", "never"]
    base = summary[0]
    assert base["baseline"] is True and summary[1]["baseline"] is False
    assert (base["n"], base["n_trials"], base["n_never"], base["n_incomplete"]) == (5, 7, 1, 0)
    assert base["mean"] == pytest.approx(5.32, abs=1e-12)
    assert base["median"] == pytest.approx(5.2, abs=1e-12)
    assert base["sd"] == pytest.approx(float(np.std(BASE, ddof=1)), abs=1e-12)
    lo, hi = stats.t.interval(0.95, 4, loc=BASE.mean(), scale=stats.sem(BASE))
    assert base["ci_t"] == pytest.approx((lo, hi), abs=1e-12)
    half = stats.t.ppf(0.975, 4) * np.std(BASE, ddof=1) / math.sqrt(5)
    assert base["ci_t"] == pytest.approx((5.32 - half, 5.32 + half), abs=1e-12)
    boot = BASE[np.random.default_rng(3).integers(0, 5, size=(500, 5))].mean(axis=1)
    assert base["ci_boot"] == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-12)
    assert base["ci_boot"][0] < base["mean"] < base["ci_boot"][1]
    assert base["cross_rate"] == pytest.approx(6 / 7, abs=1e-12)
    assert base["likert"] == pytest.approx({"0": 4.0, "1": (3 + 4 + 3 + 4 + 3 + 3 + 3) / 7}, abs=1e-12)
    fast = summary[1]
    assert (fast["n"], fast["n_trials"], fast["n_incomplete"]) == (5, 5, 1)
    assert fast["mean"] == pytest.approx(FAST.mean(), abs=1e-12) and fast["likert"]["0"] == 6.0
    never = summary[3]
    assert (never["n"], never["n_never"], never["mean"], never["sd"], never["ci_t"], never["ci_boot"]) == \
        (0, 5, None, None, None, None)
    assert never["cross_rate"] == 0.0
    assert A.summarize(records(), seed=3, resamples=500) == summary
    assert A.summarize(records(), seed=4, resamples=500)[0]["ci_boot"] != base["ci_boot"]
    assert [r["scenario"] for r in A.summarize(records(), order=["slow", "baseline"])] == \
        ["slow", "baseline", "fast", "never"]


def test_paired_comparisons_match_scipy_and_hand_values():
    comps = {r["scenario"]: r for r in A.compare(records())}
    assert sorted(comps) == ["fast", "never", "slow"]
    fast, slow = comps["fast"], comps["slow"]
    d = FAST - BASE
    assert fast["n_pairs"] == 5 and fast["df"] == 4
    assert fast["mean_diff"] == pytest.approx(-0.92, abs=1e-12)
    t = d.mean() / (np.std(d, ddof=1) / math.sqrt(5))
    assert fast["t"] == pytest.approx(t, abs=1e-9)
    assert fast["p_t"] == pytest.approx(2 * stats.t.sf(abs(t), 4), abs=1e-12)
    ref = stats.ttest_rel(FAST, BASE)
    assert (fast["t"], fast["p_t"]) == pytest.approx((ref.statistic, ref.pvalue), abs=1e-12)
    assert fast["d_z"] == pytest.approx(d.mean() / np.std(d, ddof=1), abs=1e-12)
    # Wilcoxon, exact: all five differences negative => W = 0, p = 2 / 2^5
    assert (fast["w"], fast["p_w"]) == (0.0, pytest.approx(0.0625, abs=1e-15))
    # slow: differences 0.7, -0.2, 0.35, 0.1, 0.5 -> ranks 5, 2, 3, 1, 4; W = 2; P(W <= 2) = 3 / 32
    assert (slow["w"], slow["p_w"]) == (2.0, pytest.approx(2 * 3 / 32, abs=1e-15))
    ds = SLOW - BASE
    assert slow["d_z"] == pytest.approx(ds.mean() / np.std(ds, ddof=1), abs=1e-12)
    p1, p2 = fast["p_t"], slow["p_t"]
    assert p1 < p2  # fast differs more clearly: Holm multiplies it by 2, slow by 1 (and keeps the order)
    assert fast["p_t_holm"] == pytest.approx(min(1.0, 2 * p1), abs=1e-15)
    assert slow["p_t_holm"] == pytest.approx(max(min(1.0, 2 * p1), p2), abs=1e-15)
    assert (fast["p_w_holm"], slow["p_w_holm"]) == pytest.approx((0.125, 0.1875), abs=1e-15)
    never = comps["never"]
    assert never["n_pairs"] == 0 and never["t"] is None and never["p_t"] is None and never["p_t_holm"] is None


def test_holm_correction_is_exact():
    assert A.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert A.holm([0.5, None, 0.2]) == [0.5, None, 0.4]
    assert A.holm([0.6, 0.7]) == [1.0, 1.0]
    assert A.holm([]) == []


def test_bad_records_are_named():
    rows = records()
    rows[1]["decision_time_s"] = "abc"
    with pytest.raises(DataError) as e:
        A.summarize(rows)
    assert str(e.value) == "trial record 1: decision_time_s must be a finite number or null, got 'abc'"
    rows = records()
    del rows[2]["scenario"]
    with pytest.raises(DataError, match=r"^trial record 2: field 'scenario' is missing$"):
        A.compare(rows)
    rows = records()
    rows[0]["likert"] = {"0": 9}
    with pytest.raises(DataError, match=r"^trial record 0: likert item '0' must be a number in 1..7, got 9$"):
        A.summarize(rows)
    with pytest.raises(DataError, match=r"^trial records: no trials of the baseline scenario 'baseline'$"):
        A.compare([r for r in records() if r["scenario"] != "baseline"])


def test_plot_writes_a_png_atomically(tmp_path):
    out = A.plot(A.summarize(records(), resamples=200), tmp_path / "plots" / "rt.png")
    assert out == tmp_path / "plots" / "rt.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["rt.png"]
    with pytest.raises(DataError, match="nothing to plot"):
        A.plot([r for r in A.summarize(records()) if r["scenario"] == "never"], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_simulated_study_reproduces_the_published_direction(tmp_path):
    lib = scenarios.library()
    result = A.analyze(P.simulate_study(lib, n_participants=40, seed=0), seed=0, resamples=500)
    summary = {r["scenario"]: r for r in result["summary"]}
    comps = {r["scenario"]: r for r in result["comparisons"]}
    assert summary["baseline"]["n"] == 40 and summary["no_yield"]["n_never"] >= 36
    for sid in ("early_eased", "stop_farther", "combined"):
        assert comps[sid]["mean_diff"] < 0 and comps[sid]["p_t_holm"] < 0.05 and comps[sid]["d_z"] < 0, sid
    assert A.plot(result["summary"], tmp_path / "sim.png").stat().st_size > 0
