"""The nuReality study server: admin and participant API, idempotent event storage with contiguous acks,
concurrent participants, restart mid-session, CSV export and decision times."""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from discern.core.errors import DiscernError
from discern.core.serving import LocalServer
from discern.nureality import store
from discern.nureality.design import trial_plan
from discern.nureality.server import make_app

ADMIN = "admin-secret-token"
AH = {"Authorization": f"Bearer {ADMIN}"}
SCENARIOS = {
    "a": {"id": "a", "title": "Scenario A", "yields": True, "v0_mps": 11.2},
    "b": {"id": "b", "title": "Scenario B", "yields": True, "v0_mps": 11.2},
    "c": {"id": "c", "title": "Scenario C", "yields": False, "v0_mps": 11.2},
}


@pytest.fixture
def scenarios_dir(tmp_path):
    d = tmp_path / "scenarios"
    d.mkdir()
    for sid, obj in SCENARIOS.items():
        (d / f"{sid}.json").write_text(json.dumps(obj), encoding="utf-8")
    (d / "broken.json").write_text("{not json", encoding="utf-8")
    return d


@pytest.fixture
def client(tmp_path, scenarios_dir):
    with TestClient(make_app(tmp_path / "study.sqlite", ADMIN, scenarios_dir, web_dir=tmp_path / "no-web")) as c:
        yield c


@contextmanager
def running(app):
    """Serve ``app`` on a free loopback port in a thread; stop it on exit (and check that it stopped)."""
    with LocalServer(app) as url:
        yield url


def _http(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, trust_env=False)


def _study(c, scenarios=("a", "b"), order="latin", repetitions=1, likert=("Safe?", "Clear?"), seed=5):
    r = c.post("/api/admin/studies", headers=AH, json={"name": "pilot", "scenarios": list(scenarios),
                                                       "order": order, "repetitions": repetitions,
                                                       "likert": list(likert), "seed": seed})
    assert r.status_code == 200, r.text
    return r.json()


def _join(c, code, label, headers=None):
    r = c.post("/api/join", json={"code": code, "participant": label}, headers=headers)
    assert r.status_code == 200, r.text
    j = r.json()
    return j, {"Authorization": f"Bearer {j['token']}"}


def _ev(seq, trial, typ, t_ms, data=None):
    return {"seq": seq, "trial": trial, "type": typ, "t_ms": t_ms, "data": data or {}}


def _post(c, headers, events):
    # json.dumps writes inf as the literal Infinity, as a careless client would
    return c.post("/api/events", headers={**headers, "Content-Type": "application/json"},
                  content=json.dumps({"events": events}))


# ---------------------------------------------------------------------------------------------------------
# admin


def test_admin_token_required(client):
    body = {"name": "x", "scenarios": ["a"], "order": "latin", "repetitions": 1, "likert": []}
    r = client.post("/api/admin/studies", json=body)
    assert r.status_code == 401 and r.json() == {
        "detail": "admin token required: send Authorization: Bearer <admin token>"}
    assert client.post("/api/admin/studies", json=body, headers={"Authorization": f"Basic {ADMIN}"}).status_code == 401
    r = client.post("/api/admin/studies", json=body, headers={"Authorization": "Bearer wrong-token"})
    assert r.status_code == 403 and r.json() == {"detail": "the admin token is not valid"}
    study = _study(client)
    assert sorted(study) == ["code", "id"] and study["id"] == 1 and len(study["code"]) == 6
    _, ph = _join(client, study["code"], "P01")
    for path in ("/api/admin/studies/1/trials", "/api/admin/studies/1/export.csv"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=ph).status_code == 403  # a participant token is not an admin token
        assert client.get(path, headers=AH).status_code == 200
    assert client.get("/api/admin/studies/99/trials", headers=AH).json() == {"detail": "no study with id 99"}
    assert client.get("/api/admin/studies/99/export.csv", headers=AH).status_code == 404


def test_admin_token_must_be_long_enough(tmp_path):
    with pytest.raises(DiscernError, match="at least 8 characters"):
        make_app(tmp_path / "db.sqlite", "short")


def test_create_study_validation(client, scenarios_dir):
    def create(**over):
        body = {"name": "x", "scenarios": ["a", "b"], "order": "latin", "repetitions": 1, "likert": []}
        body.update(over)
        return client.post("/api/admin/studies", headers=AH, json=body)

    r = create(scenarios=["a", "zzz"])
    assert r.status_code == 422
    assert r.json() == {"detail": f"scenarios[1]: no scenario 'zzz' (no zzz.json in {scenarios_dir})"}
    r = create(scenarios=["../a"])
    assert r.status_code == 422 and r.json()["detail"].startswith("scenarios[0]: no scenario '../a'")
    r = create(scenarios=["broken"])
    assert r.status_code == 422 and r.json()["detail"].startswith("scenarios[0]: broken.json: invalid JSON at line 1")
    r = create(scenarios=["a", "a"])
    assert r.status_code == 422 and r.json() == {"detail": "study: scenarios must be distinct, got ['a', 'a']"}
    r = create(order="blocked")
    assert r.status_code == 422 and r.json()["detail"] == "body.order: Input should be 'random' or 'latin'"
    r = create(repetitions=0)
    assert r.status_code == 422 and r.json()["detail"] == "body.repetitions: Input should be greater than or equal to 1"
    assert create(scenarios=[]).status_code == 422
    assert create().status_code == 200


# ---------------------------------------------------------------------------------------------------------
# participants


def test_join_is_idempotent_and_plans_follow_the_design(client):
    study = _study(client, scenarios=("a", "b", "c"), order="latin", repetitions=2)
    j1, h1 = _join(client, study["code"], "P01")
    again, _ = _join(client, study["code"].lower(), "P01", h1)  # codes are case-insensitive
    assert again == j1
    # the same label without that participant's token (another browser, or someone who guessed the label) is
    # refused and learns no token
    for headers in (None, {"Authorization": "Bearer not-the-token"}):
        r = client.post("/api/join", json={"code": study["code"], "participant": "P01"}, headers=headers)
        assert r.status_code == 409 and r.json() == {"detail": "participant 'P01' has already joined this study "
                                                     "from another browser: continue there, or ask the "
                                                     "experimenter for a new label"}
    assert j1["trials"] == [{"index": i, "scenario": s} for i, s in enumerate(["a", "b", "c", "b", "c", "a"])]
    assert j1["likert"] == ["Safe?", "Clear?"] and j1["study"] == "pilot"
    j2, _ = _join(client, study["code"], "P02")
    assert j2["participant_id"] != j1["participant_id"] and j2["token"] != j1["token"]
    assert [t["scenario"] for t in j2["trials"]] == trial_plan(["a", "b", "c"], "latin", 2, 1, 5)
    assert [t["scenario"] for t in j2["trials"]] == ["b", "c", "a", "c", "a", "b"]
    r = client.post("/api/join", json={"code": "NOPE42", "participant": "P01"})
    assert r.status_code == 404 and r.json() == {"detail": "no study with code 'NOPE42'"}
    r = client.post("/api/join", json={"code": study["code"]})
    assert r.status_code == 422 and r.json() == {"detail": "body.participant: Field required"}


def test_random_order_plans_use_the_study_seed(client):
    study = _study(client, scenarios=("a", "b", "c"), order="random", repetitions=3, seed=123)
    for index, label in enumerate(["P01", "P02", "P03"]):
        j, _ = _join(client, study["code"], label)
        assert [t["scenario"] for t in j["trials"]] == trial_plan(["a", "b", "c"], "random", 3, index, 123)


def test_scenario_endpoint(client):
    assert client.get("/api/scenarios/a").json() == SCENARIOS["a"]
    r = client.get("/api/scenarios/zzz")
    assert r.status_code == 404 and r.json()["detail"].startswith("no scenario 'zzz' (no zzz.json in ")
    assert client.get("/api/scenarios/a.json").status_code == 404
    assert client.get("/api/scenarios/..%2Fstudy").status_code == 404


def test_events_need_a_participant_token(client):
    study = _study(client)
    _join(client, study["code"], "P01")
    r = _post(client, {}, [_ev(1, 0, "onset", 0)])
    assert r.status_code == 401 and r.json()["detail"].startswith("participant token required")
    r = _post(client, {"Authorization": "Bearer not-a-token"}, [_ev(1, 0, "onset", 0)])
    assert r.status_code == 403 and r.json() == {"detail": "the participant token is not valid: join the study again"}
    assert client.get("/api/progress", headers=AH).status_code == 403
    assert client.get("/api/progress").status_code == 401


def test_duplicate_seqs_stored_once_and_acks_contiguous(client, tmp_path):
    study = _study(client)
    _, ph = _join(client, study["code"], "P01")
    assert client.get("/api/progress", headers=ph).json() == {"acked": 0, "next_trial": 0}
    e = {1: _ev(1, 0, "trial_start", -1500.0), 2: _ev(2, 0, "onset", 0.0), 3: _ev(3, 0, "safe", 2100.25),
         4: _ev(4, 0, "decision", 2500.0, {"cross": True}), 5: _ev(5, 0, "trial_end", 6000.0)}
    assert _post(client, ph, [e[1], e[2], e[4]]).json() == {"acked": 2}
    assert _post(client, ph, [e[1], e[2]]).json() == {"acked": 2}  # re-sent: nothing new
    assert _post(client, ph, [e[2], e[2], e[1]]).json() == {"acked": 2}
    assert _post(client, ph, [e[3]]).json() == {"acked": 4}
    assert client.get("/api/progress", headers=ph).json() == {"acked": 4, "next_trial": 0}
    # a stored seq with different content is refused, and the whole call with it
    r = _post(client, ph, [e[5], _ev(3, 0, "safe", 2100.5)])
    assert r.status_code == 409
    assert r.json() == {"detail": "event seq 3 of participant 'P01' is already stored with different content "
                                  "(trial 0, type 'safe', t_ms 2100.25)"}
    r = _post(client, ph, [e[5], _ev(5, 0, "trial_end", 1.0)])
    assert r.status_code == 409 and r.json()["detail"] == ("events[1]: seq 5 appears twice in this call with "
                                                           "different content")
    assert client.get("/api/progress", headers=ph).json() == {"acked": 4, "next_trial": 0}
    assert _post(client, ph, [e[5]]).json() == {"acked": 5}
    assert client.get("/api/progress", headers=ph).json() == {"acked": 5, "next_trial": 1}
    with sqlite3.connect(tmp_path / "study.sqlite") as con:
        rows = con.execute("SELECT seq, trial, type, t_ms, data FROM nureality_events ORDER BY seq").fetchall()
    assert rows == [(1, 0, "trial_start", -1500.0, "{}"), (2, 0, "onset", 0.0, "{}"), (3, 0, "safe", 2100.25, "{}"),
                    (4, 0, "decision", 2500.0, '{"cross": true}'), (5, 0, "trial_end", 6000.0, "{}")]


@pytest.mark.parametrize("event,detail", [
    (_ev(1, 2, "onset", 0), "events[0].trial: must be a trial index from 0 to 1, got 2"),
    (_ev(1, 0, "likert", 0, {"item": 0, "value": 8}), "events[0].data.value: must be an integer from 1 to 7, got 8"),
    (_ev(1, 0, "likert", 0, {"item": 2, "value": 3}),
     "events[0].data.item: must be a Likert item index from 0 to 1, got 2"),
    (_ev(1, 0, "decision", 0, {"cross": "yes"}),
     "events[0].data.cross: a decision needs cross true or false, got 'yes'"),
    (_ev(0, 0, "onset", 0), "body.events.0.seq: Input should be greater than or equal to 1"),
    (_ev(1, 0, "wave", 0), "body.events.0.type: Input should be 'trial_start', 'onset', 'safe', 'decision', "
                           "'likert' or 'trial_end'"),
    (_ev(1, 0, "safe", math.inf), "body.events.0.t_ms: Input should be a finite number"),
])
def test_malformed_events_are_refused(client, event, detail):
    study = _study(client)
    _, ph = _join(client, study["code"], "P01")
    r = _post(client, ph, [_ev(2, 0, "onset", 0.0), event] if event["seq"] != 2 else [event])
    assert r.status_code == 422 and r.json() == {"detail": detail.replace("events[0]", "events[1]")
                                                 .replace("events.0", "events.1")}
    assert client.get("/api/progress", headers=ph).json() == {"acked": 0, "next_trial": 0}
    assert _post(client, ph, [_ev(1, 0, "onset", 0.0)]).json() == {"acked": 1}  # nothing of that call was stored


def _trial_events(trial, safe_ms, cross, likert, onset_ms=0.0):
    """The events one trial of the page sends, without seq numbers."""
    out = [("trial_start", -1000.0, {}), ("onset", onset_ms, {})]
    out += [("safe", t, {}) for t in safe_ms]
    if cross is not None:
        out.append(("decision", 7000.0, {"cross": cross}))
    out += [("likert", 8000.0 + i, {"item": i, "value": v}) for i, v in enumerate(likert)]
    out.append(("trial_end", 9000.0, {}))
    return [{"trial": trial, "type": t, "t_ms": ms, "data": d} for t, ms, d in out]


def _numbered(events, first=1):
    return [{"seq": first + i, **e} for i, e in enumerate(events)]


def test_decision_time_is_first_safe_event_relative_to_onset(client):
    study = _study(client, likert=("Safe?",))
    _, ph = _join(client, study["code"], "P01")
    # trial 0: SPACE pressed three times; the first press (2.4375 s after onset) is the decision time
    ev = _trial_events(0, [2437.5, 2900.0, 3100.0], True, [6])
    # trial 1: an interrupted attempt (reload) with a press at 1.0 s, then the full trial with a press at 3.25 s
    ev += [{"trial": 1, "type": "trial_start", "t_ms": -800.0, "data": {}},
           {"trial": 1, "type": "safe", "t_ms": 1000.0, "data": {}}]
    ev += _trial_events(1, [3250.0], False, [2])
    assert _post(client, ph, _numbered(ev)).json() == {"acked": len(ev)}
    rows = client.get("/api/admin/studies/1/trials", headers=AH).json()
    assert rows == [
        {"participant": "P01", "participant_id": 1, "trial": 0, "block": 0, "scenario": "a", "attempts": 1,
         "decision_time_s": 2.4375, "cross": True, "likert": [6], "complete": True},
        {"participant": "P01", "participant_id": 1, "trial": 1, "block": 0, "scenario": "b", "attempts": 2,
         "decision_time_s": 3.25, "cross": False, "likert": [2], "complete": True},
    ]
    assert client.get("/api/progress", headers=ph).json() == {"acked": len(ev), "next_trial": 2}


def test_csv_export_exact(client):
    study = _study(client, scenarios=("a", "b"), order="latin", repetitions=1, likert=("Safe?", "Clear?"))
    _, p1 = _join(client, study["code"], "P01")
    _, p2 = _join(client, study["code"], "P02")
    _join(client, study["code"], "P03")  # joined, sent nothing
    ev1 = _trial_events(0, [1500.0, 1800.0], True, [5, 6])
    ev1 += _trial_events(1, [], False, [3])[:-1]  # no press, one Likert item, no trial_end yet
    ev1.append({"trial": 1, "type": "likert", "t_ms": 9500.0, "data": {"item": 0, "value": 4}})  # corrected
    assert _post(client, p1, _numbered(ev1)).json() == {"acked": len(ev1)}
    ev2 = _trial_events(0, [-250.0], True, [7, 7])  # pressed before onset: negative decision time
    assert _post(client, p2, _numbered(ev2)).json() == {"acked": len(ev2)}
    r = client.get(f"/api/admin/studies/{study['id']}/export.csv", headers=AH)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text == (
        "study,participant,trial,block,scenario,attempts,decision_time_s,cross,likert_0,likert_1,complete\n"
        "pilot,P01,0,0,a,1,1.5,true,5,6,true\n"
        "pilot,P01,1,0,b,1,,false,4,,false\n"
        "pilot,P02,0,0,b,1,-0.25,true,7,7,true\n"
        "pilot,P02,1,0,a,0,,,,,false\n"
        "pilot,P03,0,0,a,0,,,,,false\n"
        "pilot,P03,1,0,b,0,,,,,false\n")
    assert client.get("/api/progress", headers=p1).json() == {"acked": len(ev1), "next_trial": 1}


def test_page_and_vendor_served_after_the_api(tmp_path, scenarios_dir):
    web = tmp_path / "web"
    (web / "vendor").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>nuReality</title>", encoding="utf-8")
    (web / "vendor" / "three.module.js").write_text("export const REVISION = 'test';\n", encoding="utf-8")
    with TestClient(make_app(tmp_path / "db.sqlite", ADMIN, scenarios_dir, web_dir=web)) as c:
        r = c.get("/")
        assert r.status_code == 200 and r.text == "<!doctype html><title>nuReality</title>"
        r = c.get("/vendor/three.module.js")
        assert r.status_code == 200 and r.text == "export const REVISION = 'test';\n"
        assert "javascript" in r.headers["content-type"]
        assert c.get("/api/scenarios/b").json() == SCENARIOS["b"]
        assert c.get("/missing.js").status_code == 404
    with TestClient(make_app(tmp_path / "db.sqlite", ADMIN, scenarios_dir, web_dir=tmp_path / "none")) as c:
        assert c.get("/").status_code == 404


def test_sqlite_connection_settings_and_unique_seq(tmp_path):
    base = store.connect(tmp_path / "b.sqlite", wal=False)  # the benchmark's baseline: SQLite's defaults
    with base() as s:
        assert s.connection().exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        assert s.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    base.kw["bind"].dispose()
    factory = store.connect(tmp_path / "s.sqlite")
    with factory() as s:
        assert s.connection().exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert s.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: survives power loss
        assert s.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    with store.writing(factory) as s:
        study = store.create_study(s, "x", ["a"], "latin", 1, [], seed=1)
        p = store.join(s, study, "P01")
        assert store.add_events(s, p, [{"seq": 2, "trial": 0, "type": "onset", "t_ms": 0}]) == 0
        s.add(store.Event(participant_id=p.id, seq=2, trial=0, type="onset", t_ms=0.0, data={}))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        assert list(s.scalars(select(store.Event.seq))) == [2]
        assert store.acked(s, p) == 0
    factory.kw["bind"].dispose()


# ---------------------------------------------------------------------------------------------------------
# real servers: concurrency and restart


def _stream(n: int, n_trials: int) -> list[dict]:
    """n events of one participant with fixed content per seq (so that re-sends are identical)."""
    types = ["trial_start", "onset", "safe", "decision", "likert", "trial_end"]
    out = []
    for seq in range(1, n + 1):
        typ = types[(seq - 1) % len(types)]
        data = {"cross": seq % 2 == 0} if typ == "decision" else ({"item": 0, "value": 1 + seq % 7}
                                                                   if typ == "likert" else {})
        out.append(_ev(seq, ((seq - 1) // len(types)) % n_trials, typ, 10.0 * seq - 25.0, data))
    return out


def _contiguous(seqs: set[int]) -> int:
    n = 0
    while n + 1 in seqs:
        n += 1
    return n


def _participant_session(url: str, code: str, label: str, n_events: int, seed: int) -> list[str]:
    """One simulated participant: join, then send the events in random batches, holding some back (gaps) and
    re-sending random earlier batches; every ack must be the contiguous prefix of what was sent."""
    rng = random.Random(seed)
    with _http(url) as c:
        j, ph = _join(c, code, label)
        events = _stream(n_events, len(j["trials"]))
        batches, i = [], 0
        while i < n_events:
            k = rng.randint(1, 6)
            batches.append(events[i:i + k])
            i += k
        sent: set[int] = set()
        done: list[list[dict]] = []
        held: list[dict] | None = None

        def send(batch):
            r = _post(c, ph, batch)
            assert r.status_code == 200, r.text
            sent.update(e["seq"] for e in batch)
            assert r.json() == {"acked": _contiguous(sent)}
            done.append(batch)

        for batch in batches:
            if held is None and rng.random() < 0.2:
                held = batch  # this one goes later: the server sees a gap
                continue
            send(batch)
            if held is not None and rng.random() < 0.5:
                send(held)
                held = None
            if rng.random() < 0.3:
                send(rng.choice(done))  # a re-send, as after a lost response
        if held is not None:
            send(held)
        assert _post(c, ph, events[:3]).json() == {"acked": n_events}
        assert c.get("/api/progress", headers=ph).json()["acked"] == n_events
        return [t["scenario"] for t in j["trials"]]


def test_concurrent_participants_lose_and_duplicate_nothing(tmp_path, scenarios_dir):
    n_participants, n_events = 20, 50
    db = tmp_path / "concurrent.sqlite"
    with running(make_app(db, ADMIN, scenarios_dir, web_dir=tmp_path / "no-web")) as url:
        with _http(url) as c:
            study = _study(c, scenarios=("a", "b", "c"), order="latin", repetitions=1)
        with ThreadPoolExecutor(max_workers=n_participants) as pool:
            futures = [pool.submit(_participant_session, url, study["code"], f"P{i:02d}", n_events, 1000 + i)
                       for i in range(n_participants)]
            plans = [f.result() for f in futures]
        with _http(url) as c:
            rows = c.get(f"/api/admin/studies/{study['id']}/trials", headers=AH).json()
    assert len(rows) == n_participants * 3
    # concurrent joins got distinct join indices 0..19, so the plans are exactly the Latin-square rows 0..19
    assert Counter(map(tuple, plans)) == Counter(tuple(trial_plan(["a", "b", "c"], "latin", 1, i, 0))
                                                 for i in range(n_participants))
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM nureality_events").fetchone() == (n_participants * n_events,)
        per = con.execute("SELECT participant_id, COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) "
                          "FROM nureality_events GROUP BY participant_id").fetchall()
        indices = sorted(r[0] for r in con.execute("SELECT \"index\" FROM nureality_participants"))
    assert sorted(r[1:] for r in per) == [(n_events, n_events, 1, n_events)] * n_participants
    assert indices == list(range(n_participants))


def test_restart_mid_session_resumes_from_acked(tmp_path, scenarios_dir):
    db = tmp_path / "restart.sqlite"
    likert = ("Safe?", "Clear?")
    full = []
    for trial, (safe, cross, lik) in enumerate([([2000.0], True, [6, 5]), ([], False, [2, 3]),
                                                ([1750.5], True, [7, 6])]):
        full += _trial_events(trial, safe, cross, lik)
    full = _numbered(full)
    half = len(full) // 2
    with running(make_app(db, ADMIN, scenarios_dir, web_dir=tmp_path / "no-web")) as url:
        with _http(url) as c:
            study = _study(c, scenarios=("a", "b", "c"), order="latin", likert=likert)
            j, ph = _join(c, study["code"], "P07")
            for start in range(0, half, 4):
                assert _post(c, ph, full[start:min(start + 4, half)]).json() == {"acked": min(start + 4, half)}
            before = c.get("/api/progress", headers=ph).json()
    assert before == {"acked": half, "next_trial": 1}
    # a new server (new app, new engine) on the same SQLite file
    with running(make_app(db, ADMIN, scenarios_dir, web_dir=tmp_path / "no-web")) as url:
        with _http(url) as c:
            again, ph2 = _join(c, study["code"], "P07", ph)
            assert again == j and ph2 == ph
            prog = c.get("/api/progress", headers=ph).json()
            assert prog == before
            # the page resends what it cannot know was stored (its last batch) and continues from acked + 1
            rest = full[prog["acked"] - 2:]
            for start in range(0, len(rest), 5):
                r = _post(c, ph, rest[start:start + 5])
                assert r.json() == {"acked": rest[min(start + 5, len(rest)) - 1]["seq"]}
            assert c.get("/api/progress", headers=ph).json() == {"acked": len(full), "next_trial": 3}
            rows = c.get(f"/api/admin/studies/{study['id']}/trials", headers=AH).json()
            csv_text = c.get(f"/api/admin/studies/{study['id']}/export.csv", headers=AH).text
    assert [(r["scenario"], r["decision_time_s"], r["cross"], r["likert"], r["complete"]) for r in rows] == [
        ("a", 2.0, True, [6, 5], True), ("b", None, False, [2, 3], True), ("c", 1.7505, True, [7, 6], True)]
    assert csv_text.splitlines()[1:] == ["pilot,P07,0,0,a,1,2.0,true,6,5,true", "pilot,P07,1,0,b,1,,false,2,3,true",
                                         "pilot,P07,2,0,c,1,1.7505,true,7,6,true"]
    with sqlite3.connect(db) as con:
        seqs = [r[0] for r in con.execute("SELECT seq FROM nureality_events ORDER BY seq")]
    assert seqs == list(range(1, len(full) + 1))
    assert Path(db).is_file()
