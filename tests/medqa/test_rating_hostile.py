"""The rating application under hostile input, table by table over every route: credentials that are missing,
wrong or another rater's; malformed JSON; wrong types and out-of-range numbers (422, never 500); bodies over
the size limits (413 before parsing); HTML and script text in every text field (kept as text, escaped in the
server's pages, rendered by the page with textContent); spreadsheet formulas in the CSV export; invitation
tokens (exchanged for hashed, expiring session ids, out of the URL and the access log; another rater's link
does not switch a signed-in browser silently) and the security headers."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import socket
import sqlite3
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from discern.core.serving import LocalServer
from discern.medqa.rating import app as rating_app
from discern.medqa.rating import db, schema
from discern.medqa.rating.app import make_app

ADMIN = "hostile-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
XSS = '<script>alert("x")</script><img src=x onerror="alert(1)">'
PAIRWISE = {a.key: "A" for a in schema.PAIRWISE_AXES}
PHYSICIAN = {a.key: a.good for a in schema.PHYSICIAN_AXES}
RECORDS = [
    {"question": f"Question one {XSS}",
     "answers": [{"text": f"Model answer {XSS}", "source": f"model:{XSS}"},
                 {"text": f"Reference answer {XSS}", "source": "physician"}], "meta": {"note": XSS}},
    {"question": "Question two",
     "answers": [{"text": "Model answer two", "source": "model:x"}, {"text": "Reference two", "source": "physician"}]},
    {"question": f"Question three {XSS}", "answers": [{"text": f"Single answer {XSS}", "source": "model:x"}]},
]
ROUTES = {
    ("POST", "/api/admin/studies"), ("POST", "/api/admin/studies/{study_id}/items"),
    ("POST", "/api/admin/studies/{study_id}/raters"), ("POST", "/api/admin/studies/{study_id}/assign"),
    ("GET", "/api/admin/studies/{study_id}/export.csv"), ("GET", "/api/admin/studies/{study_id}/stats"),
    ("GET", "/rate"), ("POST", "/rate"), ("GET", "/api/me"), ("GET", "/api/items"), ("GET", "/api/items/{item_id}"),
    ("POST", "/api/items/{item_id}/rating"),
}
SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer",
            "cross-origin-opener-policy": "same-origin", "cache-control": "no-store"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def assert_error(r: httpx.Response, status: int, what=None) -> str:
    """``r`` is ``status`` with ``{"detail": "<one line>"}`` as JSON; returns the detail."""
    assert r.status_code == status, (what, r.status_code, r.text[:400])
    assert r.headers["content-type"] == "application/json", (what, r.headers["content-type"])
    body = r.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str), (what, body)
    detail = body["detail"]
    assert detail and "\n" not in detail and "\r" not in detail and len(detail) <= 500, (what, detail)
    return detail


def counts(path) -> dict:
    with sqlite3.connect(path) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("studies", "items", "raters", "assignments", "ratings", "rater_sessions")}


@pytest.fixture
def site(tmp_path):
    """An SQLite study named with HTML, the three records, physicians ``alice <script>...`` (items 1 and 3)
    and ``bob`` (item 2) and lay rater ``carol`` (item 3), each signed in in a browser of their own.  Clients
    never raise a server error: a 500 is an answer to check like any other."""
    path = tmp_path / "ratings.db"
    app = make_app(str(path), ADMIN)

    def client(**kw):
        return TestClient(app, raise_server_exceptions=False, follow_redirects=False, **kw)

    admin = client(headers=AUTH)
    study = admin.post("/api/admin/studies", json={"name": f"Study {XSS}"}).json()["id"]
    ids = admin.post(f"/api/admin/studies/{study}/items", json=RECORDS).json()["ids"]
    raters, browsers = {}, {}
    for key, name, role, items in [("alice", f"alice {XSS}", "physician", [ids[0], ids[2]]),
                                   ("bob", "bob", "physician", [ids[1]]), ("carol", "carol", "lay", [ids[2]])]:
        raters[key] = admin.post(f"/api/admin/studies/{study}/raters", json={"name": name, "role": role}).json()
        assert admin.post(f"/api/admin/studies/{study}/assign",
                          json={"rater_id": raters[key]["id"], "item_ids": items}).json() == {"assigned": len(items)}
        browsers[key] = client()
        assert browsers[key].get("/rate", params={"token": raters[key]["token"]}).status_code == 303
    return SimpleNamespace(app=app, path=path, admin=admin, study=study, ids=ids, raters=raters, browsers=browsers,
                           client=client)


def admin_calls(site) -> list[tuple[str, str, object]]:
    """One valid call of each admin route: (method, url, JSON body or None)."""
    sid = site.study
    return [("POST", "/api/admin/studies", {"name": "another"}),
            ("POST", f"/api/admin/studies/{sid}/items", RECORDS[1:2]),
            ("POST", f"/api/admin/studies/{sid}/raters", {"name": "dave", "role": "lay"}),
            ("POST", f"/api/admin/studies/{sid}/assign", {"per_item": 1}),
            ("GET", f"/api/admin/studies/{sid}/export.csv", None),
            ("GET", f"/api/admin/studies/{sid}/stats?n_boot=10&n_perm=10", None)]


def rater_calls(site) -> list[tuple[str, str, object]]:
    """One valid call of each rater API route for alice."""
    item = site.ids[0]
    return [("GET", "/api/me", None), ("GET", "/api/items", None), ("GET", f"/api/items/{item}", None),
            ("POST", f"/api/items/{item}/rating", {"values": PAIRWISE})]


def send(client, method, url, body=None, **kw):
    return client.request(method, url, json=body, **kw) if body is not None else client.request(method, url, **kw)


def post_json(client, url, body):
    """POST ``body`` as JSON text, ``null`` included."""
    return client.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})


# ---- every route is in the tables ----

def test_the_tables_cover_every_route(site):
    routes = {(m, r.path) for r in site.app.routes if isinstance(r, APIRoute) for m in r.methods}
    assert routes == ROUTES
    covered = {(m, u.split("?")[0].replace(f"/{site.study}/", "/{study_id}/")) for m, u, _ in admin_calls(site)}
    covered |= {(m, u.replace(f"/{site.ids[0]}", "/{item_id}")) for m, u, _ in rater_calls(site)}
    covered |= {("GET", "/rate"), ("POST", "/rate")}  # test_rate_page_credentials, test_another_raters_link_*
    assert covered == ROUTES


# ---- credentials ----

def test_admin_routes_need_the_admin_token(site):
    before = counts(site.path)
    alice = site.raters["alice"]
    session_id = site.browsers["alice"].cookies["discern_rater"]
    credentials = [  # (headers, cookies, status)
        ({}, {}, 401),
        ({"Authorization": "Bearer"}, {}, 401),
        ({"Authorization": ADMIN}, {}, 401),
        ({"Authorization": f"Basic {ADMIN}"}, {}, 401),
        ({"Authorization": "Bearer wrong-token"}, {}, 403),
        ({"Authorization": f"Bearer {ADMIN}x"}, {}, 403),
        ({"Authorization": f"Bearer {ADMIN[:-1]}"}, {}, 403),
        ({"Authorization": f"Bearer {alice['token']}"}, {}, 403),  # a rater's invitation token
        ({"Authorization": f"Bearer {session_id}"}, {}, 403),  # a rater's session id
        ({}, {"discern_rater": session_id}, 401),  # a rater's signed-in browser
        ({"Authorization": "Bearer wrong-token"}, {"discern_rater": session_id}, 403),
    ]
    anon = site.client()
    for method, url, body in admin_calls(site):
        for headers, cookies, status in credentials:
            anon.cookies.clear()
            for k, v in cookies.items():
                anon.cookies.set(k, v)
            r = send(anon, method, url, body, headers=headers)
            assert_error(r, status, (method, url, headers, cookies))
            if status == 401:
                assert r.headers["www-authenticate"] == "Bearer"
    assert counts(site.path) == before  # nothing was written
    for method, url, body in admin_calls(site):  # and the admin token works
        assert send(site.admin, method, url, body).status_code == 200, url


def test_rater_routes_need_the_raters_own_session(site):
    alice, bob = site.browsers["alice"], site.browsers["bob"]
    session_id = alice.cookies["discern_rater"]
    anon = site.client()
    credentials = [  # (cookie value or None, headers)
        (None, {}),
        (None, AUTH),  # the admin token is not a rater session
        ("", {}),
        ("not-a-session", {}),
        (site.raters["alice"]["token"], {}),  # the invitation token is not a session id
        (sha256(session_id), {}),  # nor is the stored hash of one
        (session_id + "x", {}),
        (session_id[:-1], {}),
        ("x" * 5000, {}),
    ]
    for method, url, body in rater_calls(site):
        for cookie, headers in credentials:
            anon.cookies.clear()
            if cookie is not None:
                anon.cookies.set("discern_rater", cookie)
            assert_error(send(anon, method, url, body, headers=headers), 401, (url, cookie, headers))
    assert counts(site.path)["ratings"] == 0
    for method, url, body in rater_calls(site):
        assert send(alice, method, url, body).status_code == 200, url

    # other raters' items: 403 (item 2 is bob's only; item 1 is not bob's); no such item: 404
    ids = site.ids
    table = [(alice, "GET", f"/api/items/{ids[1]}", None, 403),
             (alice, "POST", f"/api/items/{ids[1]}/rating", {"values": PAIRWISE}, 403),
             (alice, "POST", f"/api/items/{ids[1]}/rating", {"values": "malformed"}, 403),  # who first, then what
             (bob, "GET", f"/api/items/{ids[0]}", None, 403),
             (bob, "POST", f"/api/items/{ids[2]}/rating", {"values": PHYSICIAN}, 403),
             (alice, "GET", "/api/items/999", None, 404),
             (alice, "POST", "/api/items/999/rating", {"values": PAIRWISE}, 404),
             (alice, "GET", f"/api/items/{db.MAX_ID}", None, 404)]
    for client, method, url, body, status in table:
        assert_error(send(client, method, url, body), status, url)
    assert [i["id"] for i in bob.get("/api/items").json()["items"]] == [ids[1]]
    assert counts(site.path)["ratings"] == 1  # alice's rating above, nothing else


def test_rate_page_credentials(site):
    anon = site.client()
    for params in [{}, {"token": ""}, {"token": "not-a-token"}, {"token": site.raters["alice"]["token"] + "x"},
                   {"token": sha256(site.raters["alice"]["token"])},  # the stored hash is no token
                   {"token": XSS}, {"token": "x" * 3000}]:
        r = anon.get("/rate", params=params)
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html"), params
        assert "set-cookie" not in r.headers and "<script>" not in r.text and "invitation link" in r.text
    anon.cookies.set("discern_rater", site.raters["alice"]["token"])  # a token is not a session
    assert anon.get("/rate").status_code == 403
    r = site.browsers["alice"].get("/rate")
    assert r.status_code == 200 and 'id="submit"' in r.text


# ---- malformed bodies, wrong types, out-of-range numbers ----

MALFORMED = [b"", b"{", b"[", b"not json", b'{"name": "x",}', b"{'name': 'x'}", b'{"name": "\\ud800"}',
             b'{"name": "x"} trailing', b"[" * 5000 + b"]" * 5000, b'{"name": ' + b"9" * 5000 + b"}",
             b'\xff\xfe{"name": "x"}', b'{"name": "\xe9"}']


def test_malformed_json_is_422_on_every_json_route(site):
    before = counts(site.path)
    routes = [(site.admin, u) for m, u, b in admin_calls(site) if m == "POST"]
    routes.append((site.browsers["alice"], f"/api/items/{site.ids[0]}/rating"))
    for client, url in routes:
        for raw in MALFORMED:
            r = client.post(url, content=raw, headers={"Content-Type": "application/json"})
            assert_error(r, 422, (url, raw[:40]))
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = client.post(url, content=b'{"name": "x"}', headers={"Content-Type": ctype})
            assert_error(r, 415, (url, ctype))
        assert_error(client.post(url, content=b'{"name": "x"}'), 415, url)  # no content type at all
    assert counts(site.path) == before


BIG = [2**31, 2**63, 10**30]


def test_wrong_types_and_out_of_range_values_are_422(site):
    before = counts(site.path)
    sid, ids = site.study, site.ids
    name_cases = [1, 1.5, True, None, ["x"], {"x": 1}, "", "x" * (db.NAME_MAX + 1), "a\x00b"]
    table = [("/api/admin/studies", body) for body in
             [[], "x", 1, None, {}, {"name": "x", "extra": 1}, {"Name": "x"}, {"name": "   "}]
             + [{"name": v} for v in name_cases]]
    raters = f"/api/admin/studies/{sid}/raters"
    table += [(raters, body) for body in
              [{}, {"name": "x"}, {"role": "lay"}, {"name": "x", "role": "nurse"}, {"name": "x", "role": 1},
               {"name": "x", "role": "lay", "token": "mine"}, {"name": "bob", "role": "lay"}]
              + [{"name": v, "role": "lay"} for v in name_cases]]
    assign = f"/api/admin/studies/{sid}/assign"
    rid = site.raters["bob"]["id"]
    bad_ids = [0, -1, True, False, "1", 1.5, None, [1], *BIG]
    table += [(assign, body) for body in
              [{}, [], {"per_item": 1, "rater_id": rid, "item_ids": [ids[0]]}, {"rater_id": rid},
               {"item_ids": [ids[0]]}, {"per_item": 1, "role": "nurse"}, {"per_item": 4},
               {"rater_id": rid, "item_ids": ids[0]}, {"rater_id": rid, "item_ids": [ids[0]], "x": 1}]
              + [{"rater_id": v, "item_ids": [ids[0]]} for v in bad_ids]
              + [{"rater_id": rid, "item_ids": [v]} for v in bad_ids]
              + [{"per_item": v} for v in [0, -1, True, "1", 1.5, rating_app.MAX_PER_ITEM + 1, *BIG]]]
    items = f"/api/admin/studies/{sid}/items"
    one = {"text": "a", "source": "s"}
    long_text = "x" * (db.TEXT_MAX + 1)
    table += [(items, body) for body in
              [{}, "x", 1, [1], [None], [[]], [{}], [{"question": "q"}], [{"answers": [one]}],
               [{"question": 1, "answers": [one]}], [{"question": "", "answers": [one]}],
               [{"question": "  ", "answers": [one]}], [{"question": long_text, "answers": [one]}],
               [{"question": "q\x00", "answers": [one]}], [{"question": "q", "answers": []}],
               [{"question": "q", "answers": [one, {"text": "b", "source": "t"}, {"text": "c", "source": "u"}]}],
               [{"question": "q", "answers": one}], [{"question": "q", "answers": [1]}],
               [{"question": "q", "answers": [{"text": 1, "source": "s"}]}],
               [{"question": "q", "answers": [{"text": long_text, "source": "s"}]}],
               [{"question": "q", "answers": [{"text": "a", "source": "s" * (db.NAME_MAX + 1)}]}],
               [{"question": "q", "answers": [{"text": "a", "source": True}]}],
               [{"question": "q", "answers": [{"text": "a", "source": "tie"}]}],
               [{"question": "q", "answers": [one, one]}],
               [{"question": "q", "answers": [one], "meta": []}], [{"question": "q", "answers": [one], "meta": "m"}],
               [{"question": "q", "answers": [one], "meta": {"k": "v\x00"}}],
               [{"question": "q", "answers": [one], "meta": {"k" * (db.NAME_MAX + 1): 1}}],
               [RECORDS[1], {"question": "q", "answers": []}]]]  # one bad record: nothing of the batch
    rating = f"/api/items/{ids[0]}/rating"
    alice_table = [(rating, body) for body in
                   [{}, [], "x", 1, None, {"values": None}, {"values": []}, {"values": "A"}, {"values": 1},
                    {"values": {**PAIRWISE, "consensus": 1}}, {"values": {**PAIRWISE, "consensus": True}},
                    {"values": {**PAIRWISE, "consensus": None}}, {"values": {**PAIRWISE, "consensus": ["A"]}},
                    {"values": {**PAIRWISE, "consensus": "C"}}, {"values": {**PAIRWISE, "clarity": "A"}},
                    {"values": {k: v for k, v in PAIRWISE.items() if k != "bias"}}, {"values": PHYSICIAN},
                    {"values": {**PAIRWISE, "k" * 65: "A"}}, {"values": {**PAIRWISE, "consensus": "A" * 201}},
                    {"values": {f"k{i}": "A" for i in range(65)}}, {"values": PAIRWISE, "extra": 1},
                    {"values": {**PAIRWISE, XSS: "A"}}, {"values": {**PAIRWISE, "consensus": "A\nB"}},
                    {"values": {**PAIRWISE, "new\nline": "A"}}]]
    for url, body in table:
        assert_error(post_json(site.admin, url, body), 422, (url, body))
    for url, body in alice_table:
        assert_error(post_json(site.browsers["alice"], url, body), 422, (url, body))
    # numbers that JSON allows but the app does not
    for raw in [b'{"name": NaN}', b'{"per_item": Infinity}', b'{"per_item": 1e400}', b'{"per_item": 1.0}',
                b'{"per_item": -0.0}', b'{"per_item": 1' + b"0" * 400 + b"}"]:
        url = assign if b"per_item" in raw else "/api/admin/studies"
        assert_error(site.admin.post(url, content=raw, headers={"Content-Type": "application/json"}), 422, raw)
    assert_error(site.admin.post(items, content=b'[{"question": "q", "answers": [{"text": "a", "source": "s"}], '
                                              b'"meta": {"x": NaN}}]', headers={"Content-Type": "application/json"}),
                 422, "NaN in meta")
    deep = {"question": "q", "answers": [one], "meta": {}}
    node = deep["meta"]
    for _ in range(db.JSON_DEPTH + 1):
        node["k"] = {}
        node = node["k"]
    assert_error(site.admin.post(items, json=[deep]), 422, "deep meta")

    # path and query parameters
    bad_path = ["0", "-1", str(2**31), str(2**63), str(10**30), "abc", "1.5", "1e3", "true", "%00", "%20"]
    for v in bad_path:
        for method, url in [("POST", "/api/admin/studies/{}/items"), ("POST", "/api/admin/studies/{}/raters"),
                            ("POST", "/api/admin/studies/{}/assign"), ("GET", "/api/admin/studies/{}/export.csv"),
                            ("GET", "/api/admin/studies/{}/stats")]:
            body = ([] if url.endswith("items") else {"name": "x"}) if method == "POST" else None
            assert_error(send(site.admin, method, url.format(v), body), 422, (method, url, v))
        for method, url in [("GET", "/api/items/{}"), ("POST", "/api/items/{}/rating")]:
            body = {"values": PAIRWISE} if method == "POST" else None
            assert_error(send(site.browsers["alice"], method, url.format(v), body), 422, (method, url, v))
    for params in [{"seed": -1}, {"seed": 2**31}, {"seed": 2**63}, {"seed": "x"}, {"seed": "true"}, {"seed": "1.5"}]:
        assert_error(site.admin.post(items, params=params, json=RECORDS[1:2]), 422, params)
    stats = f"/api/admin/studies/{sid}/stats"
    for params in [{"seed": -1}, {"seed": 2**31}, {"seed": 2**63}, {"n_boot": 0}, {"n_boot": 100001},
                   {"n_perm": 0}, {"n_perm": "x"}, {"n_boot": True}, {"n_perm": 2**63}]:
        assert_error(site.admin.get(stats, params=params), 422, params)
    # unknown ids in range: 404; unknown routes and methods
    for method, url, body in [("POST", f"/api/admin/studies/{db.MAX_ID}/items", RECORDS[1:2]),
                              ("POST", f"/api/admin/studies/{db.MAX_ID}/raters", {"name": "x", "role": "lay"}),
                              ("POST", f"/api/admin/studies/{db.MAX_ID}/assign", {"per_item": 1}),
                              ("GET", f"/api/admin/studies/{db.MAX_ID}/export.csv", None),
                              ("GET", f"/api/admin/studies/{db.MAX_ID}/stats", None),
                              ("POST", assign, {"rater_id": db.MAX_ID, "item_ids": [ids[0]]}),
                              ("POST", assign, {"rater_id": rid, "item_ids": [db.MAX_ID]}),
                              ("GET", "/api/nothing", None)]:
        assert_error(send(site.admin, method, url, body), 404, url)
    assert_error(site.admin.get("/api/admin/studies"), 405)
    assert_error(site.admin.put("/api/admin/studies", json={"name": "x"}), 405)
    assert_error(site.admin.delete(f"/api/items/{ids[0]}"), 405)
    assert counts(site.path) == before  # nothing of it was stored

    # the limits themselves are allowed
    ok = site.admin.post("/api/admin/studies", json={"name": "n" * db.NAME_MAX})
    assert ok.status_code == 200 and ok.json()["name"] == "n" * db.NAME_MAX
    big = {"question": "q" * db.TEXT_MAX, "answers": [{"text": "a" * db.TEXT_MAX, "source": "s" * db.NAME_MAX}]}
    assert site.admin.post(items, params={"seed": db.MAX_ID}, json=[big]).status_code == 200
    assert site.admin.post(raters, json={"name": "r" * db.NAME_MAX, "role": "lay"}).status_code == 200


# ---- request size ----

def test_oversized_bodies_get_413_before_parsing(site):
    alice, admin, sid = site.browsers["alice"], site.admin, site.study
    rating = f"/api/items/{site.ids[0]}/rating"
    json_type = {"Content-Type": "application/json"}

    def chunks(total: int, size: int):
        while total > 0:
            yield b" " * min(size, total)
            total -= size

    limits = [(alice, rating, rating_app.MAX_BODY_BYTES), (admin, "/api/admin/studies", rating_app.MAX_ADMIN_BYTES),
              (admin, f"/api/admin/studies/{sid}/items", rating_app.MAX_UPLOAD_BYTES)]
    for client, url, limit in limits:
        # a Content-Length over the limit, and a chunked body (a generator: no length) over it
        r = client.post(url, content=b" " * (limit + 1), headers=json_type)
        assert f"at most {limit} bytes" in assert_error(r, 413, url)
        r = client.post(url, content=chunks(limit + 1, 1 << 20 if limit > 1 << 20 else 8192), headers=json_type)
        assert "content-length" not in r.request.headers
        assert f"at most {limit} bytes" in assert_error(r, 413, (url, "chunked"))
        # at the limit the body is read and parsed (blank: not JSON)
        assert_error(client.post(url, content=b" " * limit, headers=json_type), 422, url)
    # a Content-Length of a huge body that never comes, a negative or a broken one
    for value, status in [(str(10**12), 413), ("-1", 400), ("12abc", 400)]:
        r = alice.post(rating, content=b"{}", headers={**json_type, "Content-Length": value})
        assert_error(r, status, value)
    # over the admin limit, under the upload limit: a large items upload works
    records = [{"question": f"q{i}", "answers": [{"text": "x" * 90_000, "source": "s"}]} for i in range(25)]
    assert len(json.dumps(records)) > 2 * rating_app.MAX_ADMIN_BYTES
    assert len(admin.post(f"/api/admin/studies/{sid}/items", json=records).json()["ids"]) == 25
    assert counts(site.path)["ratings"] == 0


def test_oversized_bodies_over_real_http(tmp_path):
    """Over a real uvicorn: a Content-Length over the limit is answered at once, before any of the body is
    sent; a chunked body (httpx with a generator) is cut off at the limit."""
    app = make_app(str(tmp_path / "r.db"), ADMIN, max_body=4096)
    with LocalServer(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /api/items/1/rating HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000000000\r\n\r\n")  # headers only: the body never comes
            head = b""
            while chunk := sock.recv(65536):  # the server closes the connection after its answer
                head += chunk
            head = head.decode()
        assert head.startswith("HTTP/1.1 413 ") and '{"detail": "request body too large' in head

        def gen():
            for _ in range(3):
                yield b'{"values": {}}'.ljust(2000)

        r = http.post("/api/items/1/rating", content=gen(), headers={"Content-Type": "application/json"})
        assert r.request.headers["transfer-encoding"] == "chunked" and "content-length" not in r.request.headers
        assert_error(r, 413, "chunked")
        r = http.post("/api/items/1/rating", content=b" " * 5000, headers={"Content-Type": "application/json"})
        assert_error(r, 413, "length")
        r = http.post("/api/items/1/rating", content=b" " * 100, headers={"Content-Type": "application/json"})
        assert_error(r, 401)


# ---- HTML and script text ----

def test_html_in_every_text_field_stays_text(site):
    alice = site.browsers["alice"]
    me = alice.get("/api/me")
    assert me.json() == {"name": f"alice {XSS}", "role": "physician", "study": f"Study {XSS}"}
    assert me.headers["content-type"] == "application/json" and me.headers["x-content-type-options"] == "nosniff"
    listing = alice.get("/api/items").json()["items"]
    assert listing[0]["question"] == RECORDS[0]["question"] and listing[1]["question"] == RECORDS[2]["question"]
    item = alice.get(f"/api/items/{site.ids[0]}").json()
    assert item["question"] == RECORDS[0]["question"]
    assert sorted(a["text"] for a in item["answers"]) == sorted(a["text"] for a in RECORDS[0]["answers"])
    assert "model:" not in json.dumps(item)  # the source, HTML or not, stays hidden
    # the page puts every text in the document with textContent / createTextNode, never as markup, and its
    # Content-Security-Policy allows no other script
    page = alice.get("/rate")
    html = page.text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "srcdoc", ".html("):
        assert sink not in html, sink
    assert "e.textContent = text" in html and '$("question").textContent = item.question' in html
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "script-src 'sha256-" in csp
    assert "default-src 'none'" in csp and "form-action 'none'" in csp and "frame-ancestors 'none'" in csp
    # the server's own pages escape what they show
    other = alice.get("/rate", params={"token": site.raters["bob"]["token"]})
    assert other.status_code == 409 and XSS not in other.text and "<img" not in other.text
    assert "alice &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" \
        in other.text
    assert "Study &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in other.text
    # and the CSV keeps it as plain text
    site.browsers["alice"].post(f"/api/items/{site.ids[0]}/rating", json={"values": PAIRWISE})
    rows = list(csv.DictReader(io.StringIO(site.admin.get(f"/api/admin/studies/{site.study}/export.csv").text)))
    assert {r["rater"] for r in rows} == {f"alice {XSS}"} and {r["study"] for r in rows} == {f"Study {XSS}"}


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(1,1)", "\t=1", "\r=1"]


def test_csv_export_neutralises_formulas(site):
    for text in FORMULAS:
        assert db.csv_cell(text) == "'" + text
    for value in ["plain", "model:x", "a=1", " ", "", 5, -3, 2.5, None]:
        assert db.csv_cell(value) == value
    admin = site.admin
    sid = admin.post("/api/admin/studies", json={"name": FORMULAS[0]}).json()["id"]
    records = [{"question": "=1+1", "answers": [{"text": "@A", "source": "-model"}, {"text": "+B", "source": "@ref"}]},
               {"question": "q", "answers": [{"text": "=SUM(1)", "source": "=cmd|' /C calc'!A0"}]}]
    ids = admin.post(f"/api/admin/studies/{sid}/items", json=records).json()["ids"]
    names = ["+1+1", "-2+3", "@SUM(1,1)", "\t=1", "plain name"]
    clients = []
    for name in names:
        r = admin.post(f"/api/admin/studies/{sid}/raters", json={"name": name, "role": "physician"}).json()
        admin.post(f"/api/admin/studies/{sid}/assign", json={"rater_id": r["id"], "item_ids": ids})
        c = site.client()
        assert c.get("/rate", params={"token": r["token"]}).status_code == 303
        clients.append(c)
    for c in clients:
        assert c.post(f"/api/items/{ids[0]}/rating", json={"values": PAIRWISE}).status_code == 200
        assert c.post(f"/api/items/{ids[1]}/rating", json={"values": PHYSICIAN}).status_code == 200
    text = admin.get(f"/api/admin/studies/{sid}/export.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(names) * (9 + 12)
    assert {r["study"] for r in rows} == {"'" + FORMULAS[0]}
    assert {r["rater"] for r in rows} == {"'+1+1", "'-2+3", "'@SUM(1,1)", "'=1", "plain name"}  # "\t=1" stripped
    assert {r["source_1"] for r in rows} == {"'-model", "'=cmd|' /C calc'!A0"}
    assert {r["source_2"] for r in rows} == {"'@ref", ""}
    assert {r["value"] for r in rows if r["kind"] == "pairwise"} <= {"'-model", "'@ref"}
    assert all(r["item_id"].isdigit() for r in rows)  # numbers stay numbers
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(db.FORMULA_PREFIXES), row
    # the rows of the library keep the names as given (the statistics and the PostgreSQL comparison use them)
    with db.connect(str(site.path))() as s:
        assert {r["rater"] for r in db.export_rows(s, sid)} == {"+1+1", "-2+3", "@SUM(1,1)", "=1", "plain name"}


# ---- invitation tokens and sessions ----

def test_invitation_token_is_exchanged_for_a_hashed_expiring_session(site):
    token = site.raters["bob"]["token"]
    browser = site.client()
    r = browser.get("/rate", params={"token": token})
    assert r.status_code == 303 and r.headers["location"] == "/rate" and r.text == ""
    sid = browser.cookies["discern_rater"]
    cookie = r.headers["set-cookie"]
    assert sid != token and token not in cookie and len(sid) >= 40
    assert f"Max-Age={int(db.SESSION_TTL.total_seconds())}" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Path=/" in cookie
    with sqlite3.connect(site.path) as con:
        assert con.execute("SELECT token FROM raters WHERE name = 'bob'").fetchone() == (sha256(token),)
        rows = con.execute("SELECT s.id_hash, s.expires FROM rater_sessions s JOIN raters r ON r.id = s.rater_id "
                           "WHERE r.name = 'bob'").fetchall()
        stored = "\n".join(str(v) for row in con.execute("SELECT * FROM raters").fetchall()
                           + con.execute("SELECT * FROM rater_sessions").fetchall() for v in row)
    assert token not in stored and sid not in stored  # neither the token nor the session id in plain text
    assert sha256(sid) in [h for h, _ in rows] and len(rows) == 2  # the fixture's browser and this one
    expires = datetime.fromisoformat(dict(rows)[sha256(sid)]).replace(tzinfo=timezone.utc)
    assert abs(expires - datetime.now(timezone.utc) - db.SESSION_TTL) < timedelta(minutes=5)
    assert browser.get("/rate").status_code == 200
    assert browser.get("/api/me").json()["name"] == "bob"
    # the same link again keeps the session; an expired session is refused
    r = browser.get("/rate", params={"token": token})
    assert r.status_code == 303 and "set-cookie" not in r.headers
    with sqlite3.connect(site.path) as con:
        con.execute("UPDATE rater_sessions SET expires = '2000-01-01 00:00:00.000000' WHERE id_hash = ?",
                    (sha256(sid),))
    assert_error(browser.get("/api/me"), 401)
    assert browser.get("/rate").status_code == 403
    assert site.browsers["bob"].get("/api/me").status_code == 200  # the other session is untouched
    assert browser.get("/rate", params={"token": token}).status_code == 303  # the link signs in again
    assert browser.cookies["discern_rater"] != sid and browser.get("/api/me").status_code == 200
    with sqlite3.connect(site.path) as con:  # and the expired session is gone
        assert con.execute("SELECT count(*) FROM rater_sessions WHERE id_hash = ?", (sha256(sid),)).fetchone() == (0,)


def test_plain_tokens_of_earlier_databases_still_work_once_hashed(site):
    legacy = "legacyTokenOf32Characters_abcdef"
    with sqlite3.connect(site.path) as con:
        con.execute("UPDATE raters SET token = ? WHERE name = 'bob'", (legacy,))
    stolen_hash = sha256(site.raters["alice"]["token"])
    assert site.client().get("/rate", params={"token": stolen_hash}).status_code == 403
    browser = site.client()
    assert browser.get("/rate", params={"token": legacy}).status_code == 303
    assert browser.get("/api/me").json()["name"] == "bob"
    with sqlite3.connect(site.path) as con:
        assert con.execute("SELECT token FROM raters WHERE name = 'bob'").fetchone() == (sha256(legacy),)


def test_access_log_hides_the_token(monkeypatch, tmp_path):
    import uvicorn

    ran = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: ran.append(self.config))
    access = logging.getLogger("uvicorn.access")
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg, list(lg.filters), list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    try:
        rating_app.serve(str(tmp_path / "r.db"), ADMIN, port=0)
        assert len(ran) == 1 and ran[0].access_log
        fmt = '%s - "%s %s HTTP/%s" %d'
        record = access.makeRecord("uvicorn.access", logging.INFO, __file__, 1, fmt,
                                   ("127.0.0.1:5000", "GET", "/rate?token=SECRET-TOKEN", "1.1", 303), None)
        assert access.filter(record)
        line = record.getMessage()
        assert line == '127.0.0.1:5000 - "GET /rate?\u2026 HTTP/1.1" 303' and "SECRET" not in line
        other = access.makeRecord("uvicorn.access", logging.INFO, __file__, 1, fmt,
                                  ("127.0.0.1:5000", "GET", "/api/items", "1.1", 200), None)
        assert access.filter(other) and other.getMessage() == '127.0.0.1:5000 - "GET /api/items HTTP/1.1" 200'
    finally:  # uvicorn.Config configured logging: put it back as it was
        for lg, filters, handlers, level, propagate in saved:
            lg.filters[:], lg.handlers[:], lg.level, lg.propagate = filters, handlers, level, propagate


def test_another_raters_link_does_not_switch_silently(site):
    alice = site.browsers["alice"]
    before = alice.cookies["discern_rater"]
    bob_token = site.raters["bob"]["token"]
    r = alice.get("/rate", params={"token": bob_token})
    assert r.status_code == 409 and "set-cookie" not in r.headers
    assert "Another rater is signed in" in r.text and "<strong>bob</strong>" in r.text
    assert "<strong>alice &lt;script&gt;" in r.text and '<form method="post" action="/rate">' in r.text
    csp = r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store" and "form-action 'self'" in csp
    assert "script-src 'sha256-" in csp and 'history.replaceState(null, "", "/rate")' in r.text  # drops the token
    assert alice.get("/api/me").json()["name"] == f"alice {XSS}"  # still alice

    form = {"token": bob_token}
    origin = "http://testserver"
    refused = [{}, {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://testserver.evil"},
               {"Sec-Fetch-Site": "cross-site", "Origin": origin}, {"Sec-Fetch-Site": "same-site"},
               {"Referer": f"{origin}/rate"}]
    for headers in refused:  # a form from another site cannot switch
        r = alice.post("/rate", data=form, headers=headers)
        assert r.status_code == 403 and "set-cookie" not in r.headers, headers
    form_type = {"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}
    for headers, body, status in [({"Origin": origin, "Content-Type": "application/json"}, b'{"token": "x"}', 415),
                                  (form_type, b"token=" + b"%ff" * 3, 403),
                                  (form_type, b"token=\xff\xfe", 422),
                                  (form_type, b"&".join([b"a=1"] * 10), 422),
                                  (form_type, b"token=wrong", 403),
                                  (form_type, b"token=" + XSS.encode(), 403)]:
        r = alice.post("/rate", content=body, headers=headers)
        assert r.status_code == status and "set-cookie" not in r.headers and "<script" not in r.text, body
    assert alice.get("/api/me").json()["name"] == f"alice {XSS}"

    # the button of the page (same origin) switches: alice's session ends, bob's begins
    r = alice.post("/rate", data=form, headers={"Origin": origin})
    assert r.status_code == 303 and r.headers["location"] == "/rate"
    assert alice.cookies["discern_rater"] != before
    assert alice.get("/api/me").json()["name"] == "bob"
    stale = site.client()
    stale.cookies.set("discern_rater", before)
    assert_error(stale.get("/api/me"), 401)
    carol = site.browsers["carol"]
    r = carol.post("/rate", data={"token": site.raters["alice"]["token"]}, headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303 and carol.get("/api/me").json()["name"] == f"alice {XSS}"


# ---- security headers ----

def test_security_headers_on_every_response(site):
    alice = site.browsers["alice"]
    responses = [alice.get("/rate"), alice.get("/api/me"), alice.get(f"/api/items/{site.ids[1]}"),
                 site.client().get("/rate"), site.client().get("/api/items"), site.client().get("/nowhere"),
                 alice.get("/rate", params={"token": site.raters["bob"]["token"]}),
                 site.client().get("/rate", params={"token": site.raters["bob"]["token"]}),
                 site.admin.get(f"/api/admin/studies/{site.study}/export.csv"),
                 site.admin.post("/api/admin/studies", content=b" " * (rating_app.MAX_ADMIN_BYTES + 1))]
    for r in responses:
        for k, v in SECURITY.items():
            assert r.headers.get(k) == v, (r.request.url, r.status_code, k)
        assert "default-src 'none'" in r.headers["content-security-policy"], r.request.url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], r.request.url
