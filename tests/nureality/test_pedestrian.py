from __future__ import annotations

import numpy as np
import pytest

from discern.nureality import kinematics as K
from discern.nureality import pedestrian as P
from discern.nureality import scenarios

LIB = {s.id: s for s in scenarios.library()}
N = 40


@pytest.fixture(scope="module")
def study():
    """{scenario: [decision time or None for participants 0..39]} with the default parameters."""
    return {sid: [P.simulate(sc, j).decision_time_s for j in range(N)] for sid, sc in LIB.items()}


def test_simulation_is_deterministic_for_a_seed():
    a = P.simulate(LIB["baseline"], 7)
    b = P.simulate(LIB["baseline"].to_dict(), 7)
    assert a == b and a.decision_time_s is not None and a.rule == "evidence"
    assert P.simulate(scenarios.SCENARIO_DIR / "baseline.json", 7) == a
    times = {P.simulate(LIB["baseline"], j).decision_time_s for j in range(5)}
    assert len(times) >= 3  # different participants, different perceptual noise
    assert P.simulate(LIB["baseline"], 7, repetition=1).decision_time_s != a.decision_time_s
    assert P.participant_threshold(7) == P.participant_threshold(7) != P.participant_threshold(8)


def test_no_yield_is_almost_never_judged_safe(study):
    nones = sum(t is None for t in study["no_yield"])
    assert nones >= 0.9 * N
    for j in range(N):
        d = P.simulate(LIB["no_yield"], j)
        assert d.cross is (d.decision_time_s is not None)


def test_decisions_come_after_brake_onset_and_by_the_stop(study):
    for sid, times in study.items():
        kt = K.key_times(LIB[sid])
        if kt["brake_onset"] is None:
            continue
        assert all(t is not None for t in times), sid
        assert min(times) > kt["brake_onset"], sid
        assert max(times) <= kt["stop"], sid


def test_earlier_or_farther_stops_give_quicker_decisions_than_baseline(study):
    mean = {sid: float(np.mean(times)) for sid, times in study.items() if sid != "no_yield"}
    assert mean["early_eased"] < mean["baseline"]
    assert mean["stop_farther"] < mean["baseline"]
    assert mean["combined"] < min(mean["early_eased"], mean["stop_farther"])


def test_cues_can_only_speed_a_decision_for_the_same_noise():
    # same id => same noise stream; an added cue raises the drift at every frame, so E is never lower
    plain = LIB["baseline"].to_dict()
    cued = LIB["baseline"].to_dict()
    cued["vehicle"]["light_bar"] = True
    cued["sound"]["brake"] = "exaggerated"
    diffs = []
    for j in range(20):
        a, b = P.simulate(plain, j).decision_time_s, P.simulate(cued, j).decision_time_s
        assert b <= a
        diffs.append(a - b)
    assert max(diffs) > 0
    none = P.with_params(k_light_bar=0.0, k_brake_sound=0.0)
    assert [P.simulate(cued, j, none) for j in range(5)] == [P.simulate(plain, j, none) for j in range(5)]


def test_time_to_arrival_rule_fires_when_the_vehicle_is_far_and_slow():
    params = P.with_params(threshold=1e9, threshold_sd=0.0)  # the evidence route never completes
    first = {}
    for sid in ("baseline", "stop_farther"):
        sc = LIB[sid]
        tr = K.trajectory(sc)
        with np.errstate(divide="ignore"):
            far_and_slow = (tr["x"] >= 1.0) & ((tr["v"] <= 0.3) | ((tr["v"] <= 3.0) & (tr["x"] / tr["v"] >= 4.0)))
        ideal = float(tr["t"][np.argmax(far_and_slow)])
        for j in range(10):
            d = P.simulate(sc, j, params)
            assert d.rule == "time_to_arrival" and d.cross
            assert abs(d.decision_time_s - ideal) < 0.25
        first[sid] = ideal
    assert first["stop_farther"] < first["baseline"] - 0.5


def test_simulate_study_rows_have_the_analysis_shape():
    rows = P.simulate_study([LIB["baseline"], LIB["no_yield"]], n_participants=3, repetitions=2, seed=1)
    assert len(rows) == 12
    assert [r["participant"] for r in rows[:4]] == ["P01"] * 4
    assert [(r["scenario"], r["repetition"]) for r in rows[:4]] == [("baseline", 0), ("no_yield", 0),
                                                                     ("baseline", 1), ("no_yield", 1)]
    assert rows[0]["decision_time_s"] == P.simulate(LIB["baseline"], 100003, repetition=0).decision_time_s
    assert set(rows[0]) == {"participant", "scenario", "repetition", "decision_time_s", "cross", "likert"}
