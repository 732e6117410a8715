"""The nuReality study server: a FastAPI application that hands out trial plans, serves the scenarios and the
browser/WebXR page, and stores the participants' trial events.

From the publications (Schmitt et al. 2022, arXiv 2201.04742; the companion RA-L 2022 study): pedestrians
in VR decide when it is safe to cross in front of a vehicle that may or may not stop, and answer repeated
surveys.  The server, its API and the storage are our reconstruction (assumption); see ``store`` for the
rules of event storage and ``design`` for the trial orders.

Admin (header ``Authorization: Bearer <admin token>``):
``POST /api/admin/studies`` ``{"name", "scenarios": [ids], "order": "random"|"latin", "repetitions": int,
"likert": [item texts], "seed": int (optional)}`` -> ``{"id", "code"}``;
``GET /api/admin/studies/{id}/trials`` -> a JSON list of ``store.trials`` records;
``GET /api/admin/studies/{id}/export.csv``.

Participants: ``POST /api/join`` ``{"code", "participant"}`` -> ``{"participant_id", "token", "trials":
[{"index", "scenario"}], "study", "likert"}`` (a label joins once: joining again is answered only with that
participant's token in the Authorization header, 409 otherwise; 20 refused joins per address and minute
give 429); ``GET /api/scenarios/{id}``; with header
``Authorization: Bearer <participant token>``: ``POST /api/events`` ``{"events": [...]}`` -> ``{"acked"}``
and ``GET /api/progress`` -> ``{"acked", "next_trial"}``.

Errors are ``{"detail": "<one line>"}`` with 401 (no credentials), 403 (wrong credentials), 404 (unknown
study, code or scenario), 409 (an event seq already stored with other content, a label already taken), 413
(a body over 1 MiB, refused before parsing), 422 (malformed input) or 429.  The token of ``/api/events`` is
checked before its body is parsed.  On SQLite, writers queue on an asyncio lock, never on worker threads.
The page's own files (``*.html``, ``*.js``, ``*.css`` of ``web/``, nothing else) are served at ``/`` and
three.js from ``web/vendor/`` at ``/vendor/``; every response carries security headers, the page a
Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from discern.core.errors import DataError, DiscernError
from discern.core.files import read_json
from discern.core.serving import SECURITY_HEADERS, RequestLimits, bearer_token, json_errors

from . import store

PACKAGE_DIR = Path(__file__).resolve().parent
SCENARIO_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_BODY_BYTES = 1 << 20  # 1,000 events of about 1 KB each
PAGE_SUFFIXES = (".html", ".js", ".css")  # what the page folder serves (not package.json, node_modules, ...)
JOIN_FAILURES = (20, 60.0)  # at most 20 refused joins per client address per 60 s, then 429
StudyId = Annotated[int, PathParam(ge=1, le=store.MAX_SEQ)]
T = TypeVar("T")


class StudyIn(BaseModel):
    name: StrictStr = Field(min_length=1, max_length=200)
    scenarios: list[StrictStr] = Field(min_length=1, max_length=100)
    order: Literal["random", "latin"]
    repetitions: StrictInt = Field(ge=1, le=100)
    likert: list[Annotated[StrictStr, Field(min_length=1, max_length=500)]] = Field(default_factory=list,
                                                                                  max_length=50)
    seed: StrictInt | None = Field(default=None, ge=0, lt=2**31)


class JoinIn(BaseModel):
    code: StrictStr = Field(min_length=1, max_length=32)
    participant: StrictStr = Field(min_length=1, max_length=100)


class EventIn(BaseModel):
    seq: StrictInt = Field(ge=1, le=store.MAX_SEQ)
    trial: StrictInt = Field(ge=0, le=store.MAX_SEQ)
    type: Literal["trial_start", "onset", "safe", "decision", "likert", "trial_end"]
    t_ms: float = Field(allow_inf_nan=False, ge=-store.MAX_T_MS, le=store.MAX_T_MS)
    data: dict[str, Any] = Field(default_factory=dict)


class EventsIn(BaseModel):
    events: list[EventIn] = Field(max_length=store.MAX_EVENTS_PER_CALL)


class _Invalid(DiscernError):
    """A request body that does not validate (HTTP 422)."""


class _TooMany(DiscernError):
    """Too many refused joins from one address (HTTP 429)."""


def scenario_path(scenarios_dir: Path, scenario_id: str) -> Path:
    """The JSON file of a scenario id, or NotFoundError (ids are plain names: no paths)."""
    if not isinstance(scenario_id, str) or not SCENARIO_ID.match(scenario_id):
        raise store.NotFoundError(f"no scenario {scenario_id!r}: ids are letters, digits, '_' and '-'")
    path = scenarios_dir / f"{scenario_id}.json"
    if not path.is_file():
        raise store.NotFoundError(f"no scenario {scenario_id!r} (no {path.name} in {scenarios_dir})")
    return path


def read_scenario(scenarios_dir: Path, scenario_id: str) -> dict:
    """The scenario JSON as stored; DataError naming the file when it is not a JSON object."""
    path = scenario_path(scenarios_dir, scenario_id)
    return read_json(path, expect=dict, label=path.name)


def _session(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as s:
        yield s


async def _write(request: Request, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a writing session on a worker thread.  On SQLite (one writer at a time) the requests of
    this process queue on an asyncio lock first: a waiting request holds no worker thread, so any number of
    concurrent writers cannot starve the thread pool that the lock holder needs (other processes still wait
    on SQLite's busy timeout)."""
    factory = request.app.state.sessionmaker

    def run() -> T:
        with store.writing(factory) as s:
            return work(s)

    lock = request.app.state.write_lock
    if lock is None:
        return await run_in_threadpool(run)
    async with lock:
        return await run_in_threadpool(run)


def _one_line_errors(errors: list[dict], prefix: str = "") -> str:
    parts = []
    for err in errors:
        loc = ".".join(str(x) for x in (prefix, *err.get("loc", ())) if x != "")
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else err.get("msg", "invalid"))
    return "; ".join(parts[:5]).replace("\n", " ") or "invalid request"


async def _parse(request: Request, model: type[BaseModel]) -> Any:
    """The request body validated as ``model`` (the body's size was already capped by RequestLimits)."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        raise _Invalid(_one_line_errors(e.errors(include_url=False, include_input=False), "body")) from None


def _admin(request: Request) -> None:
    given = bearer_token(request)
    if given is None:
        raise HTTPException(401, "admin token required: send Authorization: Bearer <admin token>",
                            headers={"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(given.encode(), request.app.state.admin_token):
        raise HTTPException(403, "the admin token is not valid")


READ = Annotated[Session, Depends(_session)]
ADMIN = [Depends(_admin)]


def _participant(request: Request, s: Session) -> store.Participant:
    given = bearer_token(request)
    if given is None:
        raise HTTPException(401, "participant token required: send Authorization: Bearer <token from /api/join>",
                            headers={"WWW-Authenticate": "Bearer"})
    p = store.participant_by_token(s, given)
    if p is None:
        raise HTTPException(403, "the participant token is not valid: join the study again")
    return p


class _GroupCommit:
    """Group commit of event batches on SQLite (section "Storage" of the package README).

    Concurrent ``POST /api/events`` requests queue here; one worker stores every queued batch in one
    transaction; a batch that conflicts fails alone (it has written nothing) while the others commit
    together.  Each request is answered after the commit that holds its events: an acknowledgement
    still means "stored", and one commit serves many participants.  The write runs on the event loop (a
    group takes a few milliseconds; a worker thread would only add hand-overs), and each participant's last
    acknowledgement is remembered as the floor of the next (it never decreases: nothing is deleted)."""

    def __init__(self, factory, lock: asyncio.Lock):
        self.factory, self.lock = factory, lock
        self.pending: list[tuple[store.Writer, dict, asyncio.Future]] = []
        self.worker: asyncio.Task | None = None
        self.floors: dict[int, int] = {}

    async def submit(self, who: store.Writer, batch: dict) -> int:
        fut = asyncio.get_running_loop().create_future()
        self.pending.append((who, batch, fut))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self.pending:
            group, self.pending = self.pending, []
            try:
                async with self.lock:
                    results = self._write([(who, batch) for who, batch, _ in group])
            except Exception as e:  # the commit itself failed: no batch of the group is stored
                results = [e] * len(group)
            for (_, _, fut), res in zip(group, results):
                if not fut.done():
                    if isinstance(res, Exception):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)

    def _write(self, group: list[tuple[store.Writer, dict]]) -> list:
        out: list = []
        with store.writing(self.factory) as s:
            for who, batch in group:
                try:  # a batch that fails (a conflicting seq) has written nothing: the others go on
                    n = store.stage_events(s, who, batch, self.floors.get(who.id))
                except DiscernError as e:
                    out.append(e)
                    continue
                out.append(n)
            s.commit()
        for (who, _), n in zip(group, out):
            if isinstance(n, int):
                if len(self.floors) >= 100_000:
                    self.floors.clear()
                self.floors[who.id] = n
        return out


class _FailureWindow:
    """Refused joins per client address in a sliding window (in memory, per server process)."""

    def __init__(self, limit: int, seconds: float):
        self.limit, self.seconds = limit, seconds
        self.seen: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self.seen.setdefault(key, deque())
        now = time.monotonic()
        while q and now - q[0] > self.seconds:
            q.popleft()
        return q

    def check(self, key: str) -> None:
        q = self._recent(key)
        if len(q) >= self.limit:
            wait = max(1, int(self.seconds - (time.monotonic() - q[0])) + 1)
            raise _TooMany(f"too many refused joins from this address: try again in {wait} s")

    def fail(self, key: str) -> None:
        self._recent(key).append(time.monotonic())
        if len(self.seen) > 10000:  # forget idle addresses
            for k in [k for k, v in self.seen.items() if not v]:
                del self.seen[k]


def page_csp(html: str) -> str:
    """The page's Content-Security-Policy: scripts, styles and requests from this server only, plus the
    page's inline import map by its hash."""
    blocks = re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.DOTALL)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'"
                      for b in blocks if b.strip())
    return (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


def make_app(db_url: str | Path, admin_token: str, scenarios_dir: str | Path | None = None, *,
             web_dir: str | Path | None = None, wal: bool = True, max_body: int = MAX_BODY_BYTES,
             join_failures: tuple[int, float] = JOIN_FAILURES) -> FastAPI:
    """The study server over the database at ``db_url`` (an SQLite path or a SQLAlchemy URL).  Scenarios are
    read from ``scenarios_dir`` (default: the package's ``scenarios/``), the page from ``web_dir`` (default:
    the package's ``web/``).  Bodies over ``max_body`` bytes are refused (413) before they are parsed;
    ``join_failures`` = (n, seconds) limits refused joins per client address."""
    if not isinstance(admin_token, str) or len(admin_token) < 8:
        raise DiscernError("nureality server: the admin token must be a string of at least 8 characters")
    sdir = Path(scenarios_dir) if scenarios_dir is not None else PACKAGE_DIR / "scenarios"
    wdir = Path(web_dir) if web_dir is not None else PACKAGE_DIR / "web"
    factory = store.connect(db_url, wal=wal)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        factory.kw["bind"].dispose()

    app = FastAPI(title="discern nuReality study server", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.add_middleware(RequestLimits, max_bytes=max_body, headers=SECURITY_HEADERS)
    app.state.sessionmaker = factory
    app.state.write_lock = asyncio.Lock() if str(factory.kw["bind"].url).startswith("sqlite") else None
    app.state.admin_token = admin_token.encode()
    app.state.scenarios_dir = sdir
    joins = _FailureWindow(*join_failures)
    group = _GroupCommit(factory, app.state.write_lock) if app.state.write_lock is not None else None
    writers: dict[str, store.Writer] = {}  # token -> what storing needs (fixed at the join)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _one_line_errors(exc.errors())}, status_code=422)

    @app.exception_handler(_TooMany)
    async def _too_many(_request: Request, exc: _TooMany):
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(join_failures[1])})

    json_errors(app, {store.NotFoundError: 404, store.ConflictError: 409, DiscernError: 422})

    # ---- admin ----

    @app.post("/api/admin/studies", dependencies=ADMIN)
    async def create_study(request: Request):
        body = await _parse(request, StudyIn)
        for i, sid in enumerate(body.scenarios):
            try:
                read_scenario(sdir, sid)
            except DiscernError as e:
                raise DataError(f"scenarios[{i}]: {e}") from None
        study = await _write(request, lambda s: store.create_study(
            s, body.name, body.scenarios, body.order, body.repetitions, body.likert, seed=body.seed))
        return {"id": study.id, "code": study.code}

    @app.get("/api/admin/studies/{study_id}/trials", dependencies=ADMIN)
    def study_trials(study_id: StudyId, s: READ):
        return store.trials(s, store.get_study(s, study_id))

    @app.get("/api/admin/studies/{study_id}/export.csv", dependencies=ADMIN)
    def export(study_id: StudyId, s: READ):
        text = store.export_csv(s, store.get_study(s, study_id))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="nureality-study-{study_id}.csv"'})

    # ---- participants ----

    @app.post("/api/join")
    async def join(request: Request):
        address = request.client.host if request.client else "?"
        joins.check(address)
        body = await _parse(request, JoinIn)
        token = bearer_token(request)

        def work(s: Session) -> tuple[dict, store.Writer]:
            study = store.study_by_code(s, body.code)
            p = store.join(s, study, body.participant, token=token)
            return ({"participant_id": p.id, "token": p.token,
                     "trials": [{"index": i, "scenario": sid} for i, sid in enumerate(p.plan)],
                     "study": study.name, "likert": list(study.likert)},
                    store.writer(p))

        try:
            out, who = await _write(request, work)
        except (store.NotFoundError, store.ConflictError):
            joins.fail(address)
            raise
        _remember(out["token"], who)
        return JSONResponse(out, headers={"Cache-Control": "no-store"})

    @app.get("/api/scenarios/{scenario_id}")
    def scenario(scenario_id: str):
        return read_scenario(sdir, scenario_id)

    async def _writer(request: Request) -> store.Writer:
        token = bearer_token(request)
        who = writers.get(token) if token else None
        if who is None:
            def lookup() -> store.Writer:
                with factory() as s:
                    return store.writer(_participant(request, s))

            who = await run_in_threadpool(lookup)
            _remember(token, who)
        return who

    def _remember(token: str, who: store.Writer) -> None:
        if len(writers) >= 100_000:
            writers.clear()
        writers[token] = who

    @app.post("/api/events")
    async def events(request: Request):
        who = await _writer(request)  # the token is checked before the body is parsed
        body = await _parse(request, EventsIn)
        evs = [e.model_dump() for e in body.events]
        if group is not None:
            return {"acked": await group.submit(who, store.validate_batch(who, evs))}
        return {"acked": await _write(request, lambda s: store.add_events(s, who, evs))}

    @app.get("/api/progress")
    def progress(request: Request, s: READ):
        return store.progress(s, _participant(request, s))

    # ---- the page: only its own files (not package.json or node_modules), after the API routes ----

    if (wdir / "vendor").is_dir():
        app.mount("/vendor", StaticFiles(directory=wdir / "vendor"), name="vendor")
    page_files = ({p.name: p for p in wdir.iterdir() if p.is_file() and p.suffix in PAGE_SUFFIXES}
                  if wdir.is_dir() else {})
    index = page_files.get("index.html")
    csp = page_csp(index.read_text(encoding="utf-8")) if index is not None else None

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def page():
        if index is None:
            raise store.NotFoundError("no page: this server has no web folder")
        return FileResponse(index, headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache"})

    @app.api_route("/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def page_file(name: str):
        path = page_files.get(name)
        if path is None:
            raise store.NotFoundError(f"no file {name!r}")
        headers = {"Cache-Control": "no-cache"}
        if name == "index.html":
            headers["Content-Security-Policy"] = csp
        return FileResponse(path, headers=headers)

    return app


def serve(db_url: str | Path, admin_token: str, host: str = "127.0.0.1", port: int = 8000,
          scenarios_dir: str | Path | None = None, *, wal: bool = True, access_log: bool = True) -> None:
    """Run the study server with uvicorn until interrupted (loopback by default).

    Everything the application allocated at start-up is moved out of the garbage collector's sight
    (``gc.freeze``): a full collection then scans only what requests allocate, instead of pausing every
    request for tens of milliseconds to walk the framework's own objects (the p99 latency's main cause)."""
    import gc

    import uvicorn

    app = make_app(db_url, admin_token, scenarios_dir, wal=wal)
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log, timeout_keep_alive=75)
