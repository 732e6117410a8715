"""Many raters at once against the rating application on a real uvicorn (127.0.0.1): 200 raters sign in with
their invitation links and, all released together, list their items, open them and post a rating each.  No
answer may be a 5xx, nothing may hang, and every rating must be stored exactly once.  On SQLite, and on
PostgreSQL where one is reachable (``make test`` starts one; ``DISCERN_TEST_POSTGRES`` as in
tests/test_postgres.py), in a schema of its own."""

from __future__ import annotations

import asyncio
import os
import secrets

import httpx
import pytest
from sqlalchemy import select

from discern.core.serving import LocalServer
from discern.medqa.rating import db, schema
from discern.medqa.rating.app import make_app

N_RATERS = 200
PER_ITEM = 4  # raters per item
N_ITEMS = 50  # so each rater gets N_ITEMS * PER_ITEM / N_RATERS = 1 item
ADMIN = "load-admin-token"
PG = os.environ.get("DISCERN_TEST_POSTGRES",
                    "postgresql+psycopg://discern_test:discern_test@127.0.0.1:5432/discern_test")
KEYS = [a.key for a in schema.PAIRWISE_AXES]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A database URL: an SQLite file, or a fresh schema on the test PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        yield str(tmp_path / "load.sqlite")
        return
    from sqlalchemy import create_engine, text

    # make test starts the PostgreSQL server (scripts/postgres-test-db.sh), as for tests/test_postgres.py
    engine = create_engine(PG, connect_args={"connect_timeout": 10})
    name = f"rating_load_{secrets.token_hex(4)}"
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA {name}"))
    try:
        yield f"{PG}?options=-csearch_path%3D{name}"
    finally:
        with engine.begin() as c:
            c.execute(text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()


def make_study(url: str) -> tuple[dict[str, str], dict[str, list[int]]]:
    """A study of N_ITEMS pairwise items and N_RATERS physicians, PER_ITEM per item: (tokens by rater name,
    item ids by rater name)."""
    factory = db.connect(url)
    try:
        with factory() as s:
            study = db.create_study(s, "load")
            pair = [{"text": "model answer", "source": "model:x"}, {"text": "reference", "source": "physician"}]
            items = [i.id for i in db.add_items(s, study, [{"question": f"q{i}", "answers": pair}
                                                          for i in range(N_ITEMS)])]
            tokens = {f"rater{k:03d}": db.invite(s, study, f"rater{k:03d}", "physician") for k in range(N_RATERS)}
            assert db.assign_round_robin(s, study, PER_ITEM) == N_ITEMS * PER_ITEM
            assigned = {n: [i.id for i in db.assigned_items(s, db.rater_by_token(s, t))] for n, t in tokens.items()}
        assert sorted(i for ids in assigned.values() for i in ids) == sorted(items * PER_ITEM)
        return tokens, assigned
    finally:
        factory.kw["bind"].dispose()


def values_for(name: str, item: int) -> dict:
    k = int(name.removeprefix("rater"))
    return {key: ("A", "B", "tie")[(k + item + j) % 3] for j, key in enumerate(KEYS)}


class InFlight:
    """ASGI wrapper counting the requests in progress (the most at once in ``peak``)."""

    def __init__(self, app):
        self.app, self.now, self.peak = app, 0, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await self.app(scope, receive, send)
        finally:
            self.now -= 1


async def rate_all(base: str, tokens: dict[str, str]) -> list[tuple[str, str, int | str]]:
    """Every rater at once: all sign in, then all (on fresh connections, as from their own browsers) read
    who they are, list their items, open each and rate it.  Returns (rater, route, status) for every
    request (the exception's name for a request that got no answer)."""
    seen: list[tuple[str, str, int | str]] = []
    cookies: dict[str, str] = {}
    # a connection per rater so that all requests are in flight together; idle ones are dropped well before
    # uvicorn closes them (5 s), or a request could go out on a connection the server is closing
    limits = httpx.Limits(max_connections=len(tokens) + 10, max_keepalive_connections=len(tokens) + 10,
                          keepalive_expiry=1.0)
    timeout = httpx.Timeout(60.0, pool=60.0)

    async def call(http, name, method, url, route=None, **kw):
        headers = {"Cookie": f"discern_rater={cookies[name]}"} if name in cookies else {}
        try:
            r = await http.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as e:
            seen.append((name, f"{method} {route or url}", type(e).__name__))
            return None
        seen.append((name, f"{method} {route or url}", r.status_code))
        return r

    async def sign_in(http, name: str, token: str) -> None:
        r = await call(http, name, "GET", "/rate", params={"token": token}, route="/rate")
        if r is not None and "discern_rater" in r.cookies:
            cookies[name] = r.cookies["discern_rater"]

    async def rate(http, name: str) -> None:
        if name not in cookies:
            return
        me = await call(http, name, "GET", "/api/me")
        assert me is None or me.status_code != 200 or me.json()["name"] == name  # each rater is themselves
        listing = await call(http, name, "GET", "/api/items")
        if listing is None or listing.status_code != 200:
            return
        for item in listing.json()["items"]:
            await call(http, name, "GET", f"/api/items/{item['id']}", "/api/items/{id}")
            await call(http, name, "POST", f"/api/items/{item['id']}/rating", "/api/items/{id}/rating",
                       json={"values": values_for(name, item["id"])})

    # one client for all raters (its cookie jar unused: each request carries its rater's cookie)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as http:
        await asyncio.gather(*(sign_in(http, n, t) for n, t in tokens.items()))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as http:
        await asyncio.gather(*(rate(http, n) for n in tokens))
    return seen


def test_200_concurrent_raters(database):
    tokens, assigned = make_study(database)
    app = InFlight(make_app(database, ADMIN))
    pool = app.app.state.sessionmaker.kw["bind"].pool
    if database.startswith("postgresql"):  # bounded: requests beyond wait for a connection
        assert (pool.size(), pool._max_overflow, pool.timeout()) == (db.POOL_SIZE, db.POOL_OVERFLOW, db.POOL_TIMEOUT)
    else:  # SQLite opens more connections when needed
        assert pool.size() == db.POOL_SIZE and pool._max_overflow == -1
    with LocalServer(app) as base:
        seen = asyncio.run(asyncio.wait_for(rate_all(base, tokens), timeout=90))
    errors = [s for s in seen if not isinstance(s[2], int) or s[2] >= 500]
    assert errors == [], f"{len(errors)} server errors or requests without an answer, e.g. {errors[:5]}"
    expected = {"GET /rate": 303, "GET /api/me": 200, "GET /api/items": 200, "GET /api/items/{id}": 200,
                "POST /api/items/{id}/rating": 200}
    wrong = [s for s in seen if s[2] != expected[s[1]]]
    assert wrong == [], wrong[:5]
    n_assigned = N_ITEMS * PER_ITEM
    assert len(seen) == 3 * N_RATERS + 2 * n_assigned
    assert app.peak >= 80, f"only {app.peak} requests were in progress at once"
    factory = db.connect(database)
    try:
        with factory() as s:
            rows = s.execute(select(db.Rater.name, db.Rating.item_id, db.Rating.kind, db.Rating.values)
                             .join(db.Rater, db.Rater.id == db.Rating.rater_id)).all()
    finally:
        factory.kw["bind"].dispose()
    assert len(rows) == n_assigned  # each rating exactly once
    assert sorted((n, i) for n, i, _, _ in rows) == sorted((n, i) for n, ids in assigned.items() for i in ids)
    assert all(kind == "pairwise" and v == values_for(n, i) for n, i, kind, v in rows)
