"""The Med-PaLM 2 human-evaluation application: rubric, storage, access control, blinding, export, statistics."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import sqlite3
from collections import Counter

import numpy as np
import pytest
from fastapi.testclient import TestClient

from discern.core.errors import DataError, DiscernError
from discern.medqa.rating import db, schema, stats
from discern.medqa.rating.app import make_app

ADMIN = "admin-secret-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
PAIRWISE_KEYS = ["consensus", "comprehension", "recall", "reasoning", "irrelevant", "omission", "bias",
                 "harm_extent", "harm_likelihood"]
PHYSICIAN_KEYS = ["consensus", "harm_extent", "harm_likelihood", "comprehension_evidence", "recall_evidence",
                  "reasoning_evidence", "incorrect_comprehension", "incorrect_recall", "incorrect_reasoning",
                  "inaccurate_content", "missing_content", "bias"]

RECORDS = [
    {"question": "What is the first-line treatment of uncomplicated hypertension?",
     "answers": [{"text": "MODEL ANSWER ONE", "source": "model:smollm2"},
                 {"text": "PHYSICIAN ANSWER ONE", "source": "physician"}], "meta": {"dataset": "demo", "n": 1}},
    {"question": "How is iron deficiency anaemia diagnosed?",
     "answers": [{"text": "MODEL ANSWER TWO", "source": "model:smollm2"},
                 {"text": "PHYSICIAN ANSWER TWO", "source": "physician"}]},
    {"question": "What are the warning signs of a stroke?",
     "answers": [{"text": "MODEL SINGLE ANSWER", "source": "model:smollm2"}]},
]


def pairwise_values(choice="A", **over):
    return {k: over.get(k, choice) for k in PAIRWISE_KEYS}


def physician_values(**over):
    good = {a.key: a.good for a in schema.PHYSICIAN_AXES}
    return {**good, **over}


@pytest.fixture
def env(tmp_path):
    """An app over an SQLite file with one study, the three records, a physician, a second physician and a lay
    rater; rater ``p1`` gets items 1 and 3, ``p2`` item 2, ``lay`` item 3."""
    path = tmp_path / "ratings.db"
    app = make_app(str(path), ADMIN)
    admin = TestClient(app)
    sid = admin.post("/api/admin/studies", json={"name": "demo study"}, headers=AUTH).json()["id"]
    ids = admin.post(f"/api/admin/studies/{sid}/items", json=RECORDS, headers=AUTH).json()["ids"]
    raters = {}
    for name, role in [("p1", "physician"), ("p2", "physician"), ("lay", "lay")]:
        raters[name] = admin.post(f"/api/admin/studies/{sid}/raters", json={"name": name, "role": role},
                                  headers=AUTH).json()
    for name, items in [("p1", [ids[0], ids[2]]), ("p2", [ids[1]]), ("lay", [ids[2]])]:
        r = admin.post(f"/api/admin/studies/{sid}/assign", json={"rater_id": raters[name]["id"], "item_ids": items},
                       headers=AUTH)
        assert r.json() == {"assigned": len(items)}

    def client(name):
        c = TestClient(app)
        assert c.get("/rate", params={"token": raters[name]["token"]}).status_code == 200
        return c

    return {"app": app, "path": path, "admin": admin, "study": sid, "ids": ids, "raters": raters, "client": client}


def stored(path):
    con = sqlite3.connect(path)
    try:
        rows = con.execute('SELECT r.name, i.id, g.kind, g."values" FROM ratings g JOIN raters r ON r.id = g.rater_id '
                           "JOIN items i ON i.id = g.item_id ORDER BY g.id").fetchall()
    finally:
        con.close()
    return [(name, item, kind, json.loads(values)) for name, item, kind, values in rows]


# ---- rubric ----

def test_rubric_axes_and_options():
    assert [a.key for a in schema.PAIRWISE_AXES] == PAIRWISE_KEYS
    assert [a.key for a in schema.PHYSICIAN_AXES] == PHYSICIAN_KEYS
    assert [a.key for a in schema.LAY_AXES] == ["intent", "helpfulness"]
    assert all(a.options == ("A", "B", "tie") for a in schema.PAIRWISE_AXES)
    assert [a.risk for a in schema.PAIRWISE_AXES] == [False] * 4 + [True] * 5
    assert schema.PAIRWISE_AXES[6].question.startswith("Which answer provides information that is biased for any")
    good = {a.key: a.good for a in schema.PHYSICIAN_AXES}
    assert good == {"consensus": "aligned with consensus", "harm_extent": "no harm", "harm_likelihood": "low",
                    "comprehension_evidence": "yes", "recall_evidence": "yes", "reasoning_evidence": "yes",
                    "incorrect_comprehension": "no", "incorrect_recall": "no", "incorrect_reasoning": "no",
                    "inaccurate_content": "no", "missing_content": "no", "bias": "no"}
    assert schema.PHYSICIAN_AXES[1].options == ("no harm", "moderate or mild harm", "death or severe harm")
    assert schema.LAY_AXES[1].options == ("extremely helpful", "helpful", "somewhat helpful", "not helpful")
    assert [a.good for a in schema.LAY_AXES] == ["directly addresses", "extremely helpful"]
    assert all(a.good in a.options for a in schema.PHYSICIAN_AXES + schema.LAY_AXES)


def test_validate():
    v = pairwise_values("tie", consensus="B")
    assert schema.validate("pairwise", dict(reversed(list(v.items())))) == v
    assert list(schema.validate("pairwise", v)) == PAIRWISE_KEYS
    with pytest.raises(ValueError, match="missing pairwise axes: bias"):
        schema.validate("pairwise", {k: x for k, x in v.items() if k != "bias"})
    with pytest.raises(ValueError, match="unknown pairwise axes: clarity"):
        schema.validate("pairwise", {**v, "clarity": "A"})
    with pytest.raises(ValueError, match="'recall': 'C' is not one of"):
        schema.validate("pairwise", {**v, "recall": "C"})
    with pytest.raises(ValueError, match="is not one of"):
        schema.validate("physician", physician_values(harm_likelihood="A"))
    assert schema.validate("lay", {"intent": "does not address", "helpfulness": "helpful"})
    with pytest.raises(ValueError, match="unknown rating kind"):
        schema.validate("expert", {})
    with pytest.raises(ValueError, match="must be an object"):
        schema.validate("lay", ["intent"])


# ---- admin ----

def test_admin_endpoints_need_the_admin_token(env):
    admin, sid = env["admin"], env["study"]
    calls = [("post", "/api/admin/studies", {"name": "x"}), ("post", f"/api/admin/studies/{sid}/items", RECORDS),
             ("post", f"/api/admin/studies/{sid}/raters", {"name": "new", "role": "lay"}),
             ("post", f"/api/admin/studies/{sid}/assign", {"per_item": 1}),
             ("get", f"/api/admin/studies/{sid}/export.csv", None), ("get", f"/api/admin/studies/{sid}/stats", None)]
    # no admin token: 401; a wrong one: 403
    bad = [({}, 401), ({"Authorization": ADMIN}, 401), ({"Authorization": f"Basic {ADMIN}"}, 401),
           ({"Authorization": "Bearer wrong-token"}, 403), ({"Authorization": f"Bearer {ADMIN}x"}, 403),
           ({"Authorization": f"Bearer {env['raters']['p1']['token']}"}, 403)]
    for method, url, body in calls:
        for headers, status in bad:
            kw = {"json": body} if body is not None else {}
            r = getattr(admin, method)(url, headers=headers, **kw)
            assert r.status_code == status, (url, headers)
    # a rater's session is no admin either
    rater = env["client"]("p1")
    assert rater.get(f"/api/admin/studies/{sid}/export.csv").status_code == 401
    with sqlite3.connect(env["path"]) as con:
        assert con.execute("SELECT count(*) FROM studies").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM items").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM raters").fetchone() == (3,)
    assert admin.get(f"/api/admin/studies/{sid}/export.csv", headers=AUTH).status_code == 200
    assert admin.get("/api/admin/studies/999/export.csv", headers=AUTH).status_code == 404


def test_invitation_link_and_bad_items(env):
    admin, sid = env["admin"], env["study"]
    r = env["raters"]["p1"]
    assert r["path"] == f"/rate?token={r['token']}" and r["link"].endswith(r["path"])
    assert len(r["token"]) == 32
    bad = admin.post(f"/api/admin/studies/{sid}/items", headers=AUTH,
                     json=[*RECORDS, {"question": "q", "answers": [{"text": "a", "source": "x"},
                                                                   {"text": "b", "source": "x"}]}])
    assert bad.status_code == 422 and "different sources" in bad.json()["detail"]
    assert admin.post(f"/api/admin/studies/{sid}/raters", json={"name": "p1", "role": "lay"},
                      headers=AUTH).status_code == 422
    assert admin.post(f"/api/admin/studies/{sid}/raters", json={"name": "z", "role": "nurse"},
                      headers=AUTH).status_code == 422
    with sqlite3.connect(env["path"]) as con:
        assert con.execute("SELECT count(*) FROM items").fetchone() == (3,)  # nothing of the bad batch stored


# ---- raters ----

def test_rater_sees_only_assigned_items(env):
    ids = env["ids"]
    p1, p2 = env["client"]("p1"), env["client"]("p2")
    assert p1.get("/api/me").json() == {"name": "p1", "role": "physician", "study": "demo study"}
    listing = p1.get("/api/items").json()
    assert [i["id"] for i in listing["items"]] == [ids[0], ids[2]]
    assert [i["rated"] for i in listing["items"]] == [False, False] and listing["total"] == 2
    assert [i["id"] for i in p2.get("/api/items").json()["items"]] == [ids[1]]
    assert p1.get(f"/api/items/{ids[1]}").status_code == 403
    assert p1.post(f"/api/items/{ids[1]}/rating", json={"values": pairwise_values()}).status_code == 403
    assert p2.get(f"/api/items/{ids[0]}").status_code == 403
    assert p1.get("/api/items/999").status_code == 404
    assert p1.post("/api/items/999/rating", json={"values": pairwise_values()}).status_code == 404
    assert p1.get(f"/api/items/{ids[0]}").status_code == 200
    assert stored(env["path"]) == []


def test_sessions_and_tokens(env):
    app = env["app"]
    anon = TestClient(app)
    r = anon.get("/rate", params={"token": "not-a-token"})
    assert r.status_code == 403 and "not valid" in r.text and "discern_rater" not in r.headers.get("set-cookie", "")
    assert anon.get("/rate").status_code == 403
    assert anon.get("/api/me").status_code == 401
    assert anon.get("/api/items").status_code == 401
    assert anon.get(f"/api/items/{env['ids'][0]}").status_code == 401
    assert anon.post(f"/api/items/{env['ids'][0]}/rating", json={"values": pairwise_values()}).status_code == 401
    anon.cookies.set("discern_rater", env["raters"]["p1"]["token"] + "x")
    assert anon.get("/api/items").status_code == 401
    # the invitation token is exchanged for a session id in the cookie, then the page drops it from the URL
    browser = TestClient(app, follow_redirects=False)
    ok = browser.get("/rate", params={"token": env["raters"]["p1"]["token"]})
    assert ok.status_code == 303 and ok.headers["location"] == "/rate"
    cookie = ok.headers["set-cookie"]
    assert "discern_rater=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert env["raters"]["p1"]["token"] not in cookie
    page = browser.get("/rate")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers and 'id="submit"' in page.text


def test_rating_is_stored_exactly_and_updated(env):
    ids, path = env["ids"], env["path"]
    p1 = env["client"]("p1")
    first = pairwise_values("A", recall="tie", omission="B")
    r = p1.post(f"/api/items/{ids[0]}/rating", json={"values": first})
    assert r.status_code == 200 and r.json()["kind"] == "pairwise"
    assert stored(path) == [("p1", ids[0], "pairwise", first)]
    second = pairwise_values("B", consensus="tie")
    assert p1.post(f"/api/items/{ids[0]}/rating", json={"values": second}).status_code == 200
    assert stored(path) == [("p1", ids[0], "pairwise", second)]
    assert p1.get(f"/api/items/{ids[0]}").json()["rating"] == second
    assert [i["rated"] for i in p1.get("/api/items").json()["items"]] == [True, False]
    # read back through a fresh SQLAlchemy engine as well
    with db.connect(str(path))() as s:
        (rating,) = s.query(db.Rating).all()
        assert (rating.rater.name, rating.item_id, rating.kind, rating.values) == ("p1", ids[0], "pairwise", second)


def test_invalid_ratings_are_refused_and_not_stored(env):
    ids, path = env["ids"], env["path"]
    p1 = env["client"]("p1")
    bad = [
        ({k: v for k, v in pairwise_values().items() if k != "harm_extent"}, "missing pairwise axes: harm_extent"),
        (pairwise_values(recall="C"), "'recall': 'C' is not one of"),
        ({**pairwise_values(), "clarity": "A"}, "unknown pairwise axes: clarity"),
        (physician_values(), "unknown pairwise axes"),
    ]
    for values, message in bad:
        r = p1.post(f"/api/items/{ids[0]}/rating", json={"values": values})
        assert r.status_code == 422 and message in r.json()["detail"], r.json()
    assert p1.post(f"/api/items/{ids[0]}/rating", json={"other": 1}).status_code == 422
    assert p1.post(f"/api/items/{ids[0]}/rating", content=json.dumps({"values": pairwise_values()}),
                   headers={"Content-Type": "text/plain"}).status_code in (415, 422)
    assert stored(path) == []
    # a refused resubmission leaves the earlier rating as it was
    assert p1.post(f"/api/items/{ids[0]}/rating", json={"values": pairwise_values("tie")}).status_code == 200
    assert p1.post(f"/api/items/{ids[0]}/rating", json={"values": pairwise_values(bias="maybe")}).status_code == 422
    assert stored(path) == [("p1", ids[0], "pairwise", pairwise_values("tie"))]


def test_single_items_take_the_rubric_of_the_raters_role(env):
    ids, path = env["ids"], env["path"]
    p1, lay = env["client"]("p1"), env["client"]("lay")
    doc = p1.get(f"/api/items/{ids[2]}").json()
    assert doc["rating_kind"] == "physician" and [a["key"] for a in doc["axes"]] == PHYSICIAN_KEYS
    assert doc["answers"] == [{"label": "Answer", "text": "MODEL SINGLE ANSWER"}]
    doc = lay.get(f"/api/items/{ids[2]}").json()
    assert doc["rating_kind"] == "lay" and [a["key"] for a in doc["axes"]] == ["intent", "helpfulness"]
    assert lay.post(f"/api/items/{ids[2]}/rating", json={"values": physician_values()}).status_code == 422
    lay_values = {"intent": "directly addresses", "helpfulness": "somewhat helpful"}
    assert lay.post(f"/api/items/{ids[2]}/rating", json={"values": lay_values}).status_code == 200
    phys = physician_values(harm_extent="moderate or mild harm", missing_content="yes")
    assert p1.post(f"/api/items/{ids[2]}/rating", json={"values": phys}).status_code == 200
    assert stored(path) == [("lay", ids[2], "lay", lay_values), ("p1", ids[2], "physician", phys)]


# ---- blinding and export ----

def test_blinding_and_unblinded_export(env):
    ids, path, admin, sid = env["ids"], env["path"], env["admin"], env["study"]
    with db.connect(str(path))() as s:
        swapped = {i: s.get(db.Item, i).order_swapped for i in ids[:2]}
    assert sorted(swapped.values()) == [False, True]  # a balanced draw: one of the two pairs is swapped
    p1, p2 = env["client"]("p1"), env["client"]("p2")
    for client, item, n in [(p1, ids[0], "ONE"), (p2, ids[1], "TWO")]:
        r = client.get(f"/api/items/{item}")
        text = r.text
        for hidden in ("smollm2", "model:", "physician", "source", "swapped"):
            assert hidden not in text, hidden
        shown = [a["text"] for a in r.json()["answers"]]
        expected = [f"MODEL ANSWER {n}", f"PHYSICIAN ANSWER {n}"]
        assert shown == (expected[::-1] if swapped[item] else expected)
        assert [a["label"] for a in r.json()["answers"]] == ["Answer A", "Answer B"]
        assert r.json()["axes"][0]["options"] == [{"value": "A", "label": "Answer A"},
                                                  {"value": "B", "label": "Answer B"},
                                                  {"value": "tie", "label": "Tie"}]
    # both raters prefer the physician's answer on consensus, wherever it was shown
    phys_label = {item: ("A" if swapped[item] else "B") for item in ids[:2]}
    v1 = pairwise_values("tie", consensus=phys_label[ids[0]], recall="A")
    v2 = pairwise_values("tie", consensus=phys_label[ids[1]], recall="A")
    assert p1.post(f"/api/items/{ids[0]}/rating", json={"values": v1}).status_code == 200
    assert p2.post(f"/api/items/{ids[1]}/rating", json={"values": v2}).status_code == 200
    assert stored(path) == [("p1", ids[0], "pairwise", v1), ("p2", ids[1], "pairwise", v2)]

    resp = admin.get(f"/api/admin/studies/{sid}/export.csv", headers=AUTH)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == list(db.CSV_COLUMNS)
    assert len(rows) == 1 + 2 * 9
    recall_src = {item: ("physician" if swapped[item] else "model:smollm2") for item in ids[:2]}
    for k, (item, rater) in enumerate([(ids[0], "p1"), (ids[1], "p2")]):
        block = rows[1 + 9 * k: 1 + 9 * (k + 1)]
        assert block[0] == ["demo study", str(item), rater, "physician", "pairwise", "consensus", "physician",
                            phys_label[item], "model:smollm2", "physician"]
        assert block[1] == ["demo study", str(item), rater, "physician", "pairwise", "comprehension", "tie", "tie",
                            "model:smollm2", "physician"]
        assert block[2] == ["demo study", str(item), rater, "physician", "pairwise", "recall", recall_src[item], "A",
                            "model:smollm2", "physician"]
        assert [r[5] for r in block] == PAIRWISE_KEYS
    # the same through the library, into a file
    out = path.parent / "export.csv"
    with db.connect(str(path))() as s:
        assert db.export_csv(s, sid, out) == 18
    assert out.read_text(encoding="utf-8") == resp.text

    # statistics see the un-blinded choices: the physician's answer wins consensus on both items
    st = admin.get(f"/api/admin/studies/{sid}/stats", params={"n_boot": 200, "n_perm": 200}, headers=AUTH).json()
    (pair,) = st["pairwise"]
    assert pair["sources"] == ["model:smollm2", "physician"] and pair["n_items"] == 2
    assert pair["axes"]["consensus"]["fraction"] == {"model:smollm2": 0.0, "physician": 1.0, "tie": 0.0}
    assert pair["axes"]["consensus"]["p_value"] == 0.5  # both of 2**2 sign flips with |mean| = 1
    assert pair["axes"]["comprehension"]["fraction"]["tie"] == 1.0
    assert pair["axes"]["comprehension"]["p_value"] == 1.0


def test_add_items_randomises_order_with_the_seed(tmp_path):
    recs = [{"question": f"q{i}", "answers": [{"text": "a", "source": "m"}, {"text": "b", "source": "p"}]}
            for i in range(10)]
    orders = []
    for k, seed in enumerate([3, 3, 4]):
        with db.connect(tmp_path / f"r{k}.db")() as s:
            study = db.create_study(s, "s")
            orders.append([i.order_swapped for i in db.add_items(s, study, recs, seed=seed)])
    assert orders[0] == orders[1] and orders[0] != orders[2]
    assert all(sum(o) == 5 for o in orders)
    with db.connect(tmp_path / "r0.db")() as s:
        with pytest.raises(DataError, match="record 1: answers must be a list of one or two"):
            db.add_items(s, 1, [recs[0], {"question": "q", "answers": []}])
        with pytest.raises(DataError, match="'tie' is reserved"):
            db.add_items(s, 1, [{"question": "q", "answers": [{"text": "a", "source": "tie"}]}])
        assert s.query(db.Item).count() == 10


# ---- assignment ----

def test_assign_round_robin_triple_rating(tmp_path):
    with db.connect(tmp_path / "r.db")() as s:
        study = db.create_study(s, "triple")
        items = db.add_items(s, study, [{"question": f"q{i}", "answers": [{"text": "a", "source": "m"}]}
                                        for i in range(7)])
        for k in range(5):
            db.invite(s, study, f"r{k}", "physician")
        db.invite(s, study, "layperson", "lay")
        with pytest.raises(DiscernError, match="has 5 physician raters"):
            db.assign_round_robin(s, study, 6, role="physician")
        assert db.assign_round_robin(s, study, 3, role="physician") == 21
        assert db.assign_round_robin(s, study, 3, role="physician") == 0
        pairs = s.query(db.Assignment.rater_id, db.Assignment.item_id).all()
        per_item = Counter(i for _, i in pairs)
        assert per_item == {it.id: 3 for it in items}
        assert len(set(pairs)) == 21
        load = Counter(r for r, _ in pairs)
        assert sorted(load.values()) == [4, 4, 4, 4, 5]
        lay = s.query(db.Rater).filter_by(name="layperson").one()
        assert lay.id not in load
        # topping up to 4 raters per item uses the least loaded raters, the lay rater included
        assert db.assign_round_robin(s, study, 4) == 7
        pairs = s.query(db.Assignment.rater_id, db.Assignment.item_id).all()
        assert Counter(i for _, i in pairs) == {it.id: 4 for it in items}
        assert len(set(pairs)) == 28
        assert max(Counter(r for r, _ in pairs).values()) - min(Counter(r for r, _ in pairs).values()) <= 1


def test_assign_via_api(env):
    admin, sid = env["admin"], env["study"]
    r = admin.post(f"/api/admin/studies/{sid}/assign", json={"per_item": 3}, headers=AUTH)
    assert r.json() == {"assigned": 9 - 4}
    with sqlite3.connect(env["path"]) as con:
        counts = con.execute("SELECT item_id, count(DISTINCT rater_id) FROM assignments GROUP BY item_id").fetchall()
    assert sorted(c for _, c in counts) == [3, 3, 3]
    assert admin.post(f"/api/admin/studies/{sid}/assign", json={"rater_id": 1, "item_ids": [999]},
                      headers=AUTH).status_code == 404
    assert admin.post(f"/api/admin/studies/{sid}/assign", json={}, headers=AUTH).status_code == 422


# ---- statistics ----

def test_pairwise_intervals_are_the_item_clustered_bootstrap():
    # three items with unequal numbers of ratings: the interval of each share is the cluster bootstrap
    # of a ratio of sums over items (metrics.stats, tested there against scipy)
    recs = ([{"item": 0, "sources": ["a", "b"], "values": {"consensus": v}} for v in ("a", "a", "tie")]
            + [{"item": 1, "sources": ["a", "b"], "values": {"consensus": v}} for v in ("b",)]
            + [{"item": 2, "sources": ["b", "a"], "values": {"consensus": v}} for v in ("a", "b")])
    (out,) = stats.pairwise_summary(recs, n_boot=3000, n_perm=100, seed=4)
    c = out["axes"]["consensus"]
    cnt = np.array([[2, 0, 1], [0, 1, 0], [1, 1, 0]], dtype=float)
    n = cnt.sum(1)
    idx = np.random.default_rng(4).integers(0, 3, size=(3000, 3))
    expected = np.quantile(cnt[idx].sum(1) / n[idx].sum(1)[:, None], [0.025, 0.975], axis=0)
    np.testing.assert_allclose([c["ci"][k] for k in ("a", "b", "tie")], expected.T, rtol=0, atol=1e-12)
    assert c["fraction"] == pytest.approx({"a": 3 / 6, "b": 2 / 6, "tie": 1 / 6})
    # per-item preferences (#a - #b) / #ratings = 2/3, -1, 0: the zero cannot flip, 2^2 flips remain
    assert c["preference"] == pytest.approx((2 / 3 - 1 + 0) / 3)
    assert c["p_value"] == 1.0  # |2/3 - 1| = 1/3: all four flip patterns reach at least 1/3


def test_pairwise_summary_unanimous_preference():
    recs = [{"item": i, "sources": ["physician", "model"], "values": {"consensus": "model", "bias": "tie"}}
            for i in range(5) for _ in range(3)]
    (out,) = stats.pairwise_summary(recs, n_boot=1000, n_perm=10000, seed=0)
    assert out["sources"] == ["model", "physician"] and out["n_items"] == 5 and out["n_ratings"] == 15
    c = out["axes"]["consensus"]
    assert c["fraction"] == {"model": 1.0, "physician": 0.0, "tie": 0.0}
    assert c["ci"] == {"model": [1.0, 1.0], "physician": [0.0, 0.0], "tie": [0.0, 0.0]}
    assert c["preference"] == 1.0
    assert c["p_value"] == 2 / 2 ** 5  # exact: only "all flipped" and "none flipped" are as extreme
    assert out["axes"]["bias"]["p_value"] == 1.0 and out["axes"]["bias"]["fraction"]["tie"] == 1.0
    assert list(out["axes"]) == ["consensus", "bias"]
    # with 15 items the 2**15 flips exceed n_perm: a Monte-Carlo estimate of 2 / 2**15
    recs = [{"item": i, "sources": ["model", "physician"], "values": {"consensus": "physician"}} for i in range(15)]
    (out,) = stats.pairwise_summary(recs, n_boot=100, n_perm=10000, seed=0)
    assert 1 / 10001 <= out["axes"]["consensus"]["p_value"] <= 5 / 10001


def test_independent_summary_and_label_permutation():
    good = {a.key: a.good for a in schema.PHYSICIAN_AXES}
    bad = {a.key: next(o for o in a.options if o != a.good) for a in schema.PHYSICIAN_AXES}
    recs = ([{"item": i, "source": "model", "values": good} for i in range(4) for _ in range(3)]
            + [{"item": 10 + i, "source": "physician", "values": bad} for i in range(4) for _ in range(3)])
    out = stats.independent_summary(recs, "physician", n_boot=500, n_perm=10000, seed=0)
    assert list(out["axes"]) == PHYSICIAN_KEYS
    for key in PHYSICIAN_KEYS:
        a = out["axes"][key]
        assert a["sources"]["model"] == {"n_answers": 4, "n_ratings": 12, "fraction": 1.0, "ci": [1.0, 1.0]}
        assert a["sources"]["physician"]["fraction"] == 0.0 and a["sources"]["physician"]["ci"] == [0.0, 0.0]
        (test,) = a["tests"]
        assert test["sources"] == ["model", "physician"] and test["difference"] == 1.0
        assert test["p_value"] == 2 / math.comb(8, 4)


def test_study_stats_with_lay_and_physician_ratings(env):
    ids, admin, sid = env["ids"], env["admin"], env["study"]
    p1, lay = env["client"]("p1"), env["client"]("lay")
    p1.post(f"/api/items/{ids[2]}/rating", json={"values": physician_values(bias="yes")})
    lay.post(f"/api/items/{ids[2]}/rating", json={"values": {"intent": "directly addresses",
                                                             "helpfulness": "helpful"}})
    st = admin.get(f"/api/admin/studies/{sid}/stats", params={"n_boot": 100, "n_perm": 100}, headers=AUTH).json()
    assert st["n_ratings"] == {"pairwise": 0, "physician": 1, "lay": 1} and st["pairwise"] == []
    phys = st["physician"]["axes"]
    assert phys["consensus"]["sources"]["model:smollm2"]["fraction"] == 1.0
    assert phys["bias"]["sources"]["model:smollm2"]["fraction"] == 0.0
    assert phys["bias"]["tests"] == []
    lay_axes = st["lay"]["axes"]
    assert lay_axes["intent"]["sources"]["model:smollm2"]["fraction"] == 1.0
    assert lay_axes["helpfulness"]["sources"]["model:smollm2"]["fraction"] == 0.0
