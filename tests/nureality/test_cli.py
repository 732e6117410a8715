"""discern nureality scenarios | analyze: exact output on hand-made data, clear errors on bad input."""

import json

import numpy as np
from scipy import stats

from discern.cli import main


def test_scenarios_list_and_validate(tmp_path, capsys):
    assert main(["nureality", "scenarios", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11 and lines[1].split()[:3] == ["baseline", "True", "linear"]
    bad = json.loads(json.dumps({"id": "bad"}))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["nureality", "scenarios", "validate", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.json" in err and len(err.strip().splitlines()) == 1


def test_analyze_a_trials_csv(tmp_path, capsys):
    rows = ["study,participant,trial,block,scenario,attempts,decision_time_s,cross,likert_0,complete"]
    base = {"P1": 5.0, "P2": 4.0, "P3": 6.0}
    eased = {"P1": 4.5, "P2": 3.0, "P3": 5.7}
    for p in base:
        rows.append(f"s,{p},0,0,baseline,1,{base[p]},true,4,true")
        rows.append(f"s,{p},1,0,early_eased,1,{eased[p]},true,5,true")
        rows.append(f"s,{p},2,0,no_yield,1,,false,1,true")
    (tmp_path / "trials.csv").write_text("\n".join(rows) + "\n")
    assert main(["nureality", "analyze", str(tmp_path / "trials.csv"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:4]] == ["baseline", "early_eased", "no_yield"]
    # trials of people (study "s"): the claim gets the paired test's verdict; 3 participants, one-sided
    # p = 0.05-something, so inconclusive
    p_less = stats.ttest_rel([4.5, 3.0, 5.7], [5.0, 4.0, 6.0], alternative="less").pvalue
    assert 0.05 < p_less < 0.1
    assert out[4].startswith("claim: easing into a stop leads to quicker decisions to cross than the baseline "
                             "stop: inconclusive (early_eased:")
    res = json.loads((tmp_path / "out" / "analysis.json").read_text())
    (claim,) = res["claims"]
    assert claim["verdict"] == "inconclusive" and abs(claim["p_value"] - p_less) < 1e-12
    e = [c for c in res["comparisons"] if c["scenario"] == "early_eased"][0]
    a, b = np.array([4.5, 3.0, 5.7]), np.array([5.0, 4.0, 6.0])
    assert e["mean_diff"] == np.mean(a - b)
    assert abs(e["p_t"] - stats.ttest_rel(a, b).pvalue) < 1e-12
    never = {r["scenario"]: r["n_never"] for r in res["summary"]}
    assert never == {"baseline": 0, "early_eased": 0, "no_yield": 3}
    assert (tmp_path / "out" / "decision_times.png").stat().st_size > 5_000
    # the same file from a simulated study: the claim is a self-test
    (tmp_path / "sim.csv").write_text("\n".join(r.replace("s,", "simulated-0,", 1) if r.startswith("s,") else r
                                                for r in rows) + "\n")
    assert main(["nureality", "analyze", str(tmp_path / "sim.csv")]) == 0
    assert ": self-test (early_eased:" in capsys.readouterr().out
    (tmp_path / "bad.csv").write_text("participant,scenario,decision_time_s\nP1,baseline,soon\n")
    assert main(["nureality", "analyze", str(tmp_path / "bad.csv")]) == 2
    assert "bad.csv:2: decision_time_s must be a number or empty, got 'soon'" in capsys.readouterr().err
