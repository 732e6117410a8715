"""The nuReality study server under load, faults and hostile input: 200 concurrent participants against a real
uvicorn, kill -9 mid-burst, oversized and malformed bodies, wrong tokens, out-of-range numbers, label
takeover, formula text in the export, and files the page folder must not serve."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event

from discern.core.serving import LocalServer, free_port
from discern.nureality import store
from discern.nureality.server import make_app

ADMIN = "admin-secret-token"
AH = {"Authorization": f"Bearer {ADMIN}"}
SCENARIOS = {"a": {"id": "a", "yields": True}, "b": {"id": "b", "yields": False}}
HOSTILE_TEXT = ["<script>alert(1)</script>", "=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(1,1)",
                "'quoted", "a,b\"c", "ünï\u200bcode"]


@pytest.fixture
def scenarios_dir(tmp_path):
    d = tmp_path / "scenarios"
    d.mkdir()
    for sid, obj in SCENARIOS.items():
        (d / f"{sid}.json").write_text(json.dumps(obj), encoding="utf-8")
    return d


@pytest.fixture
def web_dir(tmp_path):
    web = tmp_path / "web"
    (web / "vendor").mkdir(parents=True)
    (web / "node_modules" / "three").mkdir(parents=True)
    (web / "index.html").write_text('<!doctype html><script type="importmap">{"imports": {}}</script>'
                                    '<title>study</title>', encoding="utf-8")
    (web / "app.js").write_text("export {};\n", encoding="utf-8")
    (web / "package.json").write_text('{"dependencies": {"three": "0.187.0"}}', encoding="utf-8")
    (web / "copy-vendor.mjs").write_text("// build step\n", encoding="utf-8")
    (web / "node_modules" / "three" / "package.json").write_text("{}", encoding="utf-8")
    (web / "vendor" / "three.module.js").write_text("export const REVISION = 't';\n", encoding="utf-8")
    return web


@pytest.fixture
def client(tmp_path, scenarios_dir, web_dir):
    with TestClient(make_app(tmp_path / "study.sqlite", ADMIN, scenarios_dir, web_dir=web_dir)) as c:
        yield c


def _study(c, **over):
    body = {"name": "pilot", "scenarios": ["a", "b"], "order": "latin", "repetitions": 1, "likert": ["Safe?"],
            "seed": 3, **over}
    r = c.post("/api/admin/studies", headers=AH, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _join(c, code, label):
    r = c.post("/api/join", json={"code": code, "participant": label})
    assert r.status_code == 200, r.text
    return r.json(), {"Authorization": f"Bearer {r.json()['token']}"}


def _ev(seq, trial=0, typ="onset", t_ms=0.0, data=None):
    return {"seq": seq, "trial": trial, "type": typ, "t_ms": t_ms, "data": {} if data is None else data}


# ---------------------------------------------------------------------------------------------------------
# tokens and takeover


def test_every_route_refuses_missing_wrong_and_other_users_tokens(client):
    study = _study(client)
    _, p1 = _join(client, study["code"], "P01")
    wrong = {"Authorization": "Bearer wrong-token-value"}
    admin_routes = [("POST", "/api/admin/studies", {"json": {"name": "x", "scenarios": ["a"], "order": "latin",
                                                               "repetitions": 1}}),
                    ("GET", f"/api/admin/studies/{study['id']}/trials", {}),
                    ("GET", f"/api/admin/studies/{study['id']}/export.csv", {})]
    for method, path, kw in admin_routes:
        assert client.request(method, path, **kw).status_code == 401, path
        assert client.request(method, path, headers=wrong, **kw).status_code == 403, path
        # a participant's token is not an admin token
        r = client.request(method, path, headers=p1, **kw)
        assert r.status_code == 403 and r.json() == {"detail": "the admin token is not valid"}, path
    for method, path, kw in [("POST", "/api/events", {"json": {"events": [_ev(1)]}}), ("GET", "/api/progress", {})]:
        r = client.request(method, path, **kw)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
        r = client.request(method, path, headers=wrong, **kw)
        assert r.status_code == 403 and r.json() == {"detail": "the participant token is not valid: join the study "
                                                     "again"}, path
        # the admin token is not a participant token
        assert client.request(method, path, headers=AH, **kw).status_code == 403, path


def test_token_is_checked_before_the_body_is_parsed(client):
    # a stranger's malformed (or huge-but-allowed) body is refused for the token, not parsed for a 422
    for body in (b"{not json", b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
        r = client.post("/api/events", content=body, headers={"Authorization": "Bearer wrong-token-value",
                                                             "Content-Type": "application/json"})
        assert r.status_code == 403, r.text
        assert client.post("/api/events", content=body).status_code == 401


def test_joining_again_with_a_taken_label_needs_its_token_and_failures_are_rate_limited(tmp_path, scenarios_dir):
    with TestClient(make_app(tmp_path / "s.sqlite", ADMIN, scenarios_dir, join_failures=(5, 60.0))) as c:
        study = _study(c)
        j, h = _join(c, study["code"], "P01")
        r = c.post("/api/join", json={"code": study["code"], "participant": "P01"}, headers=h)
        assert r.status_code == 200 and r.json()["token"] == j["token"] and r.headers["cache-control"] == "no-store"
        # the first participant's events are safe from a second browser using the same label
        assert c.post("/api/events", headers=h, json={"events": [_ev(1, t_ms=1500.0)]}).json() == {"acked": 1}
        r = c.post("/api/join", json={"code": study["code"], "participant": "P01"})
        assert r.status_code == 409 and "token" not in r.text
        for _ in range(4):  # 5 refused joins in all (one 409 above, four 404s) ...
            assert c.post("/api/join", json={"code": "ZZZZZZ", "participant": "x"}).status_code == 404
        # ... then every join from this address waits, even a valid one
        r = c.post("/api/join", json={"code": study["code"], "participant": "P02"})
        assert r.status_code == 429 and r.headers["retry-after"] == "60.0"
        assert r.json()["detail"].startswith("too many refused joins from this address: try again in ")
        rows = c.get(f"/api/admin/studies/{study['id']}/trials", headers=AH).json()
    assert [(r["participant"], r["decision_time_s"]) for r in rows] == [("P01", None), ("P01", None)]
    with store.connect(tmp_path / "s.sqlite")() as s:
        assert [(e.seq, e.t_ms) for e in s.query(store.Event)] == [(1, 1500.0)]


# ---------------------------------------------------------------------------------------------------------
# bodies, types and ranges


def test_oversized_bodies_get_413_before_parsing(tmp_path, scenarios_dir):
    with TestClient(make_app(tmp_path / "s.sqlite", ADMIN, scenarios_dir, max_body=4096)) as c:
        study = _study(c)
        _, h = _join(c, study["code"], "P01")
        big = json.dumps({"events": [_ev(i) for i in range(1, 200)]}).encode()
        assert len(big) > 4096
        for path, headers in [("/api/events", h), ("/api/events", {}), ("/api/join", {}),
                              ("/api/admin/studies", AH)]:
            r = c.post(path, content=big, headers={**headers, "Content-Type": "application/json"})
            assert r.status_code == 413 and r.json() == {"detail": "request body too large: at most 4096 bytes"}
            # the same without a Content-Length (chunked): cut off while it streams in
            r = c.post(path, content=iter([big[:3000], big[3000:]]), headers=headers)
            assert r.status_code == 413, path
        r = c.post("/api/events", content=b"{}", headers={**h, "Content-Length": "-5"})
        assert r.status_code == 400
        assert c.get("/api/progress", headers=h).json() == {"acked": 0, "next_trial": 0}


@pytest.mark.parametrize("event,message", [
    (_ev(True), "body.events.0.seq: Input should be a valid integer"),
    (_ev(1.0), "body.events.0.seq: Input should be a valid integer"),
    (_ev("1"), "body.events.0.seq: Input should be a valid integer"),
    (_ev(0), "body.events.0.seq: Input should be greater than or equal to 1"),
    (_ev(2**31), "body.events.0.seq: Input should be less than or equal to 2147483647"),
    (_ev(2**63), "body.events.0.seq: Input should be less than or equal to 2147483647"),
    (_ev(10**40), "body.events.0.seq: Input should be less than or equal to 2147483647"),
    (_ev(1, trial=2**64), "body.events.0.trial: Input should be less than or equal to 2147483647"),
    (_ev(1, trial=5), "events[0].trial: must be a trial index from 0 to 1, got 5"),
    (_ev(1, trial=True), "body.events.0.trial: Input should be a valid integer"),
    (_ev(1, t_ms=1e300), "body.events.0.t_ms: Input should be less than or equal to 1000000000"),
    (_ev(1, typ="<script>"), "body.events.0.type: Input should be 'trial_start', 'onset', 'safe', 'decision', "
                             "'likert' or 'trial_end'"),
    (_ev(1, data=[1]), "body.events.0.data: Input should be an object"),
    (_ev(1, data={"x": "y" * 5000}), "events[0].data: at most 2048 bytes as JSON, got 5008"),
    (_ev(1, typ="likert", data={"item": 0, "value": 2**63}), "events[0].data.value: must be an integer from 1 to "
                                                             "7, got 9223372036854775808"),
    (_ev(1, typ="decision", data={"cross": "yes"}), "events[0].data.cross: a decision needs cross true or false, "
                                                    "got 'yes'"),
])
def test_wrong_types_and_out_of_range_numbers_are_422(client, event, message):
    study = _study(client)
    _, h = _join(client, study["code"], "P01")
    r = client.post("/api/events", headers=h, json={"events": [event]})
    assert r.status_code == 422 and r.json() == {"detail": message}
    assert client.get("/api/progress", headers=h).json()["acked"] == 0


@pytest.mark.parametrize("raw,start", [
    (b'{"events": [{"seq": 1, "trial": 0, "type": "onset", "t_ms": NaN, "data": {}}]}', "body.events.0.t_ms"),
    (b'{"events": [{"seq": 1, "trial": 0, "type": "onset", "t_ms": Infinity, "data": {}}]}', "body.events.0.t_ms"),
    (b'{"events": [{"seq": 1, "trial": 0, "type": "onset", "t_ms": 0, "data": {"x": NaN}}]}', "events[0].data: "),
    (b'{"events": [', "body: Invalid JSON"),
    (b"\xff\xfe", "body: Invalid JSON"),
    (b"", "body: Invalid JSON"),
    (b"[]", "body: Input should be an object"),
    (b'{"events": {}}', "body.events: Input should be a valid array"),
    (b'{"events": [' + b'{"seq": 1},' * 1000 + b'{"seq": 1}]}', "body.events: List should have at most 1000 items after validation, not 1001"),
])
def test_malformed_json_and_non_finite_numbers_are_422(client, raw, start):
    study = _study(client)
    _, h = _join(client, study["code"], "P01")
    r = client.post("/api/events", headers={**h, "Content-Type": "application/json"}, content=raw)
    assert r.status_code == 422 and r.json()["detail"].startswith(start), r.text
    assert "\n" not in r.json()["detail"]


def test_admin_and_join_bodies_are_typed_and_bounded(client):
    cases = [
        ({"name": "x" * 201}, "body.name: String should have at most 200 characters"),
        ({"name": 5}, "body.name: Input should be a valid string"),
        ({"repetitions": True}, "body.repetitions: Input should be a valid integer"),
        ({"repetitions": 2**63}, "body.repetitions: Input should be less than or equal to 100"),
        ({"seed": 2**63}, "body.seed: Input should be less than 2147483648"),
        ({"seed": -1}, "body.seed: Input should be greater than or equal to 0"),
        ({"scenarios": ["a"] * 101}, "body.scenarios: List should have at most 100 items after validation, not 101"),
        ({"likert": ["q"] * 51}, "body.likert: List should have at most 50 items after validation, not 51"),
        ({"likert": [""]}, "body.likert.0: String should have at least 1 character"),
        ({"order": "<b>x</b>"}, "body.order: Input should be 'random' or 'latin'"),
    ]
    for over, message in cases:
        body = {"name": "pilot", "scenarios": ["a", "b"], "order": "latin", "repetitions": 1, **over}
        r = client.post("/api/admin/studies", headers=AH, json=body)
        assert r.status_code == 422 and r.json() == {"detail": message}, over
    for path in ("/api/admin/studies/0/trials", f"/api/admin/studies/{2**63}/trials", "/api/admin/studies/x/trials",
                 f"/api/admin/studies/{10**30}/export.csv"):
        r = client.get(path, headers=AH)
        assert r.status_code == 422 and r.json()["detail"].startswith("path.study_id: "), path
    assert client.get(f"/api/admin/studies/{2**31 - 1}/trials", headers=AH).status_code == 404
    study = _study(client)
    for body, message in [({"code": study["code"], "participant": "p" * 101},
                           "body.participant: String should have at most 100 characters"),
                          ({"code": 123456, "participant": "P"}, "body.code: Input should be a valid string"),
                          ({"code": study["code"]}, "body.participant: Field required")]:
        r = client.post("/api/join", json=body)
        assert r.status_code == 422 and r.json() == {"detail": message}
    for sid in ("../a", "a/../../b", "%2e%2e", "<script>", "a" * 101):
        assert client.get(f"/api/scenarios/{sid}").status_code == 404, sid


def test_duplicate_and_out_of_order_seqs(client):
    study = _study(client)
    _, h = _join(client, study["code"], "P01")
    assert client.post("/api/events", headers=h, json={"events": [_ev(3), _ev(2)]}).json() == {"acked": 0}
    assert client.post("/api/events", headers=h, json={"events": [_ev(1), _ev(1)]}).json() == {"acked": 3}
    r = client.post("/api/events", headers=h, json={"events": [_ev(2, t_ms=9.0)]})
    assert r.status_code == 409 and r.json()["detail"].startswith("event seq 2 of participant 'P01' is already stored")
    r = client.post("/api/events", headers=h, json={"events": [_ev(4), _ev(4, t_ms=1.0)]})
    assert r.status_code == 409
    assert client.post("/api/events", headers=h, json={"events": [_ev(2**31 - 1)]}).json() == {"acked": 3}


def test_ack_reads_only_the_seqs_above_the_stored_ack(tmp_path):
    factory = store.connect(tmp_path / "s.sqlite")
    with store.writing(factory) as s:
        study = store.create_study(s, "x", ["a"], "latin", 1, [], seed=1)
        p = store.join(s, study, "P01")
        for start in range(1, 3001, 1000):
            store.add_events(s, p, [_ev(k) for k in range(start, start + 1000)])
        assert p.acked == 3000
        seen = []
        sa_event.listen(factory.kw["bind"], "before_cursor_execute",
                        lambda conn, cur, stmt, params, ctx, many: seen.append((stmt, params)))
        assert store.add_events(s, p, [_ev(3001), _ev(3003)]) == 3001
        reads = [params for stmt, params in seen if "nureality_events.seq >" in stmt]
        assert reads == [(p.id, 3000, store.MAX_EVENTS_PER_CALL, 0)]  # (participant, seq >, limit, offset)
        assert store.acked(s, p) == 3001 and p.acked == 3001
    factory.kw["bind"].dispose()


def test_a_database_without_the_ack_column_is_upgraded(tmp_path):
    db = tmp_path / "old.sqlite"
    factory = store.connect(db)
    with store.writing(factory) as s:
        study = store.create_study(s, "x", ["a"], "latin", 1, [], seed=1)
        p = store.join(s, study, "P01")
        store.add_events(s, p, [_ev(k) for k in (1, 2, 3, 5)])
    factory.kw["bind"].dispose()
    with sqlite3.connect(db) as con:
        con.execute("ALTER TABLE nureality_participants DROP COLUMN acked")
    factory = store.connect(db)
    with factory() as s:
        (p,) = s.query(store.Participant).all()
        assert p.acked == 3 and store.progress(s, p)["acked"] == 3
    factory.kw["bind"].dispose()


# ---------------------------------------------------------------------------------------------------------
# what comes back out: pages and exports


def test_formula_and_html_text_is_neutralised_in_the_export_and_kept_in_json(client):
    study = _study(client, name="=cmd|' /C calc'!A0")
    labels = HOSTILE_TEXT
    for label in labels:
        _join(client, study["code"], label)
    rows = client.get(f"/api/admin/studies/{study['id']}/trials", headers=AH).json()
    assert [r["participant"] for r in rows[::2]] == labels  # JSON keeps the text as given
    text = client.get(f"/api/admin/studies/{study['id']}/export.csv", headers=AH).text
    import csv
    import io

    cells = list(csv.reader(io.StringIO(text)))[1:]
    assert {r[0] for r in cells} == {"'=cmd|' /C calc'!A0"}
    assert [r[1] for r in cells[::2]] == ["<script>alert(1)</script>", "'=HYPERLINK(\"http://x\",\"y\")", "'+1+1",
                                          "'-2+3", "'@SUM(1,1)", "'quoted", "a,b\"c", "ünï\u200bcode"]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for r in cells for c in r)
    assert [store.safe_cell(t) for t in ("\t=1", "\r=1", "-1.5", "a=b", "")] == ["'\t=1", "'\r=1", "'-1.5", "a=b", ""]
    # control characters (which could break a row or hide in a cell) are refused at the door
    for label in ("\t=1", "a\rb", "a\nb", "nul\x00"):
        r = client.post("/api/join", json={"code": study["code"], "participant": label})
        assert r.status_code == 422 and "without control characters" in r.json()["detail"], label
    r = client.post("/api/admin/studies", headers=AH, json={"name": "a\nb", "scenarios": ["a"], "order": "latin",
                                                           "repetitions": 1})
    assert r.status_code == 422 and "without control characters" in r.json()["detail"]


def test_page_folder_serves_only_the_page_with_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and r.text.startswith("<!doctype html>")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'sha256-" in csp and "'unsafe-inline'" not in csp
    for name in ("/", "/app.js", "/vendor/three.module.js", "/api/scenarios/a", "/nothing"):
        h = client.get(name).headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", name
        assert h["referrer-policy"] == "no-referrer", name
    assert client.get("/app.js").status_code == 200
    for name in ("/package.json", "/copy-vendor.mjs", "/node_modules/three/package.json", "/vendor/../package.json",
                 "/%2e%2e/package.json", "/.git/config"):
        assert client.get(name).status_code == 404, name


# ---------------------------------------------------------------------------------------------------------
# load: 200 concurrent participants against a real uvicorn


async def _participant(http: httpx.AsyncClient, code: str, label: str, n_batches: int, batch: int) -> dict:
    r = await http.post("/api/join", json={"code": code, "participant": label})
    assert r.status_code == 200, r.text
    h = {"Authorization": f"Bearer {r.json()['token']}"}
    acked, statuses = 0, []
    for b in range(n_batches):
        evs = [_ev(k, t_ms=float(k), data={"who": label}) for k in range(b * batch + 1, (b + 1) * batch + 1)]
        r = await http.post("/api/events", headers=h, json={"events": evs})
        statuses.append(r.status_code)
        if r.status_code == 200:
            acked = r.json()["acked"]
    return {"label": label, "acked": acked, "statuses": statuses}


def test_200_concurrent_participants_no_hang_no_5xx_every_event_once(tmp_path, scenarios_dir, web_dir):
    n, n_batches, batch = 200, 3, 4
    db = tmp_path / "load.sqlite"
    with LocalServer(make_app(db, ADMIN, scenarios_dir, web_dir=web_dir)) as url:
        with httpx.Client(base_url=url, trust_env=False) as c:
            study = _study(c)

        async def main():
            limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, trust_env=False) as http:
                runs = [_participant(http, study["code"], f"L{i:03d}", n_batches, batch) for i in range(n)]
                page = asyncio.sleep(0.2)

                async def page_during_burst():
                    await page
                    return (await http.get("/index.html")).status_code

                return await asyncio.wait_for(asyncio.gather(page_during_burst(), *runs), timeout=120)

        page_status, *results = asyncio.run(main())
    assert page_status == 200
    assert all(s == 200 for r in results for s in r["statuses"]), [r for r in results if set(r["statuses"]) != {200}]
    assert [r["acked"] for r in results] == [n_batches * batch] * n
    with sqlite3.connect(db) as con:
        per = con.execute("SELECT p.label, COUNT(*), COUNT(DISTINCT e.seq), MAX(e.seq), "
                          "SUM(json_extract(e.data, '$.who') = p.label) FROM nureality_events e "
                          "JOIN nureality_participants p ON p.id = e.participant_id GROUP BY p.label").fetchall()
    total = n_batches * batch
    assert sorted(per) == [(f"L{i:03d}", total, total, total, total) for i in range(n)]


# ---------------------------------------------------------------------------------------------------------
# fault: kill -9 of the server mid-burst, then restart


def _start_server(db: Path, port: int, scenarios: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "discern", "nureality", "serve", "--db", str(db), "--port",
                             str(port), "--admin-token", ADMIN, "--scenarios", str(scenarios)],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/scenarios/a", timeout=2, trust_env=False).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
    proc.kill()
    raise AssertionError("the server did not start: " + log.read_text()[-2000:])


def test_kill_9_mid_burst_loses_no_acknowledged_event(tmp_path, scenarios_dir):
    db, port, log = tmp_path / "fault.sqlite", free_port(), tmp_path / "server.log"
    n, batch = 40, 5
    proc = _start_server(db, port, scenarios_dir, log)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, trust_env=False) as c:
            study = _study(c)
            joined = [_join(c, study["code"], f"K{i:02d}") for i in range(n)]
        acked = [0] * n

        async def sender(i: int, http: httpx.AsyncClient):
            h = joined[i][1]
            seq = 1
            while True:  # until the server dies under it
                evs = [_ev(k, t_ms=float(k), data={"i": i}) for k in range(seq, seq + batch)]
                try:
                    r = await http.post("/api/events", headers=h, json={"events": evs})
                except httpx.TransportError:
                    return
                assert r.status_code == 200, r.text
                acked[i] = max(acked[i], r.json()["acked"])
                seq += batch

        async def burst():
            limits = httpx.Limits(max_connections=n + 5)
            async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits, trust_env=False) as http:
                tasks = [asyncio.create_task(sender(i, http)) for i in range(n)]
                while sum(acked) < 20 * n:  # well into the burst
                    await asyncio.sleep(0.05)
                os.kill(proc.pid, signal.SIGKILL)
                await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

        asyncio.run(burst())
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        proc = _start_server(db, port, scenarios_dir, log)
        with httpx.Client(base_url=url, trust_env=False) as c:
            after = [c.get("/api/progress", headers=joined[i][1]).json()["acked"] for i in range(n)]
            # every participant resumes from its ack: one more batch from acked + 1 is stored and acknowledged
            for i in range(n):
                r = c.post("/api/events", headers=joined[i][1],
                           json={"events": [_ev(k, t_ms=float(k), data={"i": i}) for k in range(after[i] + 1,
                                                                                           after[i] + 1 + batch)]})
                assert r.json() == {"acked": after[i] + batch}
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert all(a >= b for a, b in zip(after, acked)), list(zip(after, acked))
    assert sum(acked) >= 20 * n
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT p.label, e.seq, e.t_ms, json_extract(e.data, '$.i') FROM nureality_events e "
                           "JOIN nureality_participants p ON p.id = e.participant_id").fetchall()
    for i in range(n):
        mine = sorted((seq, t, who) for label, seq, t, who in rows if label == f"K{i:02d}")
        assert [s for s, _, _ in mine] == list(range(1, after[i] + batch + 1))
        assert all(t == float(s) and who == i for s, t, who in mine)
