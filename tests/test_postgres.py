"""The two study applications on a real PostgreSQL server (``make test`` starts one on 127.0.0.1 with
scripts/postgres-test-db.sh): the same operations give the same exports as on SQLite."""

import os
import secrets

import pytest

PG = os.environ.get("DISCERN_TEST_POSTGRES",
                    "postgresql+psycopg://discern_test:discern_test@127.0.0.1:5432/discern_test")


@pytest.fixture
def pg():
    from sqlalchemy import create_engine, text

    engine = create_engine(PG)
    with engine.begin() as c:  # a clean database: drop whatever an earlier run left
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return PG


def _rating_study(url):
    from discern.medqa.rating import db, schema

    f = db.connect(url)
    with f() as s:
        st = db.create_study(s, "pilot")
        pair = [{"text": "model", "source": "model:x"}, {"text": "doc", "source": "physician"}]
        items = db.add_items(s, st, [{"question": "q1", "answers": pair}, {"question": "q2", "answers": pair},
                                     {"question": "q3", "answers": [{"text": "single", "source": "model:x"}]}], seed=3)
        alice = db.rater_by_token(s, db.invite(s, st, "alice", "physician"))
        db.assign(s, st, alice, [i.id for i in items])
        for k, item in enumerate(items[:2]):
            db.submit_rating(s, alice, item, {a.key: a.options[k % len(a.options)] for a in schema.PAIRWISE_AXES})
        db.submit_rating(s, alice, items[2], {a.key: a.options[-1] for a in schema.PHYSICIAN_AXES})
        rows = db.export_rows(s, st)
    f.kw["bind"].dispose()
    return rows


def test_rating_app_on_postgresql_matches_sqlite(pg, tmp_path):
    on_pg, on_sqlite = _rating_study(pg), _rating_study(tmp_path / "r.sqlite")
    assert len(on_pg) == 2 * 9 + 12
    assert on_pg == on_sqlite


def test_nureality_study_server_on_postgresql_matches_sqlite(pg, tmp_path):
    from discern.core.serving import LocalServer
    from discern.nureality.experiment import Config, run_study
    from discern.nureality.server import make_app

    out = {}
    for name, url in (("pg", pg), ("sqlite", tmp_path / "s.sqlite")):
        token = secrets.token_urlsafe(16)
        server = LocalServer(make_app(url, token))
        try:
            out[name] = run_study(server.url, token, Config(participants=3), ["baseline", "stop_farther", "no_yield"])
        finally:
            server.stop()
    drop = {"participant_id"}
    rows = {k: [{c: v for c, v in t.items() if c not in drop} for t in o["trials"]] for k, o in out.items()}
    assert len(rows["pg"]) == 9 and all(t["complete"] for t in rows["pg"])
    assert rows["pg"] == rows["sqlite"]
