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
[{"index", "scenario"}], "study", "likert"}`` (idempotent); ``GET /api/scenarios/{id}``; with header
``Authorization: Bearer <participant token>``: ``POST /api/events`` ``{"events": [...]}`` -> ``{"acked"}``
and ``GET /api/progress`` -> ``{"acked", "next_trial"}``.

Errors are ``{"detail": "<one line>"}`` with 401 (no credentials), 403 (wrong credentials), 404 (unknown
study, code or scenario), 409 (an event seq already stored with other content) or 422 (malformed input).
The page is served from ``web/`` at ``/`` and three.js from ``web/vendor/`` at ``/vendor/`` when present.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from discern.core.errors import DataError, DiscernError
from discern.core.files import read_json
from discern.core.serving import bearer_token, json_errors

from . import store

PACKAGE_DIR = Path(__file__).resolve().parent
SCENARIO_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class StudyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scenarios: list[str] = Field(min_length=1)
    order: Literal["random", "latin"]
    repetitions: int = Field(ge=1, le=100)
    likert: list[str] = Field(default_factory=list)
    seed: int | None = Field(default=None, ge=0, lt=2**31)


class JoinIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    participant: str = Field(min_length=1, max_length=100)


class EventIn(BaseModel):
    seq: int = Field(ge=1)
    trial: int = Field(ge=0)
    type: Literal["trial_start", "onset", "safe", "decision", "likert", "trial_end"]
    t_ms: float = Field(allow_inf_nan=False)
    data: dict[str, Any] = Field(default_factory=dict)


class EventsIn(BaseModel):
    events: list[EventIn] = Field(max_length=store.MAX_EVENTS_PER_CALL)


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


def _write_session(request: Request) -> Iterator[Session]:
    # SQLite has one writer at a time: writers of this process queue on a lock (woken in turn) instead of
    # polling SQLite's busy handler, whose growing sleeps made the latency tail (other processes still wait
    # on busy_timeout)
    lock = request.app.state.write_lock
    if lock is not None:
        lock.acquire()
    try:
        with store.writing(request.app.state.sessionmaker) as s:
            yield s
    finally:
        if lock is not None:
            lock.release()


def _admin(request: Request) -> None:
    given = bearer_token(request)
    if given is None:
        raise HTTPException(401, "admin token required: send Authorization: Bearer <admin token>",
                            headers={"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(given.encode(), request.app.state.admin_token):
        raise HTTPException(403, "the admin token is not valid")


READ = Annotated[Session, Depends(_session)]
WRITE = Annotated[Session, Depends(_write_session)]
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


def _one_line(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts).replace("\n", " ") or "invalid request"


def make_app(db_url: str | Path, admin_token: str, scenarios_dir: str | Path | None = None, *,
             web_dir: str | Path | None = None, wal: bool = True) -> FastAPI:
    """The study server over the database at ``db_url`` (an SQLite path or a SQLAlchemy URL).  Scenarios are
    read from ``scenarios_dir`` (default: the package's ``scenarios/``), the page from ``web_dir`` (default:
    the package's ``web/``)."""
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
    app.state.sessionmaker = factory
    app.state.write_lock = threading.Lock() if str(factory.kw["bind"].url).startswith("sqlite") else None
    app.state.admin_token = admin_token.encode()
    app.state.scenarios_dir = sdir

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    json_errors(app, {store.NotFoundError: 404, store.ConflictError: 409, DiscernError: 422})

    # ---- admin ----

    @app.post("/api/admin/studies", dependencies=ADMIN)
    def create_study(body: StudyIn, s: WRITE):
        for i, sid in enumerate(body.scenarios):
            try:
                read_scenario(sdir, sid)
            except DiscernError as e:
                raise DataError(f"scenarios[{i}]: {e}") from None
        study = store.create_study(s, body.name, body.scenarios, body.order, body.repetitions, body.likert,
                                   seed=body.seed)
        return {"id": study.id, "code": study.code}

    @app.get("/api/admin/studies/{study_id}/trials", dependencies=ADMIN)
    def study_trials(study_id: int, s: READ):
        return store.trials(s, store.get_study(s, study_id))

    @app.get("/api/admin/studies/{study_id}/export.csv", dependencies=ADMIN)
    def export(study_id: int, s: READ):
        text = store.export_csv(s, store.get_study(s, study_id))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="nureality-study-{study_id}.csv"'})

    # ---- participants ----

    @app.post("/api/join")
    def join(body: JoinIn, s: WRITE):
        study = store.study_by_code(s, body.code)
        p = store.join(s, study, body.participant)
        return {"participant_id": p.id, "token": p.token,
                "trials": [{"index": i, "scenario": sid} for i, sid in enumerate(p.plan)],
                "study": study.name, "likert": list(study.likert)}

    @app.get("/api/scenarios/{scenario_id}")
    def scenario(scenario_id: str):
        return read_scenario(sdir, scenario_id)

    @app.post("/api/events")
    def events(body: EventsIn, request: Request, s: WRITE):
        p = _participant(request, s)
        return {"acked": store.add_events(s, p, [e.model_dump() for e in body.events])}

    @app.get("/api/progress")
    def progress(request: Request, s: READ):
        return store.progress(s, _participant(request, s))

    # ---- the page (mounted last: the API routes above take precedence) ----

    if (wdir / "vendor").is_dir():
        app.mount("/vendor", StaticFiles(directory=wdir / "vendor"), name="vendor")
    if wdir.is_dir():
        app.mount("/", StaticFiles(directory=wdir, html=True), name="web")
    return app


def serve(db_url: str | Path, admin_token: str, host: str = "127.0.0.1", port: int = 8000,
          scenarios_dir: str | Path | None = None) -> None:
    """Run the study server with uvicorn until interrupted (loopback by default)."""
    import uvicorn

    uvicorn.run(make_app(db_url, admin_token, scenarios_dir), host=host, port=port, log_level="info")
