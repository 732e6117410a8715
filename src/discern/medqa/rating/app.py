"""The rating web application for the Med-PaLM 2 human evaluation of long-form answers (Singhal et al. 2023,
section 4 and the appendix on human evaluation): physicians and lay raters open a personal invitation link,
see only the items assigned to them, with pairwise answers in a blinded order, and fill in the paper's rubric.

Admin API (header ``Authorization: Bearer <admin token>``):
``POST /api/admin/studies`` ``{"name"}``; ``POST /api/admin/studies/{id}/items`` (a JSON list of records,
see ``db.add_items``; ``?seed=`` for the answer order); ``POST /api/admin/studies/{id}/raters``
``{"name", "role"}`` (returns the token and the invitation link); ``POST /api/admin/studies/{id}/assign``
``{"rater_id", "item_ids"}`` or ``{"per_item", "role"?}``; ``GET /api/admin/studies/{id}/export.csv``;
``GET /api/admin/studies/{id}/stats``.

Raters: ``GET /rate?token=T`` sets an HttpOnly, SameSite=Strict session cookie and serves the rating page;
``GET /api/me``, ``GET /api/items``, ``GET /api/items/{id}`` and ``POST /api/items/{id}/rating``
``{"values": {axis: option}}`` act for the rater of the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from discern.core.errors import DiscernError
from discern.core.serving import bearer_token, json_errors

from . import db, schema

COOKIE = "discern_rater"
PAGE = Path(__file__).with_name("page.html")
OPTION_LABELS = {"A": "Answer A", "B": "Answer B", "tie": "Tie"}


class StudyIn(BaseModel):
    name: str


class RaterIn(BaseModel):
    name: str
    role: Literal["physician", "lay"]


class AssignIn(BaseModel):
    rater_id: int | None = None
    item_ids: list[int] | None = None
    per_item: int | None = None
    role: Literal["physician", "lay"] | None = None


def _csp(html: str) -> str:
    """A Content-Security-Policy allowing exactly the page's inline script and style (by hash) and requests
    to this server, nothing else."""
    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)

    return (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _forbidden_page(message: str) -> HTMLResponse:
    from html import escape

    body = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Access denied</title></head>"
            f"<body><h1>Access denied</h1><p>{escape(message)}</p></body></html>")
    return HTMLResponse(body, status_code=403, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def item_view(item: db.Item, rater: db.Rater, rating: db.Rating | None = None) -> dict:
    """What a rater sees of an item: the question, the answers in the blinded order and the rubric for this
    item and rater; never the sources or whether the order was swapped."""
    kind = schema.rating_kind(item.kind, rater.role)
    shown = item.shown()
    labels = ["Answer A", "Answer B"] if item.kind == "pairwise" else ["Answer"]
    axes = [{"key": a.key, "question": a.question,
             "options": [{"value": o, "label": OPTION_LABELS.get(o, o) if kind == "pairwise" else o}
                         for o in a.options]}
            for a in schema.axes_for(kind)]
    return {"id": item.id, "kind": item.kind, "rating_kind": kind, "question": item.question,
            "answers": [{"label": lab, "text": text} for lab, (text, _source) in zip(labels, shown, strict=True)],
            "axes": axes, "rating": dict(rating.values) if rating is not None else None}


def _session(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as s:
        yield s


def _admin(request: Request) -> None:
    given = bearer_token(request)
    if given is None or not secrets.compare_digest(given.encode(), request.app.state.admin_token):
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})


DB = Annotated[Session, Depends(_session)]


def _rater(request: Request, s: DB) -> db.Rater:
    found = db.rater_by_token(s, request.cookies.get(COOKIE, ""))
    if found is None:
        raise HTTPException(401, "no valid rater session: open your invitation link")
    return found


CurrentRater = Annotated[db.Rater, Depends(_rater)]
ADMIN = [Depends(_admin)]


def _assigned_item(item_id: int, s: Session, r: db.Rater) -> db.Item:
    item = db.get_item(s, item_id)
    if item.study_id != r.study_id or not db.is_assigned(s, r, item):
        raise HTTPException(403, f"item {item_id} is not assigned to you")
    return item


def make_app(db_url: str, admin_token: str) -> FastAPI:
    """The FastAPI application over the database at ``db_url`` (an SQLite path or a SQLAlchemy URL)."""
    if not isinstance(admin_token, str) or len(admin_token) < 8:
        raise DiscernError("the admin token must be a string of at least 8 characters")
    page = PAGE.read_text(encoding="utf-8")
    page_headers = {"Content-Security-Policy": _csp(page), "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}

    app = FastAPI(title="discern medqa rating", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessionmaker = db.connect(db_url)
    app.state.admin_token = admin_token.encode()

    json_errors(app, {db.NotFoundError: 404, db.NotAssignedError: 403, DiscernError: 422})

    # ---- admin ----

    @app.post("/api/admin/studies", dependencies=ADMIN)
    def create_study(body: StudyIn, s: DB):
        study = db.create_study(s, body.name)
        return {"id": study.id, "name": study.name}

    @app.post("/api/admin/studies/{study_id}/items", dependencies=ADMIN)
    def add_items(study_id: int, records: list[dict], s: DB, seed: int = 0):
        items = db.add_items(s, study_id, records, seed=seed)
        return {"ids": [i.id for i in items]}

    @app.post("/api/admin/studies/{study_id}/raters", dependencies=ADMIN)
    def add_rater(study_id: int, body: RaterIn, request: Request, s: DB):
        token = db.invite(s, study_id, body.name, body.role)
        r = db.rater_by_token(s, token)
        path = f"/rate?token={token}"
        return {"id": r.id, "name": r.name, "role": r.role, "token": token, "path": path,
                "link": str(request.base_url).rstrip("/") + path}

    @app.post("/api/admin/studies/{study_id}/assign", dependencies=ADMIN)
    def assign(study_id: int, body: AssignIn, s: DB):
        if body.per_item is not None:
            if body.rater_id is not None or body.item_ids is not None:
                raise HTTPException(422, "give either per_item or rater_id with item_ids, not both")
            return {"assigned": db.assign_round_robin(s, study_id, body.per_item, role=body.role)}
        if body.rater_id is None or body.item_ids is None:
            raise HTTPException(422, "give per_item, or rater_id with item_ids")
        return {"assigned": db.assign(s, study_id, body.rater_id, body.item_ids)}

    @app.get("/api/admin/studies/{study_id}/export.csv", dependencies=ADMIN)
    def export(study_id: int, s: DB):
        text = db.export_csv_text(s, study_id)
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="study-{study_id}.csv"'})

    @app.get("/api/admin/studies/{study_id}/stats", dependencies=ADMIN)
    def stats(study_id: int, s: DB, n_boot: Annotated[int, Query(ge=1, le=100000)] = 10000,
              n_perm: Annotated[int, Query(ge=1, le=100000)] = 10000, seed: int = 0):
        from .stats import study_stats

        return study_stats(s, study_id, n_boot=n_boot, n_perm=n_perm, seed=seed)

    # ---- raters ----

    @app.get("/rate")
    def rate(request: Request, s: DB, token: str | None = None):
        given = token if token is not None else request.cookies.get(COOKIE, "")
        r = db.rater_by_token(s, given)
        if r is None:
            return _forbidden_page("This invitation link is not valid. Ask the study organiser for a new one.")
        resp = HTMLResponse(page, headers=page_headers)
        resp.set_cookie(COOKIE, r.token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https", max_age=60 * 60 * 24 * 90)
        return resp

    @app.get("/api/me")
    def me(r: CurrentRater):
        return {"name": r.name, "role": r.role, "study": r.study.name}

    @app.get("/api/items")
    def items(r: CurrentRater, s: DB):
        listing = []
        for item in db.assigned_items(s, r):
            rated = db.get_rating(s, r, item) is not None
            listing.append({"id": item.id, "kind": item.kind, "question": item.question, "rated": rated})
        return {"items": listing, "rated": sum(i["rated"] for i in listing), "total": len(listing)}

    @app.get("/api/items/{item_id}")
    def item(item_id: int, r: CurrentRater, s: DB):
        it = _assigned_item(item_id, s, r)
        return item_view(it, r, db.get_rating(s, r, it))

    @app.post("/api/items/{item_id}/rating")
    def rating(item_id: int, request: Request, body: Annotated[dict, Body()], r: CurrentRater, s: DB):
        it = _assigned_item(item_id, s, r)
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPException(415, "send the rating as application/json")
        if not isinstance(body.get("values"), dict):
            raise HTTPException(422, 'expected {"values": {axis: option, ...}}')
        try:
            saved = db.submit_rating(s, r, it, body["values"])
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        return {"saved": True, "item": it.id, "kind": saved.kind, "values": saved.values}

    return app


def serve(db_url: str, admin_token: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the rating application with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(make_app(db_url, admin_token), host=host, port=port, log_level="info")
