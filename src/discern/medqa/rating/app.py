"""The rating web application for the Med-PaLM 2 human evaluation of long-form answers (Singhal et al. 2023,
section 4 and the appendix on human evaluation): physicians and lay raters open a personal invitation link,
see only the items assigned to them, with pairwise answers in a blinded order, and fill in the paper's rubric.

Admin API (header ``Authorization: Bearer <admin token>``; JSON bodies as ``application/json``):
``POST /api/admin/studies`` ``{"name"}``; ``POST /api/admin/studies/{id}/items`` (a JSON list of records,
see ``db.add_items``; ``?seed=`` 0 .. 2**31-1 for the answer order); ``POST /api/admin/studies/{id}/raters``
``{"name", "role"}`` (returns the invitation token and link: the only time they are shown, the database
keeps the token's SHA-256); ``POST /api/admin/studies/{id}/assign`` ``{"rater_id", "item_ids"}`` or
``{"per_item", "role"?}``; ``GET /api/admin/studies/{id}/export.csv`` (text cells that a spreadsheet would
run as formulas are prefixed with ``'``); ``GET /api/admin/studies/{id}/stats``.

Raters: ``GET /rate?token=T`` exchanges the invitation token for a fresh random session id (its SHA-256
stored, valid ``db.SESSION_TTL``) set as an HttpOnly, SameSite=Lax cookie, and answers 303 to ``/rate``
so that the token leaves the address bar; ``GET /rate`` with a valid session serves the rating page (403
page otherwise).  (Lax, not Strict: a link opened from an e-mail is a cross-site navigation, which must
bring the cookie both to the page after the redirect and to the check below; cross-site POSTs and
fetches never carry it.)  A link of another rater opened in a browser signed in as someone else does not
switch silently: it answers 409 with a page naming both raters and a button that sends ``POST /rate``
(form field ``token``; accepted from the same origin only) to switch.  ``GET /api/me``, ``GET /api/items``,
``GET /api/items/{id}`` and ``POST /api/items/{id}/rating`` ``{"values": {axis: option}}`` act for the rater
of the cookie.

Errors of the API are ``{"detail": "<one line>"}``: 401 (no credentials; a rater's session is never an admin
credential), 403 (a wrong admin token, an item not assigned to the rater), 404 (no such study, rater, item or
route), 405, 409 (a concurrent conflicting change), 413 (a body over 64 KiB, over 16 MiB for an items
upload, refused before it is parsed), 415 (a body that is not JSON), 422 (malformed JSON, wrong types,
strings longer than their columns, integers out of range: ids 1 .. 2**31-1) or 503 (database busy).  One
request uses one database session on one worker thread.  Every response carries security headers; the
pages a Content-Security-Policy of their own.  ``serve`` keeps query strings (invitation tokens) out of
uvicorn's access log.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager, nullcontext
from html import escape
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from discern.core.errors import DiscernError
from discern.core.serving import SECURITY_HEADERS, RequestLimits, bearer_token

from . import db, schema

COOKIE = "discern_rater"
PAGE = Path(__file__).with_name("page.html")
OPTION_LABELS = {"A": "Answer A", "B": "Answer B", "tie": "Tie"}
MAX_BODY_BYTES = 64 << 10  # any request body
MAX_ADMIN_BYTES = 1 << 20  # the admin API's bodies (assignments of many items)
MAX_UPLOAD_BYTES = 16 << 20  # an items upload
MAX_RECORDS = 100_000  # items per upload
MAX_ITEM_IDS = 100_000  # items per assignment
MAX_PER_ITEM = 1000
ITEMS_UPLOAD = re.compile(r"^/api/admin/studies/[^/]+/items$")
HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store",
           "Content-Security-Policy": "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}
T = TypeVar("T")

Id = Annotated[int, Field(ge=1, le=db.MAX_ID)]
PathId = Annotated[int, PathParam(ge=1, le=db.MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=db.NAME_MAX)]
Role = Literal["physician", "lay"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class StudyIn(_Strict):
    name: Name


class RaterIn(_Strict):
    name: Name
    role: Role


class AssignIn(_Strict):
    rater_id: Id | None = None
    item_ids: list[Id] | None = Field(default=None, max_length=MAX_ITEM_IDS)
    per_item: Annotated[int, Field(ge=1, le=MAX_PER_ITEM)] | None = None
    role: Role | None = None


class AnswerIn(BaseModel):
    model_config = ConfigDict(strict=True)
    text: Annotated[str, Field(min_length=1, max_length=db.TEXT_MAX)]
    source: Name


class RecordIn(BaseModel):
    model_config = ConfigDict(strict=True)
    question: Annotated[str, Field(min_length=1, max_length=db.TEXT_MAX)]
    answers: list[AnswerIn] = Field(min_length=1, max_length=2)
    meta: dict[str, Any] | None = None


class RatingIn(_Strict):
    values: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=db.NAME_MAX)]] = Field(
        max_length=64)


RECORDS = TypeAdapter(Annotated[list[RecordIn], Field(max_length=MAX_RECORDS)])


def _csp(html: str, form_action: str = "'none'") -> str:
    """A Content-Security-Policy allowing exactly the page's inline scripts and styles (by hash) and requests
    to this server, nothing else."""
    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)

    scripts, styles = hashes("script") or "'none'", hashes("style") or "'none'"
    return (f"default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; base-uri 'none'; "
            f"form-action {form_action}; frame-ancestors 'none'")


def one_line(text: Any, limit: int = 500) -> str:
    """An error message on one line (any run of whitespace, newlines included, becomes one space), cut at
    ``limit`` characters."""
    line = " ".join(str(text).split()) or "error"
    return line if len(line) <= limit else line[:limit - 1] + "\u2026"


def _validation_message(errors: list[dict], prefix: str = "") -> str:
    parts = []
    for err in errors[:3]:
        loc = ".".join(str(x) for x in (prefix, *err.get("loc", ())) if x != "")
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return one_line("; ".join(parts) + more)


def _page(status: int, title: str, message: str) -> HTMLResponse:
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>")
    return HTMLResponse(body, status_code=status, headers={"Content-Security-Policy": _csp(body)})


def _forbidden_page(message: str) -> HTMLResponse:
    return _page(403, "Access denied", message)


def _switch_page(current: db.Rater, invited: db.Rater, token: str) -> HTMLResponse:
    """The page for a rater's link opened in a browser signed in as another rater: it names both and asks
    before switching (a form sending ``POST /rate``); its script takes the token out of the address bar."""
    who = f"<strong>{escape(current.name)}</strong> (study {escape(current.study.name)})"
    new = f"<strong>{escape(invited.name)}</strong> (study {escape(invited.study.name)})"
    body = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Another rater is signed in</title>'
            "</head><body><h1>Another rater is signed in</h1>"
            f"<p>This browser is signed in as {who}. The invitation link you opened is the one of {new}.</p>"
            '<form method="post" action="/rate">'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            f'<button type="submit">Sign out and continue as {escape(invited.name)}</button></form>'
            f'<p><a href="/rate">Stay signed in as {escape(current.name)}</a></p>'
            '<script>history.replaceState(null, "", "/rate");</script></body></html>')
    return HTMLResponse(body, status_code=409, headers={"Content-Security-Policy": _csp(body, "'self'")})


def _signed_in(request: Request, sid: str) -> RedirectResponse:
    resp = RedirectResponse("/rate", status_code=303)
    resp.set_cookie(COOKIE, sid, max_age=int(db.SESSION_TTL.total_seconds()), path="/", httponly=True,
                    samesite="lax", secure=request.url.scheme == "https")
    return resp


def _same_origin(request: Request) -> bool:
    """Whether a form was sent by a page of this server: ``Sec-Fetch-Site: same-origin`` where the browser
    sends it, otherwise an ``Origin`` whose host is the request's ``Host``."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


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


async def _admin(request: Request) -> None:
    given = bearer_token(request)
    if given is None:
        raise HTTPException(401, "admin token required: send Authorization: Bearer <admin token>",
                            headers={"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(given.encode("utf-8", "replace"), request.app.state.admin_token):
        raise HTTPException(403, "the admin token is not valid")


async def _session_cookie(request: Request) -> str:
    sid = request.cookies.get(COOKIE)
    if not sid:
        raise HTTPException(401, "no rater session: open your invitation link")
    return sid


ADMIN = [Depends(_admin)]
SessionId = Annotated[str, Depends(_session_cookie)]


def _is_json(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))


def _parse(raw: bytes, json_type: bool, adapter: Any) -> Any:
    """A JSON body validated by a model or TypeAdapter: 415 when it is not sent as JSON, 422 when it does not
    parse or validate."""
    if not json_type:
        raise HTTPException(415, "send the body as application/json")
    try:
        return adapter.model_validate_json(raw) if isinstance(adapter, type) else adapter.validate_json(raw)
    except ValidationError as e:
        raise HTTPException(422, _validation_message(e.errors(include_url=False, include_input=False), "body"))


def _rater(s: Session, sid: str) -> db.Rater:
    found = db.rater_by_session(s, sid)
    if found is None:
        raise HTTPException(401, "no valid rater session: open your invitation link")
    return found


def _assigned_item(s: Session, r: db.Rater, item_id: int) -> db.Item:
    item = db.get_item(s, item_id)
    if item.study_id != r.study_id or not db.is_assigned(s, r, item):
        raise HTTPException(403, f"item {item_id} is not assigned to you")
    return item


class _Limits(RequestLimits):
    """RequestLimits with the larger limit for the items upload (a path with the study id in it)."""

    def __init__(self, app, upload_bytes: int, **kw):
        super().__init__(app, **kw)
        self.upload_bytes = int(upload_bytes)

    def limit(self, path: str) -> int:
        return self.upload_bytes if ITEMS_UPLOAD.match(path) else super().limit(path)


def make_app(db_url: str, admin_token: str, *, max_body: int = MAX_BODY_BYTES, max_admin: int = MAX_ADMIN_BYTES,
             max_upload: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The FastAPI application over the database at ``db_url`` (an SQLite path or a SQLAlchemy URL).  Request
    bodies over ``max_body`` bytes (``max_admin`` for the admin API, ``max_upload`` for an items upload) are
    refused with 413 before they are parsed."""
    if not isinstance(admin_token, str) or len(admin_token) < 8:
        raise DiscernError("the admin token must be a string of at least 8 characters")
    page = PAGE.read_text(encoding="utf-8")
    page_headers = {"Content-Security-Policy": _csp(page)}
    factory = db.connect(db_url)
    # an in-memory SQLite database is one connection: its sessions take turns
    lock = threading.Lock() if isinstance(factory.kw["bind"].pool, StaticPool) else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        factory.kw["bind"].dispose()

    app = FastAPI(title="discern medqa rating", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.add_middleware(_Limits, max_bytes=max_body, prefixes={"/api/admin/": max_admin}, upload_bytes=max_upload,
                       headers=HEADERS)
    app.state.sessionmaker = factory
    app.state.admin_token = admin_token.encode()

    def run(work: Callable[[Session], T]) -> T:
        with lock or nullcontext(), factory() as s:
            return work(s)

    async def in_db(work: Callable[[Session], T]) -> T:
        """Run ``work`` with one session on one worker thread: a request never holds a connection while it
        waits for a thread, so no number of concurrent requests can exhaust the pool."""
        return await run_in_threadpool(run, work)

    # ---- errors: {"detail": "<one line>"} ----

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": one_line(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg")} for e in exc.errors()]
        return JSONResponse({"detail": _validation_message(errors)}, status_code=422)

    def status_for(cls: type[Exception], code: int, fixed: str | None = None, headers: dict | None = None) -> None:
        async def handler(_request: Request, exc: Exception):
            return JSONResponse({"detail": fixed or one_line(exc)}, status_code=code, headers=headers)

        app.add_exception_handler(cls, handler)

    status_for(db.NotFoundError, 404)
    status_for(db.NotAssignedError, 403)
    status_for(DiscernError, 422)
    status_for(sa_exc.IntegrityError, 409, "the request conflicts with a change made meanwhile: reload and retry")
    busy = {"Retry-After": "5"}
    status_for(sa_exc.TimeoutError, 503, "the database is busy: retry in a moment", busy)
    status_for(sa_exc.OperationalError, 503, "the database is not available: retry in a moment", busy)

    # ---- admin ----

    @app.post("/api/admin/studies", dependencies=ADMIN)
    async def create_study(request: Request):
        body = _parse(await request.body(), _is_json(request), StudyIn)

        def work(s: Session):
            study = db.create_study(s, body.name)
            return {"id": study.id, "name": study.name}

        return await in_db(work)

    @app.post("/api/admin/studies/{study_id}/items", dependencies=ADMIN)
    async def add_items(study_id: PathId, request: Request,
                        seed: Annotated[int, Query(ge=0, le=db.MAX_ID)] = 0):
        records = _parse(await request.body(), _is_json(request), RECORDS)
        plain = [r.model_dump() for r in records]

        def work(s: Session):
            return {"ids": [i.id for i in db.add_items(s, study_id, plain, seed=seed)]}

        return await in_db(work)

    @app.post("/api/admin/studies/{study_id}/raters", dependencies=ADMIN)
    async def add_rater(study_id: PathId, request: Request):
        body = _parse(await request.body(), _is_json(request), RaterIn)

        def work(s: Session):
            token = db.invite(s, study_id, body.name, body.role)
            r = db.rater_by_token(s, token)
            return {"id": r.id, "name": r.name, "role": r.role, "token": token}

        out = await in_db(work)
        out["path"] = f"/rate?token={out['token']}"
        out["link"] = str(request.base_url).rstrip("/") + out["path"]
        return out

    @app.post("/api/admin/studies/{study_id}/assign", dependencies=ADMIN)
    async def assign(study_id: PathId, request: Request):
        body = _parse(await request.body(), _is_json(request), AssignIn)
        if body.per_item is not None:
            if body.rater_id is not None or body.item_ids is not None:
                raise HTTPException(422, "give either per_item or rater_id with item_ids, not both")
            return {"assigned": await in_db(lambda s: db.assign_round_robin(s, study_id, body.per_item,
                                                                            role=body.role))}
        if body.rater_id is None or body.item_ids is None:
            raise HTTPException(422, "give per_item, or rater_id with item_ids")
        return {"assigned": await in_db(lambda s: db.assign(s, study_id, body.rater_id, body.item_ids))}

    @app.get("/api/admin/studies/{study_id}/export.csv", dependencies=ADMIN)
    async def export(study_id: PathId):
        text = await in_db(lambda s: db.export_csv_text(s, study_id))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="study-{study_id}.csv"'})

    @app.get("/api/admin/studies/{study_id}/stats", dependencies=ADMIN)
    async def stats(study_id: PathId, n_boot: Annotated[int, Query(ge=1, le=100000)] = 10000,
                    n_perm: Annotated[int, Query(ge=1, le=100000)] = 10000,
                    seed: Annotated[int, Query(ge=0, le=db.MAX_ID)] = 0):
        from .stats import study_stats

        return await in_db(lambda s: study_stats(s, study_id, n_boot=n_boot, n_perm=n_perm, seed=seed))

    # ---- raters ----

    @app.get("/rate")
    async def rate(request: Request, token: str | None = None):
        sid = request.cookies.get(COOKIE)

        def work(s: Session) -> Response:
            current = db.rater_by_session(s, sid) if sid else None
            if token is None:
                if current is None:
                    return _forbidden_page("You are not signed in (or your session has expired): open your "
                                           "invitation link again.")
                return HTMLResponse(page, headers=page_headers)
            invited = db.rater_by_token(s, token)
            if invited is None:
                return _forbidden_page("This invitation link is not valid. Ask the study organiser for a new one.")
            if current is not None and current.id != invited.id:
                return _switch_page(current, invited, token)
            if current is not None:  # the same rater's link again: keep the session
                return RedirectResponse("/rate", status_code=303)
            return _signed_in(request, db.open_session(s, invited))

        return await in_db(work)

    @app.post("/rate")
    async def switch(request: Request):
        if not _same_origin(request):
            return _forbidden_page("Switching raters is only possible with the button of the rating page.")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return _page(415, "Unsupported form", "Send the form of the rating page.")
        try:
            form = parse_qs((await request.body()).decode("utf-8"), max_num_fields=4)
        except (UnicodeDecodeError, ValueError):
            return _page(422, "Unreadable form", "Send the form of the rating page.")
        token = (form.get("token") or [""])[0]
        sid = request.cookies.get(COOKIE)

        def work(s: Session) -> Response:
            invited = db.rater_by_token(s, token)
            if invited is None:
                return _forbidden_page("This invitation link is not valid. Ask the study organiser for a new one.")
            if sid:
                db.close_session(s, sid)
            return _signed_in(request, db.open_session(s, invited))

        return await in_db(work)

    @app.get("/api/me")
    async def me(sid: SessionId):
        def work(s: Session):
            r = _rater(s, sid)
            return {"name": r.name, "role": r.role, "study": r.study.name}

        return await in_db(work)

    @app.get("/api/items")
    async def items(sid: SessionId):
        def work(s: Session):
            r = _rater(s, sid)
            listing = [{"id": item.id, "kind": item.kind, "question": item.question,
                        "rated": db.get_rating(s, r, item) is not None} for item in db.assigned_items(s, r)]
            return {"items": listing, "rated": sum(i["rated"] for i in listing), "total": len(listing)}

        return await in_db(work)

    @app.get("/api/items/{item_id}")
    async def item(item_id: PathId, sid: SessionId):
        def work(s: Session):
            r = _rater(s, sid)
            it = _assigned_item(s, r, item_id)
            return item_view(it, r, db.get_rating(s, r, it))

        return await in_db(work)

    @app.post("/api/items/{item_id}/rating")
    async def rating(item_id: PathId, sid: SessionId, request: Request):
        raw, json_type = await request.body(), _is_json(request)

        def work(s: Session):  # who and which item first, then the body
            r = _rater(s, sid)
            it = _assigned_item(s, r, item_id)
            body = _parse(raw, json_type, RatingIn)
            try:
                saved = db.submit_rating(s, r, it, body.values)
            except ValueError as e:  # schema.validate: incomplete or unknown axes or options
                raise HTTPException(422, str(e)) from None
            return {"saved": True, "item": it.id, "kind": saved.kind, "values": saved.values}

        return await in_db(work)

    return app


class HideQueryStrings(logging.Filter):
    """Takes query strings (invitation tokens) out of uvicorn's access log lines: ``GET /rate?…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?\u2026", *args[3:])
        return True


def serve(db_url: str, admin_token: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the rating application with uvicorn until interrupted; the access log shows paths without their
    query strings."""
    import uvicorn

    config = uvicorn.Config(make_app(db_url, admin_token), host=host, port=port, log_level="info")
    access = logging.getLogger("uvicorn.access")  # configured by uvicorn.Config
    if not any(isinstance(f, HideQueryStrings) for f in access.filters):
        access.addFilter(HideQueryStrings())
    uvicorn.Server(config).run()
