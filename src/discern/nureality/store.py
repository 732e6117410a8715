"""Storage of a nuReality study (SQLAlchemy 2.x): studies, participants and the participants' trial events.

From the publications (Schmitt et al. 2022, arXiv 2201.04742, and the companion RA-L 2022 study): for each
expressive vehicle behaviour the study records how quickly the pedestrian decides it is safe to cross, and
repeated surveys of subjective experience.  Everything about how these are stored is our reconstruction
(assumption):

- A participant's page sends events (``trial_start``, ``onset``, ``safe``, ``decision``, ``likert``,
  ``trial_end``), numbered by the page from 1 (``seq``) and kept there until acknowledged.  An event is
  stored at most once per (participant, seq): a re-sent event with the same content is ignored, one with
  different content is refused (``ConflictError``, HTTP 409).  The acknowledgement is the highest seq up to
  which *every* event is stored (``acked``), so a page that lost a response resends from ``acked + 1``.
- ``t_ms`` is milliseconds since the vehicle's onset in that trial (negative before onset).  The decision
  time of a trial is the ``t_ms`` of its first ``safe`` event, in seconds.  If a trial was started more than
  once (the page was reloaded mid-trial), only the events after its last ``trial_start`` count: the earlier
  attempt was interrupted.  For ``decision`` (``{"cross": bool}``) and ``likert`` (``{"item": i, "value":
  1..7}``, ``i`` 0-based into the study's items) the last answer counts (a corrected answer replaces the
  first).  A trial is complete when its ``trial_end`` event is stored.

- A participant label joins once.  Joining again with the same label is answered only to the browser that
  holds that participant's token (it resumes); anyone else gets ``ConflictError``, so knowing a study code
  and a label is not enough to take over someone's session.
- Exported CSV cells that hold text and begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a
  leading ``'``, so that a spreadsheet shows them as text instead of running them as formulas.

SQLite by default (a path or ``sqlite:///...``), in WAL mode with ``synchronous=FULL`` (an acknowledged event
survives a power loss, not only a crash of the server) and a busy timeout,
and with ``BEGIN IMMEDIATE`` for writing sessions (``writing(factory)``) so that concurrent writers queue on
the lock instead of failing; any other SQLAlchemy URL works, e.g. ``postgresql+psycopg://...``, where
concurrent inserts are resolved by the unique constraints and a retry.  Functions that change the database
commit their session.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.pool import StaticPool

from discern.core.errors import DataError, DiscernError, NotFoundError

from .design import ORDERS, trial_plan

EVENT_TYPES = ("trial_start", "onset", "safe", "decision", "likert", "trial_end")
LIKERT_MIN, LIKERT_MAX = 1, 7
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed by hand
CODE_LENGTH = 6
MAX_EVENTS_PER_CALL = 1000
MAX_SEQ = 2**31 - 1  # the Integer column is 32-bit on PostgreSQL
MAX_T_MS = 1e9  # about 11.6 days from the onset: anything beyond is not a trial time
MAX_DATA_BYTES = 2048  # an event's data as compact JSON
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
WRITE_OPTION = "nureality_write"
BUSY_TIMEOUT_MS = 30000


class ConflictError(DiscernError):
    """An event whose seq is already stored with different content."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "nureality_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    scenarios: Mapped[list] = mapped_column(JSON)
    order: Mapped[str] = mapped_column(String(16))
    repetitions: Mapped[int] = mapped_column(Integer)
    likert: Mapped[list] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    participants: Mapped[list[Participant]] = relationship(back_populates="study", order_by="Participant.index")


class Participant(Base):
    __tablename__ = "nureality_participants"
    __table_args__ = (UniqueConstraint("study_id", "label"), UniqueConstraint("study_id", "index"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("nureality_studies.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    index: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    plan: Mapped[list] = mapped_column(JSON)
    # events 1..acked are all stored: kept up to date by add_events so an ack never rereads all seqs
    acked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    study: Mapped[Study] = relationship(back_populates="participants")


class Event(Base):
    __tablename__ = "nureality_events"
    __table_args__ = (UniqueConstraint("participant_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("nureality_participants.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    trial: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    t_ms: Mapped[float] = mapped_column(Float)
    data: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


_E, _P = Event.__table__, Participant.__table__
# the statements of the write path, built once (SQLAlchemy caches their compiled form)
_STORED = (select(_E.c.seq, _E.c.trial, _E.c.type, _E.c.t_ms, _E.c.data)
           .where(_E.c.participant_id == bindparam("pid"), _E.c.seq.in_(bindparam("seqs", expanding=True))))
_ACKED = select(_P.c.acked).where(_P.c.id == bindparam("pid"))
_ABOVE = (select(_E.c.seq).where(_E.c.participant_id == bindparam("pid"), _E.c.seq > bindparam("n"))
          .order_by(_E.c.seq).limit(bindparam("k")))


# ---------------------------------------------------------------------------------------------------------
# connection


def database_url(url: str | Path) -> str:
    """A SQLAlchemy URL: URLs pass through, anything else is a path to an SQLite file."""
    s = str(url)
    if "://" in s:
        return s
    if s == ":memory:":
        return "sqlite://"
    return f"sqlite:///{Path(s).expanduser().resolve()}"


def connect(url: str | Path, wal: bool = True) -> sessionmaker[Session]:
    """Open (creating the tables if needed) the database at ``url``, an SQLite path or a SQLAlchemy URL, and
    return a session factory; its engine is ``factory.kw["bind"]``.

    SQLite connections get ``journal_mode=WAL``, ``synchronous=FULL``, a 30 s ``busy_timeout`` and foreign
    keys; a session from ``writing(factory)`` begins with ``BEGIN IMMEDIATE`` (the write lock is taken at the
    start, so a transaction never has to upgrade a stale read snapshot, which SQLite refuses without waiting).
    ``wal=False`` keeps SQLite's own defaults instead (rollback journal, ``synchronous=FULL``): the
    benchmark's baseline.
    """
    url = database_url(url)
    if url.startswith("sqlite"):
        kw: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kw["poolclass"] = StaticPool
        else:
            kw.update(pool_size=10, max_overflow=30)
        engine = create_engine(url, **kw)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL" if wal else "PRAGMA journal_mode=DELETE")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    _upgrade(engine)
    return sessionmaker(bind=engine, expire_on_commit=False)


def _upgrade(engine) -> None:
    """Bring a database written by an earlier version up to date: add ``nureality_participants.acked`` and
    compute it once from the stored events."""
    from sqlalchemy import inspect, text

    if "acked" in {c["name"] for c in inspect(engine).get_columns(Participant.__tablename__)}:
        return
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {Participant.__tablename__} ADD COLUMN acked INTEGER NOT NULL DEFAULT 0"))
    with Session(engine) as s:
        for p in s.scalars(select(Participant)):
            p.acked = _contiguous(list(s.scalars(select(Event.seq).where(Event.participant_id == p.id)
                                                 .order_by(Event.seq))))
        s.commit()


def writing(factory: sessionmaker[Session]) -> Session:
    """A session for a writing transaction (``BEGIN IMMEDIATE`` on SQLite); use it as a context manager."""
    return factory(execution_options={WRITE_OPTION: True})


# ---------------------------------------------------------------------------------------------------------
# studies and participants


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _has_control(text: str) -> bool:
    """Whether a name or label holds a control character (a tab, a line break, NUL...): such text is refused,
    so that it cannot break a CSV row or hide in a spreadsheet cell."""
    return bool(_CONTROL.search(text))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _new_code(session: Session) -> str:
    for _ in range(100):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if session.scalar(select(Study.id).where(Study.code == code)) is None:
            return code
    raise DiscernError("could not draw an unused study code")  # pragma: no cover - 32**6 codes


def create_study(session: Session, name: str, scenarios: list[str], order: str, repetitions: int,
                 likert: list[str] | None = None, seed: int | None = None) -> Study:
    """Create a study and commit; ``seed`` (drawn at random when None) fixes the random trial orders."""
    likert = [] if likert is None else likert
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or _has_control(name):
        raise DataError(f"study: name must be a non-empty string of at most 200 characters without control "
                        f"characters, got {name!r}")
    if not isinstance(scenarios, list) or not scenarios or not all(isinstance(s, str) and s for s in scenarios):
        raise DataError(f"study: scenarios must be a non-empty list of scenario ids, got {scenarios!r}")
    if len(set(scenarios)) != len(scenarios):
        raise DataError(f"study: scenarios must be distinct, got {scenarios!r}")
    if order not in ORDERS:
        raise DataError(f"study: order must be one of {list(ORDERS)}, got {order!r}")
    if not _is_int(repetitions) or not 1 <= repetitions <= 100:
        raise DataError(f"study: repetitions must be an integer from 1 to 100, got {repetitions!r}")
    if not isinstance(likert, list) or not all(isinstance(t, str) and t.strip() and not _has_control(t)
                                               for t in likert):
        raise DataError(f"study: likert must be a list of non-empty item texts without control characters, "
                        f"got {likert!r}")
    if seed is None:
        seed = secrets.randbits(31)
    if not _is_int(seed) or not 0 <= seed < 2**31:
        raise DataError(f"study: seed must be an integer from 0 to 2**31 - 1, got {seed!r}")
    study = Study(name=name, code=_new_code(session), scenarios=list(scenarios), order=order,
                  repetitions=repetitions, likert=list(likert), seed=seed)
    session.add(study)
    session.commit()
    return study


def get_study(session: Session, study_id: int) -> Study:
    found = session.get(Study, study_id) if _is_int(study_id) else None
    if found is None:
        raise NotFoundError(f"no study with id {study_id!r}")
    return found


def study_by_code(session: Session, code: str) -> Study:
    found = session.scalar(select(Study).where(Study.code == str(code).strip().upper()))
    if found is None:
        raise NotFoundError(f"no study with code {code!r}")
    return found


def participant_by_token(session: Session, token: str) -> Participant | None:
    if not token:
        return None
    found = session.scalar(select(Participant).where(Participant.token == token))
    # compare again in constant time: the index lookup above only finds candidates
    if found is not None and secrets.compare_digest(found.token.encode(), token.encode()):
        return found
    return None


def join(session: Session, study: Study, label: str, token: str | None = None) -> Participant:
    """The participant ``label`` of ``study``, created (with the next join index, a random token and the
    trial plan) on the first call and commits.  A later call returns the participant unchanged only when
    ``token`` is that participant's token; otherwise the label is taken (ConflictError)."""
    if not isinstance(label, str) or not label.strip() or len(label) > 100 or _has_control(label):
        raise DataError(f"join: participant must be a non-empty label of at most 100 characters without control "
                        f"characters, got {label!r}")
    for _attempt in range(5):
        found = session.scalar(select(Participant).where(Participant.study_id == study.id,
                                                         Participant.label == label))
        if found is not None:
            if token and secrets.compare_digest(found.token.encode(), token.encode()):
                return found
            raise ConflictError(f"participant {label!r} has already joined this study from another browser: "
                                "continue there, or ask the experimenter for a new label")
        index = session.scalar(select(func.count()).select_from(Participant)
                               .where(Participant.study_id == study.id))
        plan = trial_plan(study.scenarios, study.order, study.repetitions, index, study.seed)
        p = Participant(study_id=study.id, label=label, index=index, token=secrets.token_urlsafe(24), plan=plan)
        session.add(p)
        try:
            session.commit()
            return p
        except IntegrityError:  # a concurrent join took the label or the index (PostgreSQL); look again
            session.rollback()
    raise DiscernError(f"join: could not register participant {label!r}; try again")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------------
# events


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def validate_event(ev: Any, where: str, n_trials: int, n_likert: int) -> dict:
    """The event as a clean dict, or DataError naming ``where`` and the field."""
    if not isinstance(ev, dict):
        raise DataError(f"{where}: expected an object, got {ev!r}")
    missing = [k for k in ("seq", "trial", "type", "t_ms") if k not in ev]
    if missing:
        raise DataError(f"{where}: missing field {missing[0]!r}")
    seq, trial, typ, t_ms, data = ev["seq"], ev["trial"], ev["type"], ev["t_ms"], ev.get("data", {})
    if not _is_int(seq) or not 1 <= seq <= MAX_SEQ:
        raise DataError(f"{where}.seq: must be an integer from 1 to {MAX_SEQ}, got {seq!r}")
    if not _is_int(trial) or not 0 <= trial < n_trials:
        raise DataError(f"{where}.trial: must be a trial index from 0 to {n_trials - 1}, got {trial!r}")
    if typ not in EVENT_TYPES:
        raise DataError(f"{where}.type: must be one of {list(EVENT_TYPES)}, got {typ!r}")
    if (isinstance(t_ms, bool) or not isinstance(t_ms, (int, float)) or not math.isfinite(t_ms)
            or abs(t_ms) > MAX_T_MS):
        raise DataError(f"{where}.t_ms: must be a finite number of milliseconds within ±{MAX_T_MS:g}, got {t_ms!r}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DataError(f"{where}.data: must be an object, got {data!r}")
    if typ == "decision" and not isinstance(data.get("cross"), bool):
        raise DataError(f"{where}.data.cross: a decision needs cross true or false, got {data.get('cross')!r}")
    if typ == "likert":
        item, value = data.get("item"), data.get("value")
        if not _is_int(item) or not 0 <= item < n_likert:
            raise DataError(f"{where}.data.item: must be a Likert item index from 0 to {n_likert - 1}, "
                            f"got {item!r}")
        if not _is_int(value) or not LIKERT_MIN <= value <= LIKERT_MAX:
            raise DataError(f"{where}.data.value: must be an integer from {LIKERT_MIN} to {LIKERT_MAX}, "
                            f"got {value!r}")
    try:
        size = len(_canonical(data).encode())
    except (TypeError, ValueError, RecursionError) as e:
        raise DataError(f"{where}.data: not JSON-serialisable or not finite ({e})") from None
    if size > MAX_DATA_BYTES:
        raise DataError(f"{where}.data: at most {MAX_DATA_BYTES} bytes as JSON, got {size}")
    return {"seq": seq, "trial": trial, "type": typ, "t_ms": float(t_ms), "data": data}


def _contiguous(seqs: list[int]) -> int:
    expected = 1
    for s in seqs:
        if s == expected:
            expected += 1
        elif s > expected:
            break
    return expected - 1


def acked(session: Session, participant: Participant) -> int:
    """The highest seq n such that events 1..n of the participant are all stored (0 when event 1 is not):
    the stored ``acked`` advanced over the seqs stored above it (only those are read)."""
    return _acked_from(session, participant.id, participant.acked or 0)  # a lower bound: nothing is deleted


def _acked_from(session: Session, participant_id: int, n: int) -> int:
    """``n`` advanced over the participant's seqs stored contiguously above it, a page at a time."""
    while True:
        page = [r[0] for r in session.connection().execute(_ABOVE, {"pid": participant_id, "n": n,
                                                                     "k": MAX_EVENTS_PER_CALL})]
        for seq in page:
            if seq != n + 1:
                return n
            n = seq
        if len(page) < MAX_EVENTS_PER_CALL:
            return n


@dataclass(frozen=True)
class Writer:
    """What storing a participant's events needs to know about them; none of it changes after the join, so
    a server can keep it per token instead of loading the participant and its study for every batch."""

    id: int
    label: str
    n_trials: int
    n_likert: int


def writer(participant: Participant) -> Writer:
    return Writer(participant.id, participant.label, len(participant.plan), len(participant.study.likert))


def validate_batch(who: Writer, events: list[dict]) -> dict[int, dict]:
    """The events of one call, validated and keyed by seq (DataError / ConflictError on a bad batch)."""
    if not isinstance(events, list):
        raise DataError(f"events: expected a list, got {type(events).__name__}")
    if len(events) > MAX_EVENTS_PER_CALL:
        raise DataError(f"events: at most {MAX_EVENTS_PER_CALL} events per call, got {len(events)}")
    batch: dict[int, dict] = {}
    for i, raw in enumerate(events):
        ev = validate_event(raw, f"events[{i}]", who.n_trials, who.n_likert)
        prev = batch.get(ev["seq"])
        if prev is not None and (prev["trial"], prev["type"], prev["t_ms"], _canonical(prev["data"])) != (
                ev["trial"], ev["type"], ev["t_ms"], _canonical(ev["data"])):
            raise ConflictError(f"events[{i}]: seq {ev['seq']} appears twice in this call with different content")
        batch[ev["seq"]] = ev
    return batch


def stage_events(session: Session, who: Writer, batch: dict[int, dict], acked_floor: int | None = None) -> int:
    """Insert the events of ``batch`` not stored yet, in the session's transaction (no commit); return the
    participant's new ``acked``.  Raises ConflictError, having changed nothing, when a seq is stored with
    different content.  ``acked_floor`` is a known lower bound of the participant's ``acked`` (read from the
    database when None).  SQLAlchemy
    Core statements, not ORM objects: the server calls this for every batch of every participant."""
    conn = session.connection()
    events, people = Event.__table__, Participant.__table__
    seqs = sorted(batch)
    stored: dict[int, tuple] = {}
    for start in range(0, len(seqs), 500):
        chunk = seqs[start:start + 500]
        for row in conn.execute(_STORED, {"pid": who.id, "seqs": chunk}):
            stored[row[0]] = tuple(row)
    for seq in seqs:
        old = stored.get(seq)
        ev = batch[seq]
        if old is not None and not (old[1] == ev["trial"] and old[2] == ev["type"] and float(old[3]) == ev["t_ms"]
                                    and _canonical(old[4]) == _canonical(ev["data"])):
            raise ConflictError(f"event seq {seq} of participant {who.label!r} is already stored with different "
                                f"content (trial {old[1]}, type {old[2]!r}, t_ms {old[3]})")
    now = _now()
    new = [{"participant_id": who.id, "received_at": now, **batch[seq]} for seq in seqs if seq not in stored]
    if new:
        conn.execute(events.insert(), new)
    floor = acked_floor if acked_floor is not None else conn.execute(_ACKED, {"pid": who.id}).scalar() or 0
    n = _acked_from(session, who.id, floor)
    if n > floor:
        conn.execute(people.update().where(people.c.id == who.id, people.c.acked < n).values(acked=n))
    return n


def add_events(session: Session, participant: Participant | Writer, events: list[dict]) -> int:
    """Store the events that are not stored yet and commit; return ``acked``.  The batch is stored entirely or
    not at all: a malformed event raises DataError, a stored seq with different content ConflictError."""
    who = participant if isinstance(participant, Writer) else writer(participant)
    batch = validate_batch(who, events)
    for _attempt in range(5):
        try:
            n = stage_events(session, who, batch)
            session.commit()
        except ConflictError:
            session.rollback()
            raise
        except IntegrityError:  # a concurrent call stored some of these seqs first (PostgreSQL); compare again
            session.rollback()
            continue
        if isinstance(participant, Participant):
            session.refresh(participant)
        return n
    raise DiscernError("events: could not store the events; try again")  # pragma: no cover


def _events(session: Session, participant_ids: list[int]) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = {pid: [] for pid in participant_ids}
    if participant_ids:
        for e in session.scalars(select(Event).where(Event.participant_id.in_(participant_ids))
                                 .order_by(Event.participant_id, Event.seq)):
            out[e.participant_id].append(e)
    return out


def progress(session: Session, participant: Participant) -> dict:
    """``{"acked": n, "next_trial": i}``: ``next_trial`` is the first trial without a ``trial_end`` among the
    acknowledged events (events 1..acked), or the number of trials when all are done."""
    evs = _events(session, [participant.id])[participant.id]
    n = _contiguous([e.seq for e in evs])
    done = {e.trial for e in evs if e.seq <= n and e.type == "trial_end"}
    nxt = next((i for i in range(len(participant.plan)) if i not in done), len(participant.plan))
    return {"acked": n, "next_trial": nxt}


def summarise_trial(events: list[Event], n_likert: int) -> dict:
    """Decision time, crossing decision, Likert values and completeness of one trial from its events (in seq
    order); see the module docstring for the rules."""
    starts = [i for i, e in enumerate(events) if e.type == "trial_start"]
    attempt = events[starts[-1]:] if starts else events
    safe = next((e for e in attempt if e.type == "safe"), None)
    cross = None
    likert: list[int | None] = [None] * n_likert
    for e in attempt:
        if e.type == "decision":
            cross = bool(e.data.get("cross"))
        elif e.type == "likert":
            likert[int(e.data["item"])] = int(e.data["value"])
    return {"attempts": len(starts), "decision_time_s": None if safe is None else safe.t_ms / 1000.0,
            "cross": cross, "likert": likert, "complete": any(e.type == "trial_end" for e in attempt)}


def trials(session: Session, study: Study) -> list[dict]:
    """One record per (participant, trial) of the study, participants in join order: ``participant`` (label),
    ``participant_id``, ``trial``, ``block``, ``scenario``, ``attempts``, ``decision_time_s`` (None without a
    ``safe`` event), ``cross`` (None without a decision), ``likert`` (one value or None per study item) and
    ``complete``."""
    participants = list(session.scalars(select(Participant).where(Participant.study_id == study.id)
                                        .order_by(Participant.index)))
    by_p = _events(session, [p.id for p in participants])
    n_sc, n_likert = len(study.scenarios), len(study.likert)
    rows = []
    for p in participants:
        per_trial: dict[int, list[Event]] = {}
        for e in by_p[p.id]:
            per_trial.setdefault(e.trial, []).append(e)
        for i, scenario in enumerate(p.plan):
            rows.append({"participant": p.label, "participant_id": p.id, "trial": i, "block": i // n_sc,
                         "scenario": scenario, **summarise_trial(per_trial.get(i, []), n_likert)})
    return rows


def safe_cell(text: str) -> str:
    """A text cell for a CSV export: a leading ``'`` when it begins like a spreadsheet formula (``=``, ``+``,
    ``-``, ``@``, tab, carriage return), so that it is shown as text and never evaluated."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_columns(study: Study) -> list[str]:
    return (["study", "participant", "trial", "block", "scenario", "attempts", "decision_time_s", "cross"]
            + [f"likert_{i}" for i in range(len(study.likert))] + ["complete"])


def export_csv(session: Session, study: Study) -> str:
    """The ``trials`` records as CSV text (one row per participant and trial; empty cells for missing values,
    ``true``/``false`` for booleans, Likert columns ``likert_<item index>``)."""
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return safe_cell(v)
        return str(v)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(csv_columns(study))
    for r in trials(session, study):
        w.writerow([cell(v) for v in [study.name, r["participant"], r["trial"], r["block"], r["scenario"],
                                      r["attempts"], r["decision_time_s"], r["cross"], *r["likert"],
                                      r["complete"]]])
    return buf.getvalue()
