"""The ten nuReality vehicle-behaviour scenarios as data, and their validation.

From the publications (Schmitt et al. 2022, arXiv 2201.04742; the companion RA-L 2022 study; the IEEE
Spectrum article): nuReality has **10 unique vehicle behaviour scenarios**; the expressive cues come in
three families, **motion, sound and light**; tested behaviours include **easing into a full stop**,
**stopping farther away / a vehicle's length away**, **braking earlier and harder than the baseline** and
an **exaggerated braking** sound.

Our reconstruction (assumption): the names of the ten scenarios, every number (speeds, distances,
pitch, durations) and the exact cue combinations.  Each scenario file says, field by field, in
``provenance``, whether a value is ``"confirmed: <source>"`` or ``"assumption: <why>"``.

Schema of ``scenarios/<id>.json``::

    {"id", "title", "description",
     "vehicle": {"kind": "av" | "human", "driver_visible": bool, "length_m": > 0, "light_bar": bool},
     "yields": bool, "v0_mps": > 0, "start_distance_m": > onset (or > 0 without braking),
     "braking": {"profile": "linear" | "eased" | "hard", "onset_distance_m": > stop_distance_m,
                 "pitch_deg": 0..15} | null (exactly when yields is false),
     "stop_distance_m": >= 0 (null allowed when the vehicle does not yield),
     "sound": {"engine": bool, "brake": "normal" | "exaggerated" | "none", "low_frequency_cue": bool},
     "duration_s": > 0,
     "provenance": {"<field path>": "confirmed: ..." | "assumption: ..."}}

Distances are from the vehicle's front bumper to the near edge of the crosswalk.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from discern.core.errors import DataError
from discern.core.files import brief, is_finite_number, read_json

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

#: the built-in scenarios, in the order ``library()`` returns them (our order; assumption)
ORDER = ("baseline", "human_driver", "early_eased", "hard_nose_dive", "stop_farther", "brake_sound",
         "low_frequency_sound", "light_bar", "combined", "no_yield")

KINDS = ("av", "human")
PROFILES = ("linear", "eased", "hard")
BRAKE_SOUNDS = ("normal", "exaggerated", "none")
MAX_PITCH_DEG = 15.0

#: every field path a scenario may carry, with the numeric ones marked
FIELD_PATHS = ("id", "title", "description", "vehicle", "vehicle.kind", "vehicle.driver_visible", "vehicle.length_m",
               "vehicle.light_bar", "yields", "v0_mps", "start_distance_m", "braking", "braking.profile",
               "braking.onset_distance_m", "braking.pitch_deg", "stop_distance_m", "sound", "sound.engine",
               "sound.brake", "sound.low_frequency_cue", "duration_s")
NUMERIC_PATHS = ("vehicle.length_m", "v0_mps", "start_distance_m", "braking.onset_distance_m", "braking.pitch_deg",
                 "stop_distance_m", "duration_s")
_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True)
class Vehicle:
    kind: str = "av"
    driver_visible: bool = False
    length_m: float = 4.6
    light_bar: bool = False


@dataclass(frozen=True)
class Braking:
    profile: str
    onset_distance_m: float
    pitch_deg: float = 0.0


@dataclass(frozen=True)
class Sound:
    engine: bool = True
    brake: str = "normal"
    low_frequency_cue: bool = False


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    description: str
    vehicle: Vehicle
    yields: bool
    v0_mps: float
    start_distance_m: float
    braking: Braking | None
    stop_distance_m: float | None
    sound: Sound
    duration_s: float
    provenance: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The scenario as its JSON object (what ``GET /api/scenarios/{id}`` serves)."""
        d = asdict(self)
        d["provenance"] = dict(self.provenance)
        return d


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,40}")


def _key(k: str) -> str:
    """A key of the file as a message shows it: a plain name as is, anything else quoted and cut short."""
    return k if _PLAIN_KEY.fullmatch(k) else brief(k)


def _show(v: Any) -> str:
    """A value of the file as a message shows it: JSON, at most about 200 characters, one line."""
    try:
        text = json.dumps(v)
    except ValueError:  # an integer of more digits than json.dumps writes
        text = "a very long integer"
    return brief(text, 200, quote=False)


class _Checker:
    """Reads one scenario object, raising ``DataError("<source>: <field path> ...")`` on the first problem."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, msg: str):
        raise DataError(f"{self.source}: {path} {msg}")

    def obj(self, d: Any, path: str, keys: tuple[str, ...]) -> dict:
        if not isinstance(d, dict):
            self.fail(path or "scenario", f"must be a JSON object, got {type(d).__name__}")
        prefix = f"{path}." if path else ""
        for k in d:
            if k not in keys:
                self.fail(f"{prefix}{_key(k)}", f"is not a scenario field (expected one of: {', '.join(keys)})")
        for k in keys:
            if k not in d:
                self.fail(f"{prefix}{k}", "is missing")
        return d

    def num(self, d: dict, key: str, path: str, *, nullable: bool = False) -> float | None:
        v = d[key]
        if v is None and nullable:
            return None
        if not is_finite_number(v):  # NaN, inf, a bool, a string, or an integer beyond the float range
            self.fail(path, f"must be a finite number, got {_show(v)}")
        return float(v)

    def boolean(self, d: dict, key: str, path: str) -> bool:
        v = d[key]
        if not isinstance(v, bool):
            self.fail(path, f"must be true or false, got {_show(v)}")
        return v

    def text(self, d: dict, key: str, path: str) -> str:
        v = d[key]
        if not isinstance(v, str) or not v.strip():
            self.fail(path, f"must be a non-empty string, got {_show(v)}")
        return v

    def choice(self, d: dict, key: str, path: str, options: tuple[str, ...]) -> str:
        v = d[key]
        if v not in options:
            self.fail(path, f"must be one of {', '.join(repr(o) for o in options)}, got {_show(v)}")
        return v

    def check(self, path: str, ok: bool, msg: str):
        if not ok:
            self.fail(path, msg)


def _parse(d: Any, source: str, expected_id: str | None) -> Scenario:
    c = _Checker(source)
    top = ("id", "title", "description", "vehicle", "yields", "v0_mps", "start_distance_m", "braking",
           "stop_distance_m", "sound", "duration_s", "provenance")
    c.obj(d, "", top)
    sid = c.text(d, "id", "id")
    c.check("id", bool(_ID.match(sid)), f"must be lower-case letters, digits, '_' or '-', got {brief(sid)}")
    if expected_id is not None:
        c.check("id", sid == expected_id, f"must match the file name {expected_id!r}, got {brief(sid)}")
    title = c.text(d, "title", "title")
    description = c.text(d, "description", "description")

    vd = c.obj(d["vehicle"], "vehicle", ("kind", "driver_visible", "length_m", "light_bar"))
    length = c.num(vd, "length_m", "vehicle.length_m")
    c.check("vehicle.length_m", length > 0, f"must be > 0, got {length}")
    vehicle = Vehicle(kind=c.choice(vd, "kind", "vehicle.kind", KINDS),
                      driver_visible=c.boolean(vd, "driver_visible", "vehicle.driver_visible"),
                      length_m=length, light_bar=c.boolean(vd, "light_bar", "vehicle.light_bar"))

    yields = c.boolean(d, "yields", "yields")
    v0 = c.num(d, "v0_mps", "v0_mps")
    c.check("v0_mps", v0 > 0, f"must be > 0, got {v0}")
    start = c.num(d, "start_distance_m", "start_distance_m")
    c.check("start_distance_m", start > 0, f"must be > 0, got {start}")
    stop = c.num(d, "stop_distance_m", "stop_distance_m", nullable=not yields)
    if stop is not None:
        c.check("stop_distance_m", stop >= 0, f"must be >= 0, got {stop}")

    braking = None
    if yields:
        c.check("braking", d["braking"] is not None, "must be an object when yields is true, got null")
        bd = c.obj(d["braking"], "braking", ("profile", "onset_distance_m", "pitch_deg"))
        profile = c.choice(bd, "profile", "braking.profile", PROFILES)
        onset = c.num(bd, "onset_distance_m", "braking.onset_distance_m")
        c.check("braking.onset_distance_m", onset > stop, f"must be > stop_distance_m ({stop}), got {onset}")
        c.check("start_distance_m", start > onset, f"must be > braking.onset_distance_m ({onset}), got {start}")
        pitch = c.num(bd, "pitch_deg", "braking.pitch_deg")
        c.check("braking.pitch_deg", 0 <= pitch <= MAX_PITCH_DEG, f"must be in [0, {MAX_PITCH_DEG}], got {pitch}")
        braking = Braking(profile=profile, onset_distance_m=onset, pitch_deg=pitch)
    else:
        c.check("braking", d["braking"] is None,
                f"must be null when yields is false (the vehicle keeps v0), got {_show(d['braking'])}")

    sd = c.obj(d["sound"], "sound", ("engine", "brake", "low_frequency_cue"))
    sound = Sound(engine=c.boolean(sd, "engine", "sound.engine"),
                  brake=c.choice(sd, "brake", "sound.brake", BRAKE_SOUNDS),
                  low_frequency_cue=c.boolean(sd, "low_frequency_cue", "sound.low_frequency_cue"))
    duration = c.num(d, "duration_s", "duration_s")
    c.check("duration_s", duration > 0, f"must be > 0, got {duration}")

    prov = d["provenance"]
    c.check("provenance", isinstance(prov, dict), f"must be a JSON object, got {type(prov).__name__}")
    for key, val in prov.items():
        c.check(f"provenance.{_key(key)}", key in FIELD_PATHS, "names no scenario field")
        c.check(f"provenance.{key}", isinstance(val, str) and (val.startswith("confirmed: ")
                                                                or val.startswith("assumption: ")),
                f"must start with 'confirmed: ' or 'assumption: ', got {_show(val)}")
    values = {"vehicle.length_m": length, "v0_mps": v0, "start_distance_m": start, "stop_distance_m": stop,
              "duration_s": duration, "braking.onset_distance_m": braking.onset_distance_m if braking else None,
              "braking.pitch_deg": braking.pitch_deg if braking else None}
    for path in NUMERIC_PATHS:
        if values[path] is not None:
            c.check(f"provenance.{path}", path in prov, "is missing (every numeric field needs its provenance)")

    return Scenario(id=sid, title=title, description=description, vehicle=vehicle, yields=yields, v0_mps=v0,
                    start_distance_m=start, braking=braking, stop_distance_m=stop, sound=sound,
                    duration_s=duration, provenance=dict(prov))


def load_scenario(path_or_dict: str | Path | dict | Scenario) -> Scenario:
    """Read and validate one scenario (a JSON file path, an already parsed dict, or a Scenario).

    Raises DataError naming the file and the field path, e.g.
    ``baseline.json: braking.onset_distance_m must be > stop_distance_m (2.0), got 1.5``.
    A file's ``id`` must equal its file name without ``.json``.
    """
    if isinstance(path_or_dict, Scenario):
        return path_or_dict
    if isinstance(path_or_dict, dict):
        sid = path_or_dict.get("id")
        return _parse(path_or_dict, f"scenario {brief(sid)}" if isinstance(sid, str) else "scenario", None)
    path = Path(path_or_dict)
    if not path.is_file():
        raise DataError(f"{path}: no such scenario file")
    return _parse(read_json(path, label=path.name), path.name, path.stem)


def load_directory(directory: str | Path) -> list[Scenario]:
    """Every ``*.json`` scenario in a folder, sorted by file name (the built-in folder in ``ORDER``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such scenario folder")
    paths = sorted(directory.glob("*.json"))
    if directory.resolve() == SCENARIO_DIR:
        rank = {sid: i for i, sid in enumerate(ORDER)}
        paths.sort(key=lambda p: (rank.get(p.stem, len(ORDER)), p.stem))
    if not paths:
        raise DataError(f"{directory}: no *.json scenario files")
    return [load_scenario(p) for p in paths]


def library() -> list[Scenario]:
    """The ten built-in scenarios, in ``ORDER``."""
    missing = [sid for sid in ORDER if not (SCENARIO_DIR / f"{sid}.json").is_file()]
    if missing:
        raise DataError(f"{SCENARIO_DIR}: built-in scenario files missing: {', '.join(missing)}")
    return [load_scenario(SCENARIO_DIR / f"{sid}.json") for sid in ORDER]


def scenario_ids() -> list[str]:
    """The ids of the built-in scenarios, in ``ORDER``."""
    return list(ORDER)


def get_scenario(scenario_id: str) -> Scenario:
    """One built-in scenario by id."""
    if scenario_id not in ORDER:
        raise DataError(f"unknown scenario {scenario_id!r} (expected one of: {', '.join(ORDER)})")
    return load_scenario(SCENARIO_DIR / f"{scenario_id}.json")
