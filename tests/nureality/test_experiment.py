"""The nuReality reproduction at the tiny preset: simulated pedestrians go through the real study server
(HTTP, SQLite), what the server stores is exactly what the pedestrian model decided, and the claims are
self-tests of the platform (the pedestrian is our simulation with hand-set parameters)."""

import json
import sqlite3

from discern.core import Result
from discern.nureality.pedestrian import simulate
from discern.nureality.scenarios import get_scenario, scenario_ids


def test_tiny_reproduction_stores_exactly_the_simulated_decisions(tiny_reproduction):
    run = tiny_reproduction("nureality")
    raw = json.loads((run / "results.json").read_text())
    res = Result.from_dict(raw)  # the contract: a valid result with typed claims
    study = json.loads((run / "study.json").read_text())
    ids = scenario_ids()
    assert len(study["trials"]) == 4 * len(ids) == raw["trials_complete"]
    for t in study["trials"]:
        j = int(t["participant"][1:]) - 1
        d = simulate(get_scenario(t["scenario"]), j, repetition=0)  # seed 0: participant seed = j
        assert t["decision_time_s"] == (None if d.decision_time_s is None else d.decision_time_s)
        assert study["sent"][t["participant"]][str(t["trial"])] == d.decision_time_s
        assert t["cross"] is d.cross
    # Latin-square order: the first trials of the 4 participants are 4 different scenarios
    first = {t["scenario"] for t in study["trials"] if t["trial"] == 0}
    assert len(first) == 4
    with sqlite3.connect(run / "study.sqlite") as db:
        n_events = db.execute("SELECT COUNT(*), COUNT(DISTINCT participant_id || '-' || seq) "
                              "FROM nureality_events").fetchone()
    # start, onset, [safe], decision, 2 Likert items, end: each stored once
    assert n_events[0] == n_events[1] == sum(6 + (t["decision_time_s"] is not None) for t in study["trials"])
    assert [r["scenario"] for r in res.table] == ids
    never = {r["scenario"]: r["never_safe"] for r in res.table}
    assert never["no_yield"] == 4 and never["baseline"] == 0
    # simulated pedestrians test our platform: self-tests, whatever the numbers say
    assert [c.statement for c in res.claims] == [
        "easing into a stop leads to quicker decisions to cross than the baseline stop",
        "stopping farther away leads to quicker decisions to cross than the baseline stop"]
    comp = {c["scenario"]: c for c in raw["analysis"]["comparisons"]}
    for c, sid in zip(res.claims, ("early_eased", "stop_farther")):
        assert c.verdict == "self-test"
        assert "simulated pedestrians" in c.ours and "parameters set by hand" in c.ours
        assert c.ci == tuple(comp[sid]["ci_diff"])
    assert res.plots == ["plots/decision_time_by_scenario.png"]
    assert (run / "plots" / "decision_time_by_scenario.png").stat().st_size > 10_000
