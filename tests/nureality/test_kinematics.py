from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from discern.nureality import kinematics as K
from discern.nureality import scenarios
from discern.nureality.scenarios import SCENARIO_DIR

WEB = SCENARIO_DIR.parent / "web"
LIB = scenarios.library()
YIELDING = [s for s in LIB if s.yields]


def test_stopping_distance_is_v_squared_over_2a():
    assert K.stopping_distance(11.2, 2.5) == 11.2 * 11.2 / 5.0
    assert K.stopping_distance(11.2, 2.5) == pytest.approx(25.088, abs=1e-12)
    assert K.stopping_distance(11.2, 4.0) == pytest.approx(15.68, abs=1e-12)
    assert K.stopping_distance(0.0, 3.0) == 0.0
    with pytest.raises(ValueError, match="deceleration must be > 0, got 0"):
        K.stopping_distance(10.0, 0)


def test_trajectory_samples_from_zero_to_the_duration_at_60_hz():
    tr = K.trajectory(LIB[0])
    assert set(tr) == {"t", "x", "v", "a", "pitch"}
    assert len(tr["t"]) == 721 and tr["t"][0] == 0.0 and tr["t"][-1] == pytest.approx(12.0, abs=1e-12)
    assert np.array_equal(tr["t"], np.arange(721) * (1 / 60))
    assert len(K.trajectory(LIB[0], dt=0.5)["t"]) == 25


def test_braking_times_and_key_times():
    base = scenarios.get_scenario("baseline")
    t_onset, big_t = K.braking_times(base)
    assert t_onset == (70.0 - 27.1) / 11.2 and big_t == 2 * (27.1 - 2.0) / 11.2
    assert K.key_times(base) == {"brake_onset": t_onset, "stop": t_onset + big_t, "reach_crosswalk": None}
    assert K.key_times(scenarios.get_scenario("no_yield")) == {"brake_onset": None, "stop": None,
                                                                  "reach_crosswalk": 70.0 / 11.2}
    assert K.braking_times(scenarios.get_scenario("no_yield")) is None


@pytest.mark.parametrize("sc", YIELDING, ids=[s.id for s in YIELDING])
def test_yielding_speed_is_monotone_and_reaches_zero_exactly_at_the_stop_distance(sc):
    tr = K.trajectory(sc)
    assert np.all(np.diff(tr["v"]) <= 1e-12)
    assert np.all(np.diff(tr["x"]) <= 1e-12)
    assert tr["v"][0] == sc.v0_mps and tr["x"][0] == sc.start_distance_m
    assert np.all(tr["x"] >= sc.stop_distance_m - 1e-12)
    t_onset, big_t = K.braking_times(sc)
    end = K.state_at(sc, t_onset + big_t)
    assert end == {"x": sc.stop_distance_m, "v": 0.0, "a": 0.0, "pitch": 0.0}
    just_before = K.state_at(sc, t_onset + big_t - 1e-7)
    assert 0.0 < just_before["v"] < 1e-5
    assert just_before["x"] == pytest.approx(sc.stop_distance_m, abs=1e-9)
    at_onset = K.state_at(sc, t_onset)
    assert at_onset["x"] == pytest.approx(sc.braking.onset_distance_m, abs=1e-12) and at_onset["v"] == sc.v0_mps
    stopped = tr["t"] >= t_onset + big_t
    assert stopped.sum() > 0 and np.all(tr["v"][stopped] == 0.0) and np.all(tr["x"][stopped] == sc.stop_distance_m)
    moving = tr["t"] < t_onset + big_t
    assert np.all(tr["v"][moving] > 0.0)
    # the closed-form position, speed and acceleration are consistent: v = -dx/dt, a = dv/dt (central differences)
    dt = tr["t"][1]
    inner = np.arange(1, len(tr["t"]) - 1)
    smooth = np.array([not (tr["t"][i - 1] < t_onset <= tr["t"][i + 1] or
                            tr["t"][i - 1] < t_onset + big_t <= tr["t"][i + 1]) for i in inner])
    i = inner[smooth]
    assert np.max(np.abs(-(tr["x"][i + 1] - tr["x"][i - 1]) / (2 * dt) - tr["v"][i])) < 1e-3
    assert np.max(np.abs((tr["v"][i + 1] - tr["v"][i - 1]) / (2 * dt) - tr["a"][i])) < 1e-2


def test_no_yield_keeps_v0_and_crosses_the_crosswalk():
    sc = scenarios.get_scenario("no_yield")
    tr = K.trajectory(sc)
    assert np.all(tr["v"] == 11.2) and np.all(tr["a"] == 0.0) and np.all(tr["pitch"] == 0.0)
    assert tr["x"][0] == 70.0 and tr["x"][-1] == pytest.approx(70.0 - 11.2 * 12.0, abs=1e-9)
    crossed = np.flatnonzero(tr["x"] <= 0.0)
    assert tr["t"][crossed[0]] == pytest.approx(70.0 / 11.2, abs=1 / 60)
    assert K.state_at(sc, 70.0 / 11.2)["x"] == pytest.approx(0.0, abs=1e-12)


def test_linear_braking_has_constant_deceleration_v0_over_t():
    sc = scenarios.get_scenario("baseline")
    t_onset, big_t = K.braking_times(sc)
    tr = K.trajectory(sc)
    braking = (tr["t"] >= t_onset) & (tr["t"] < t_onset + big_t)
    assert np.all(tr["a"][braking] == -11.2 / big_t)
    assert -11.2 / big_t == pytest.approx(-11.2 ** 2 / (2 * 25.1), abs=1e-12)
    assert np.all(tr["a"][~braking] == 0.0) and np.all(tr["pitch"] == 0.0)
    assert K.peak_deceleration(sc) == 11.2 / big_t


@pytest.mark.parametrize("sid", ["early_eased", "combined"])
def test_eased_braking_starts_and_ends_with_zero_deceleration_and_peaks_at_1_5_v0_over_t(sid):
    sc = scenarios.get_scenario(sid)
    t_onset, big_t = K.braking_times(sc)
    peak = 1.5 * sc.v0_mps / big_t
    assert K.state_at(sc, t_onset)["a"] == 0.0
    assert abs(K.state_at(sc, t_onset + big_t - 1e-9)["a"]) < 1e-8
    mid = K.state_at(sc, t_onset + big_t / 2)
    assert mid["a"] == pytest.approx(-peak, abs=1e-12)
    assert mid["v"] == pytest.approx(sc.v0_mps / 2, abs=1e-12)
    tr = K.trajectory(sc)
    assert np.min(tr["a"]) >= -peak - 1e-12 and np.min(tr["a"]) == pytest.approx(-peak, rel=1e-3)
    assert K.peak_deceleration(sc) == peak


def test_hard_braking_pitch_peaks_at_pitch_deg_and_only_while_braking():
    sc = scenarios.get_scenario("hard_nose_dive")
    t_onset, big_t = K.braking_times(sc)
    tr = K.trajectory(sc)
    braking = (tr["t"] >= t_onset) & (tr["t"] < t_onset + big_t)
    assert np.max(tr["pitch"]) == 3.0
    assert np.all(tr["pitch"][braking] == 3.0) and np.all(tr["pitch"][~braking] == 0.0)
    assert -np.min(tr["a"]) == pytest.approx(11.2 ** 2 / (2 * 15.7), abs=1e-12)


def test_eased_pitch_follows_the_deceleration():
    d = scenarios.get_scenario("early_eased").to_dict()
    d["braking"]["pitch_deg"] = 2.0
    t_onset, big_t = K.braking_times(d)
    assert K.state_at(d, t_onset + big_t / 2)["pitch"] == pytest.approx(2.0, abs=1e-12)
    assert K.state_at(d, t_onset + big_t / 4)["pitch"] == pytest.approx(2.0 * 0.75, abs=1e-12)  # 4 u (1 - u)
    assert K.state_at(d, t_onset)["pitch"] == 0.0


NODE_SCRIPT = """
import { trajectory, stateAt } from %s;
import { readFileSync } from "node:fs";
const paths = JSON.parse(process.argv[2]);
const out = {};
for (const p of paths) {
  const s = JSON.parse(readFileSync(p, "utf8"));
  out[s.id] = { traj: trajectory(s), coarse: trajectory(s, 0.1), at: stateAt(s, 5.0) };
}
process.stdout.write(JSON.stringify(out));
"""


def test_javascript_kinematics_match_python_to_1e_9(tmp_path):
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the kinematics parity test"
    script = tmp_path / "parity.mjs"
    script.write_text(NODE_SCRIPT % json.dumps((WEB / "kinematics.js").as_uri()))
    paths = [str(SCENARIO_DIR / f"{s.id}.json") for s in LIB]
    res = subprocess.run([node, str(script), json.dumps(paths)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    js = json.loads(res.stdout)
    assert sorted(js) == sorted(s.id for s in LIB)
    for sc in LIB:
        for key, dt in (("traj", K.DEFAULT_DT), ("coarse", 0.1)):
            py = K.trajectory(sc, dt)
            for q in ("t", "x", "v", "a", "pitch"):
                theirs = np.array(js[sc.id][key][q], dtype=np.float64)
                assert theirs.shape == py[q].shape, (sc.id, key, q)
                assert np.max(np.abs(theirs - py[q])) <= 1e-9, (sc.id, key, q)
        at = K.state_at(sc, 5.0)
        assert set(js[sc.id]["at"]) == {"x", "v", "a", "pitch"}
        for q in at:
            assert abs(js[sc.id]["at"][q] - at[q]) <= 1e-9, (sc.id, q)
