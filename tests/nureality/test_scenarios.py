from __future__ import annotations

import copy
import json

import pytest

from discern.core.errors import DataError, DiscernError
from discern.nureality import scenarios
from discern.nureality.kinematics import stopping_distance
from discern.nureality.scenarios import SCENARIO_DIR, load_scenario

TEN = ["baseline", "human_driver", "early_eased", "hard_nose_dive", "stop_farther", "brake_sound",
       "low_frequency_sound", "light_bar", "combined", "no_yield"]


def test_library_has_the_ten_scenarios_in_a_fixed_order():
    lib = scenarios.library()
    assert [s.id for s in lib] == TEN
    assert scenarios.scenario_ids() == TEN
    assert sorted(p.stem for p in SCENARIO_DIR.glob("*.json")) == sorted(TEN)
    assert [s.id for s in scenarios.load_directory(SCENARIO_DIR)] == TEN
    assert scenarios.get_scenario("combined") == lib[8]


def test_files_round_trip_through_the_dataclasses():
    for sc in scenarios.library():
        raw = json.loads((SCENARIO_DIR / f"{sc.id}.json").read_text())
        assert sc.to_dict() == raw
        assert load_scenario(raw) == sc
        assert load_scenario(sc) is sc


def test_every_numeric_field_has_provenance_and_the_confirmed_ones_are_the_published_cues():
    numeric = ["vehicle.length_m", "v0_mps", "start_distance_m", "braking.onset_distance_m", "braking.pitch_deg",
               "stop_distance_m", "duration_s"]
    confirmed = {}
    for sc in scenarios.library():
        d = sc.to_dict()
        for path in numeric:
            head, _, tail = path.partition(".")
            value = d[head][tail] if tail and d[head] is not None else (d[head] if not tail else None)
            if value is not None:
                assert sc.provenance[path].split(": ")[0] in ("confirmed", "assumption"), (sc.id, path)
        for path in ("v0_mps", "start_distance_m", "duration_s", "vehicle.length_m"):
            assert sc.provenance[path].startswith("assumption: "), (sc.id, path)
        confirmed[sc.id] = sorted(k for k, v in sc.provenance.items() if v.startswith("confirmed: "))
    assert confirmed == {
        "baseline": ["vehicle.kind", "yields"],
        "human_driver": ["yields"],
        "early_eased": ["braking.profile", "vehicle.kind", "yields"],
        "hard_nose_dive": ["braking.profile", "vehicle.kind", "yields"],
        "stop_farther": ["stop_distance_m", "vehicle.kind", "yields"],
        "brake_sound": ["sound.brake", "vehicle.kind", "yields"],
        "low_frequency_sound": ["vehicle.kind", "yields"],
        "light_bar": ["vehicle.kind", "vehicle.light_bar", "yields"],
        "combined": ["braking.profile", "sound.brake", "stop_distance_m", "vehicle.kind", "vehicle.light_bar",
                     "yields"],
        "no_yield": ["vehicle.kind", "yields"],
    }


def test_scenario_parameters_follow_their_stated_reasoning():
    lib = {s.id: s for s in scenarios.library()}
    base = lib["baseline"]
    assert base.v0_mps == 11.2 and base.start_distance_m == 70.0 and base.stop_distance_m == 2.0
    # 2.5 m/s^2 comfortable deceleration: D = v0^2 / (2a) = 25.088 m, rounded to 25.1 m
    assert round(stopping_distance(base.v0_mps, 2.5), 1) == 25.1
    assert base.braking.onset_distance_m - base.stop_distance_m == pytest.approx(25.1, abs=1e-12)
    assert base.braking.profile == "linear" and base.braking.pitch_deg == 0.0

    def dist(s):
        return s.braking.onset_distance_m - s.stop_distance_m

    hd = lib["human_driver"]
    assert (hd.vehicle.kind, hd.vehicle.driver_visible) == ("human", True)
    assert (hd.braking, hd.stop_distance_m) == (base.braking, base.stop_distance_m)
    ee = lib["early_eased"]
    assert ee.braking.profile == "eased" and ee.braking.onset_distance_m > base.braking.onset_distance_m
    assert dist(ee) == pytest.approx(2 * 25.1, abs=1e-12) and ee.stop_distance_m == base.stop_distance_m
    hn = lib["hard_nose_dive"]
    assert (hn.braking.profile, hn.braking.pitch_deg) == ("hard", 3.0)
    assert dist(hn) == pytest.approx(round(stopping_distance(11.2, 4.0), 1), abs=1e-12) and dist(hn) < dist(base)
    # braking earlier and harder than the baseline (the source's words): a constant 4 m/s^2 from the same
    # speed covers less ground, so the vehicle that starts earlier stops farther from the crosswalk
    assert hn.stop_distance_m == pytest.approx(hn.braking.onset_distance_m - 15.7, abs=1e-12)
    sf = lib["stop_farther"]
    assert sf.stop_distance_m == base.stop_distance_m + base.vehicle.length_m == 6.6
    assert dist(sf) == pytest.approx(dist(base), abs=1e-12)
    for sid in ("brake_sound", "low_frequency_sound", "light_bar"):
        assert (lib[sid].braking, lib[sid].stop_distance_m) == (base.braking, base.stop_distance_m)
    cues = {sid: (s.vehicle.light_bar, s.sound.brake, s.sound.low_frequency_cue) for sid, s in lib.items()}
    assert cues == {
        "baseline": (False, "normal", False), "human_driver": (False, "normal", False),
        "early_eased": (False, "normal", False), "hard_nose_dive": (False, "normal", False),
        "stop_farther": (False, "normal", False), "brake_sound": (False, "exaggerated", False),
        "low_frequency_sound": (False, "normal", True), "light_bar": (True, "normal", False),
        "combined": (True, "exaggerated", True), "no_yield": (False, "none", False),
    }
    co = lib["combined"]
    assert co.braking.profile == "eased" and co.stop_distance_m == sf.stop_distance_m
    assert dist(co) == pytest.approx(dist(ee), abs=1e-12)
    ny = lib["no_yield"]
    assert (ny.yields, ny.braking, ny.stop_distance_m) == (False, None, None)
    assert all(s.yields for sid, s in lib.items() if sid != "no_yield")


def _write(tmp_path, d, name="baseline"):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(d))
    return p


def _baseline():
    return json.loads((SCENARIO_DIR / "baseline.json").read_text())


def _set(d, path, value):
    *heads, last = path.split(".")
    for h in heads:
        d = d[h]
    if value is _DELETE:
        del d[last]
    else:
        d[last] = value


_DELETE = object()

BAD = [
    ("braking.onset_distance_m", 1.5,
     "baseline.json: braking.onset_distance_m must be > stop_distance_m (2.0), got 1.5"),
    ("v0_mps", 0, "baseline.json: v0_mps must be > 0, got 0.0"),
    ("v0_mps", "fast", 'baseline.json: v0_mps must be a finite number, got "fast"'),
    ("v0_mps", True, "baseline.json: v0_mps must be a finite number, got true"),
    ("start_distance_m", 27.1, "baseline.json: start_distance_m must be > braking.onset_distance_m (27.1), got 27.1"),
    ("stop_distance_m", -0.5, "baseline.json: stop_distance_m must be >= 0, got -0.5"),
    ("stop_distance_m", None, "baseline.json: stop_distance_m must be a finite number, got null"),
    ("braking.profile", "bouncy",
     "baseline.json: braking.profile must be one of 'linear', 'eased', 'hard', got \"bouncy\""),
    ("braking.pitch_deg", 20, "baseline.json: braking.pitch_deg must be in [0, 15.0], got 20.0"),
    ("braking", None, "baseline.json: braking must be an object when yields is true, got null"),
    ("yields", False, 'baseline.json: braking must be null when yields is false (the vehicle keeps v0), got '
                      '{"profile": "linear", "onset_distance_m": 27.1, "pitch_deg": 0.0}'),
    ("yields", "yes", 'baseline.json: yields must be true or false, got "yes"'),
    ("vehicle.kind", "robot", "baseline.json: vehicle.kind must be one of 'av', 'human', got \"robot\""),
    ("vehicle.length_m", 0, "baseline.json: vehicle.length_m must be > 0, got 0.0"),
    ("sound.brake", "loud", "baseline.json: sound.brake must be one of 'normal', 'exaggerated', 'none', got \"loud\""),
    ("duration_s", -1, "baseline.json: duration_s must be > 0, got -1.0"),
    ("id", "other", "baseline.json: id must match the file name 'baseline', got 'other'"),
    ("title", "", 'baseline.json: title must be a non-empty string, got ""'),
    ("sound.engine", _DELETE, "baseline.json: sound.engine is missing"),
    ("vehicle.colour", "red", "baseline.json: vehicle.colour is not a scenario field (expected one of: kind, "
                              "driver_visible, length_m, light_bar)"),
    ("provenance.v0_mps", _DELETE,
     "baseline.json: provenance.v0_mps is missing (every numeric field needs its provenance)"),
    ("provenance.v0_mps", "because",
     "baseline.json: provenance.v0_mps must start with 'confirmed: ' or 'assumption: ', got \"because\""),
    ("provenance.speed", "assumption: x", "baseline.json: provenance.speed names no scenario field"),
]


@pytest.mark.parametrize("path,value,message", BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_validation_names_the_file_and_the_field(tmp_path, path, value, message):
    d = _baseline()
    _set(d, path, value)
    with pytest.raises(DataError) as e:
        load_scenario(_write(tmp_path, d))
    assert str(e.value) == message
    assert isinstance(e.value, DiscernError)


def test_a_dict_is_named_by_its_id_and_a_non_yielding_scenario_needs_no_braking_fields():
    d = _baseline()
    d["braking"]["onset_distance_m"] = 1.5
    with pytest.raises(DataError, match=r"^scenario 'baseline': braking.onset_distance_m must be > "):
        load_scenario(d)
    ny = copy.deepcopy(_baseline())
    ny.update(id="pass", yields=False, braking=None, stop_distance_m=None)
    for k in ("braking.onset_distance_m", "braking.pitch_deg", "stop_distance_m"):
        del ny["provenance"][k]
    sc = load_scenario(ny)
    assert (sc.yields, sc.braking, sc.stop_distance_m) == (False, None, None)


def test_broken_files_are_named(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"id": "broken",\n  "title": }')
    with pytest.raises(DataError) as e:
        load_scenario(p)
    assert str(e.value) == "broken.json: invalid JSON at line 2, column 12: Expecting value"
    with pytest.raises(DataError) as e:
        load_scenario(tmp_path / "absent.json")
    assert str(e.value) == f"{tmp_path / 'absent.json'}: no such scenario file"
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(DataError) as e:
        load_scenario(tmp_path / "list.json")
    assert str(e.value) == "list.json: scenario must be a JSON object, got list"
    with pytest.raises(DataError) as e:
        scenarios.get_scenario("nope")
    assert str(e.value).startswith("unknown scenario 'nope' (expected one of: baseline, human_driver,")


def test_hard_nose_dive_brakes_earlier_and_harder_than_the_baseline():
    from discern.nureality.kinematics import braking_times, peak_deceleration

    base, hard = scenarios.get_scenario("baseline"), scenarios.get_scenario("hard_nose_dive")
    # earlier: farther from the crosswalk, and sooner after the vehicle's onset
    assert hard.braking.onset_distance_m > base.braking.onset_distance_m
    assert braking_times(hard)[0] < braking_times(base)[0]
    # harder: a higher peak deceleration (4 m/s^2 against the baseline's 2.5 m/s^2, to the rounding of D)
    assert peak_deceleration(hard) > peak_deceleration(base)
    assert peak_deceleration(hard) == pytest.approx(11.2 / (2 * 15.7 / 11.2), abs=1e-12)
    assert peak_deceleration(base) == pytest.approx(11.2 / (2 * 25.1 / 11.2), abs=1e-12)
    prov = hard.provenance
    assert "earlier and harder than the baseline" in prov["braking.profile"]
    assert prov["braking.onset_distance_m"].startswith("assumption: the source says")
    assert prov["stop_distance_m"].startswith("assumption: the source says")
