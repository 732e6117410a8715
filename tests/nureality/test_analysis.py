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


# --- the claims: real verdicts from trials of people, self-tests from simulated pedestrians -------------

def _claim_records(eased, farther, base):
    rows = []
    for sid, times in (("baseline", base), ("early_eased", eased), ("stop_farther", farther)):
        for j, t in enumerate(times):
            rows.append({"participant": f"P{j}", "scenario": sid, "decision_time_s": t, "cross": True})
    return rows


def test_claims_from_people_get_the_verdict_of_the_paired_test_with_holm():
    base = [5.2, 4.8, 6.0, 5.5, 5.1]
    eased = [4.1, 4.0, 5.0, 4.3, 4.6]  # quicker for everyone
    farther = [5.9, 4.6, 6.35, 5.6, 5.6]  # mixed, slower on average
    res = A.analyze(_claim_records(eased, farther, base), resamples=200)
    claims = {c.statement.split(" leads")[0]: c for c in A.decision_claims(res, simulated=False)}
    p_e = stats.ttest_rel(eased, base, alternative="less").pvalue
    p_f = stats.ttest_rel(farther, base, alternative="less").pvalue
    holm = [min(1.0, 2 * p_e), max(min(1.0, 2 * p_e), p_f)]  # p_e < p_f
    e, f = claims["easing into a stop"], claims["stopping farther away"]
    assert (e.p_value, f.p_value) == pytest.approx(holm, abs=1e-12)
    assert e.verdict == "held" and e.p_value < 0.05
    d = np.array(farther) - np.array(base)
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert f.ci == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-12)
    assert f.ci[0] < 0 < f.ci[1] and f.verdict == "inconclusive"  # slower on average, but the interval spans 0
    assert "one-sided paired t-test" in e.test and "Holm" in e.test and e.paper == A.PAPER_FINDING
    # everyone clearly slower when stopping farther away: the interval lies above 0, so not held
    slow = A.analyze(_claim_records(eased, [6.1, 5.9, 7.0, 6.4, 6.3], base), resamples=200)
    (_, f2) = A.decision_claims(slow, simulated=False)
    assert f2.ci[0] > 0 and f2.verdict == "not held"


def test_claims_from_simulated_pedestrians_are_self_tests():
    res = A.analyze(P.simulate_study(scenarios.library(), n_participants=12, seed=0), resamples=200)
    claims = A.decision_claims(res, simulated=True, n_participants=12)
    assert [c.verdict for c in claims] == ["self-test", "self-test"]
    for c in claims:
        assert "simulated pedestrians" in c.ours and "parameters set by hand" in c.ours
        assert "not evidence about people" in c.ours and c.p_value is not None
    # too few participants to test: no p-value, and still a self-test
    few = A.analyze(P.simulate_study(scenarios.library()[:5], n_participants=1, seed=0), resamples=50)
    (e, f) = A.decision_claims(few, simulated=True)
    assert (e.verdict, e.p_value, e.ci) == ("self-test", None, None) and "not testable" in e.ours
    assert A.decision_claims(few, simulated=False)[0].verdict == "inconclusive"


def test_is_simulated_needs_every_record_from_a_simulated_study():
    assert A.is_simulated([{"study": "simulated-0"}, {"study": "simulated-3"}])
    assert not A.is_simulated([{"study": "simulated-0"}, {"study": "pilot"}])
    assert not A.is_simulated([{"participant": "P1"}]) and not A.is_simulated([])


def test_read_trials_names_the_file_and_line(tmp_path):
    good = tmp_path / "t.csv"
    good.write_text("study,participant,scenario,decision_time_s,cross,likert_0,complete\n"
                    "pilot,P1,baseline,5.0,true,4,true\npilot,P1,no_yield,,false,,true\n")
    assert A.read_trials(good) == [
        {"participant": "P1", "scenario": "baseline", "decision_time_s": 5.0, "cross": True, "likert": {"0": 4.0},
         "complete": True, "study": "pilot"},
        {"participant": "P1", "scenario": "no_yield", "decision_time_s": None, "cross": False, "likert": {},
         "complete": True, "study": "pilot"}]
    cases = [
        ("a.csv", "participant,scenario\nP1,baseline\n",
         "a.csv: a trials CSV needs the columns ['decision_time_s', 'participant', 'scenario'] (the study export)"),
        ("b.csv", "participant,scenario,decision_time_s\nP1,baseline,5,extra\n", "b.csv:2: expected 3 columns"),
        ("c.csv", "participant,scenario,decision_time_s,likert_0\nP1,baseline,5,lots\n",
         "c.csv:2: likert_0 must be a number or empty, got 'lots'"),
        ("d.json", "[{", "d.json: invalid JSON at line 1, column 3"),
        ("e.json", '{"a": 1}', "e.json: expected a JSON list of trial records"),
    ]
    for name, text, msg in cases:
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError) as e:
            A.read_trials(tmp_path / name)
        assert str(e.value).startswith(f"{tmp_path / name}{msg[len(name):]}"), str(e.value)
    with pytest.raises(DataError, match="no such file"):
        A.read_trials(tmp_path / "none.csv")
