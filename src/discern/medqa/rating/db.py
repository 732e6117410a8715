"""Storage of a human-evaluation study (SQLAlchemy 2.x): studies, items, raters, assignments and ratings, as in
the Med-PaLM 2 evaluation of long-form answers (Singhal et al. 2023, section 4 and the appendix on human
evaluation): physicians rate answers independently or side by side, lay people independently, each answer by
several raters (triple rating in the paper).

- An item holds one answer (``kind="single"``) or two (``kind="pairwise"``).  Answers and their sources are
  stored in the imported order (``answer_a``/``source_a`` is ``answers[0]``).  For pairwise items
  ``order_swapped`` is drawn at import with a seeded RNG (balanced: half of the batch is swapped); when it is
  set the rater sees ``answer_b`` as "Answer A".  Sources (e.g. ``model:smollm2``, ``physician``) are never
  shown to raters.
- A rater joins with a random invitation token (``secrets.token_urlsafe(24)``, returned once by ``invite``;
  only its SHA-256 is stored) and sees only the items assigned to them.  ``open_session`` exchanges a rater
  for a fresh random session id (stored as its SHA-256, valid ``SESSION_TTL``), what the web app keeps in its
  cookie; ``rater_by_token`` and ``rater_by_session`` find the rater of either.
- Text is checked before it is stored (``DataError``): names and sources at most 200 characters (their
  columns), questions and answers at most ``TEXT_MAX``, no NUL characters or unpaired surrogates anywhere, and
  ``meta`` plain JSON (finite numbers, at most ``JSON_DEPTH`` levels); ids are 1 .. ``MAX_ID`` (32-bit
  columns on PostgreSQL).
- A rating stores the values exactly as the rater chose them (blinded "A"/"B"/"tie" for pairwise);
  ``unblind`` and ``export_csv`` translate a pairwise choice back to the source it refers to.  In the CSV a
  text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so that
  spreadsheets show it as text instead of running it as a formula (numbers stay numbers).

SQLite by default (a path or ``sqlite:///...``); any SQLAlchemy URL works, e.g. ``postgresql+psycopg://...``.
Connection pools: an SQLite file keeps ``POOL_SIZE`` connections and opens more when needed (never runs out);
other databases keep ``POOL_SIZE`` plus at most ``POOL_OVERFLOW`` more, and a request beyond waits up to
``POOL_TIMEOUT`` seconds for one.  Functions that change the database commit their session.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import operator
import random
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.pool import StaticPool

from discern.core.errors import DataError, DiscernError, NotFoundError

from . import schema

CSV_COLUMNS = ("study", "item_id", "rater", "role", "kind", "axis", "value", "shown_value", "source_1", "source_2")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as the start of a formula (OWASP)
MAX_ID = 2**31 - 1  # the Integer columns are 32-bit on PostgreSQL
NAME_MAX = 200  # study and rater names, answer sources: String(200)
TEXT_MAX = 100_000  # a question or an answer (Text columns), in characters
JSON_DEPTH = 20  # nesting levels of an item's meta
SESSION_TTL = timedelta(days=30)
POOL_SIZE, POOL_OVERFLOW, POOL_TIMEOUT = 10, 30, 60.0


class NotAssignedError(DiscernError):
    """A rater acting on an item that is not assigned to them."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    items: Mapped[list[Item]] = relationship(back_populates="study", cascade="all, delete-orphan",
                                             order_by="Item.id")
    raters: Mapped[list[Rater]] = relationship(back_populates="study", cascade="all, delete-orphan",
                                               order_by="Rater.id")


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    answer_a: Mapped[str] = mapped_column(Text)
    answer_b: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_a: Mapped[str] = mapped_column(String(200))
    source_b: Mapped[str | None] = mapped_column(String(200), nullable=True)
    order_swapped: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)

    study: Mapped[Study] = relationship(back_populates="items")

    def shown(self) -> list[tuple[str, str]]:
        """The answers in the order the raters see them, as (text, source) pairs."""
        pairs = [(self.answer_a, self.source_a)]
        if self.kind == "pairwise":
            pairs.append((self.answer_b or "", self.source_b or ""))
            if self.order_swapped:
                pairs.reverse()
        return pairs


class Rater(Base):
    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    # the SHA-256 (hex) of the invitation token; the column keeps its old name ("token"), where databases of
    # earlier versions hold the plain token (``rater_by_token`` replaces it by its hash on first use)
    token_hash: Mapped[str] = mapped_column("token", String(64), unique=True)

    study: Mapped[Study] = relationship(back_populates="raters")


class RaterSession(Base):
    """A signed-in browser: the SHA-256 of its random session id (the cookie), never the id itself."""

    __tablename__ = "rater_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    rater: Mapped[Rater] = relationship()


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("rater_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("rater_id", "item_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    values: Mapped[dict] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    rater: Mapped[Rater] = relationship()
    item: Mapped[Item] = relationship()


def database_url(url: str | Path) -> str:
    """A SQLAlchemy URL: URLs pass through, anything else is a path to an SQLite file."""
    s = str(url)
    if "://" in s:
        return s
    if s == ":memory:":
        return "sqlite://"
    return f"sqlite:///{Path(s).expanduser().resolve()}"


def connect(url: str | Path) -> sessionmaker[Session]:
    """Open (creating the tables if needed) the database at ``url`` and return a session factory; the engine
    is ``factory.kw["bind"]``.  A plain path means an SQLite file.  Pools: see the module's docstring (an
    in-memory SQLite database is one connection shared by all sessions)."""
    url = database_url(url)
    if url.startswith("sqlite"):
        kw: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kw["poolclass"] = StaticPool
        else:  # opening an SQLite connection is cheap: never make a request wait for one
            kw.update(pool_size=POOL_SIZE, max_overflow=-1)
        engine = create_engine(url, **kw)

        @event.listens_for(engine, "connect")
        def _foreign_keys(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                               pool_timeout=POOL_TIMEOUT)
    Base.metadata.create_all(engine)
    return sessionmaker(bind=engine, expire_on_commit=False)


def hash_secret(secret: str) -> str:
    """The SHA-256 (hex) under which a token or session id is stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_text(value: Any, what: str, max_len: int, empty: bool = False) -> str:
    """``value`` as stored: a string of at most ``max_len`` characters (non-blank unless ``empty``), without NUL
    characters (PostgreSQL refuses them) or unpaired surrogates (not UTF-8); DataError otherwise."""
    if not isinstance(value, str):
        raise DataError(f"{what} must be a string, not {type(value).__name__}")
    if not empty and not value.strip():
        raise DataError(f"{what} must be a non-empty string")
    if len(value) > max_len:
        raise DataError(f"{what} is {len(value)} characters long, at most {max_len} are allowed")
    if "\x00" in value:
        raise DataError(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{what} contains an unpaired surrogate (not valid Unicode text)") from None
    return value


def check_json(value: Any, what: str, depth: int = 0) -> None:
    """DataError unless ``value`` is plain JSON that both SQLite and PostgreSQL store: strings as for
    ``check_text``, finite numbers, at most ``JSON_DEPTH`` levels."""
    if depth > JSON_DEPTH:
        raise DataError(f"{what} is nested deeper than {JSON_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            check_text(k, f"{what}: a key", NAME_MAX, empty=True)
            check_json(v, f"{what}.{k}" if k.isidentifier() else f"{what}[{k!r}]", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_json(v, f"{what}[{i}]", depth + 1)
    elif isinstance(value, str):
        check_text(value, what, TEXT_MAX, empty=True)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(f"{what} is not a finite number")
    elif value is not None and not isinstance(value, (bool, int)):
        raise DataError(f"{what}: {type(value).__name__} is not a JSON value")


def _get(session: Session, model: type, obj: Any, what: str):
    if isinstance(obj, model):
        return obj
    ok = isinstance(obj, int) and not isinstance(obj, bool) and 1 <= obj <= MAX_ID
    found = session.get(model, obj) if ok else None
    if found is None:
        raise NotFoundError(f"no {what} with id {obj!r}")
    return found


def get_study(session: Session, study: Study | int) -> Study:
    return _get(session, Study, study, "study")


def get_item(session: Session, item: Item | int) -> Item:
    return _get(session, Item, item, "item")


def get_rater(session: Session, rater: Rater | int) -> Rater:
    return _get(session, Rater, rater, "rater")


def rater_by_token(session: Session, token: str) -> Rater | None:
    """The rater of an invitation token (stored as its SHA-256), or None."""
    if not token or not isinstance(token, str) or len(token) > 256:
        return None
    digest = hash_secret(token)
    found = session.scalars(select(Rater).where(Rater.token_hash == digest)).first()
    if found is None and len(token) != 64:
        # a database of an earlier version stores the plain token: accept it once and keep only its hash
        # (never a 64-character value, which could be a stored hash presented as a token)
        found = session.scalars(select(Rater).where(Rater.token_hash == token)).first()
        if found is not None:
            found.token_hash = digest
            session.commit()
    return found


def open_session(session: Session, rater: Rater | int, ttl: timedelta = SESSION_TTL) -> str:
    """Sign a rater in: a fresh random session id (returned once; its SHA-256 is stored) valid for ``ttl``.
    The rater's expired sessions are deleted."""
    rater = get_rater(session, rater)
    now = _now()
    for old in session.scalars(select(RaterSession).where(RaterSession.rater_id == rater.id)):
        if _aware(old.expires) <= now:
            session.delete(old)
    sid = secrets.token_urlsafe(32)
    session.add(RaterSession(rater_id=rater.id, id_hash=hash_secret(sid), created=now, expires=now + ttl))
    session.commit()
    return sid


def rater_by_session(session: Session, sid: str) -> Rater | None:
    """The rater signed in with session id ``sid``, or None (unknown or expired)."""
    if not sid or not isinstance(sid, str) or len(sid) > 256:
        return None
    found = session.scalars(select(RaterSession).where(RaterSession.id_hash == hash_secret(sid))).first()
    if found is None or _aware(found.expires) <= _now():
        return None
    return found.rater


def close_session(session: Session, sid: str) -> bool:
    """Sign out: delete the session ``sid``; whether there was one."""
    if not sid or not isinstance(sid, str) or len(sid) > 256:
        return False
    found = session.scalars(select(RaterSession).where(RaterSession.id_hash == hash_secret(sid))).first()
    if found is None:
        return False
    session.delete(found)
    session.commit()
    return True


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)  # SQLite gives back naive UTC


def create_study(session: Session, name: str) -> Study:
    if not isinstance(name, str) or not name.strip():
        raise DataError("a study needs a non-empty name")
    study = Study(name=check_text(name.strip(), "the study name", NAME_MAX))
    session.add(study)
    session.commit()
    return study


def _check_record(i: int, rec: Any) -> tuple[str, list[tuple[str, str]], dict]:
    if not isinstance(rec, dict):
        raise DataError(f"item record {i}: expected an object with question and answers")
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"item record {i}: question must be a non-empty string")
    check_text(question, f"item record {i}: question", TEXT_MAX)
    answers = rec.get("answers")
    if not isinstance(answers, list) or len(answers) not in (1, 2):
        raise DataError(f"item record {i}: answers must be a list of one or two answers")
    out = []
    for j, a in enumerate(answers):
        text = a.get("text") if isinstance(a, dict) else None
        source = a.get("source") if isinstance(a, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"item record {i}, answer {j}: text must be a non-empty string")
        if not isinstance(source, str) or not source.strip():
            raise DataError(f"item record {i}, answer {j}: source must be a non-empty string")
        if source.strip() == "tie":
            raise DataError(f"item record {i}, answer {j}: 'tie' is reserved and cannot name a source")
        check_text(text, f"item record {i}, answer {j}: text", TEXT_MAX)
        out.append((text, check_text(source.strip(), f"item record {i}, answer {j}: source", NAME_MAX)))
    if len(out) == 2 and out[0][1] == out[1][1]:
        raise DataError(f"item record {i}: the two answers need different sources, both are {out[0][1]!r}")
    meta = rec.get("meta") or {}
    if not isinstance(meta, dict):
        raise DataError(f"item record {i}: meta must be an object")
    check_json(meta, f"item record {i}: meta")
    return question, out, meta


def add_items(session: Session, study: Study | int, records: Iterable[dict], seed: int = 0) -> list[Item]:
    """Add items to a study.  Each record: ``{"question": str, "answers": [{"text", "source"}, ...],
    "meta": {...}}`` with one answer (a single item) or two (a pairwise item).  The display order of pairwise
    items is randomised with ``random.Random(seed)``, balanced so that half of them are swapped.  All records
    are checked before any is stored."""
    study = get_study(session, study)
    checked = [_check_record(i, r) for i, r in enumerate(list(records))]
    rng = random.Random(seed)
    n_pair = sum(len(a) == 2 for _, a, _ in checked)
    flags = [True] * (n_pair // 2) + [False] * (n_pair // 2) + ([rng.random() < 0.5] if n_pair % 2 else [])
    rng.shuffle(flags)
    swaps = iter(flags)
    items = []
    for question, answers, meta in checked:
        pair = len(answers) == 2
        item = Item(study_id=study.id, question=question, kind="pairwise" if pair else "single",
                    answer_a=answers[0][0], source_a=answers[0][1],
                    answer_b=answers[1][0] if pair else None, source_b=answers[1][1] if pair else None,
                    order_swapped=next(swaps) if pair else False, meta=meta)
        session.add(item)
        items.append(item)
    session.commit()
    return items


def invite(session: Session, study: Study | int, name: str, role: str) -> str:
    """Add a rater (``role`` "physician" or "lay") and return their secret invitation token: the only time it
    is seen, the database keeps its SHA-256."""
    study = get_study(session, study)
    if role not in schema.ROLES:
        raise DataError(f"rater role must be one of {', '.join(schema.ROLES)}, not {role!r}")
    if not isinstance(name, str) or not name.strip():
        raise DataError("a rater needs a non-empty name")
    name = check_text(name.strip(), "the rater name", NAME_MAX)
    if session.scalars(select(Rater).where(Rater.study_id == study.id, Rater.name == name)).first():
        raise DataError(f"study {study.id} already has a rater named {name!r}")
    token = secrets.token_urlsafe(24)
    session.add(Rater(study_id=study.id, name=name, role=role, token_hash=hash_secret(token)))
    session.commit()
    return token


def _assigned(session: Session, study_id: int) -> set[tuple[int, int]]:
    rows = session.execute(select(Assignment.rater_id, Assignment.item_id).join(Item, Item.id == Assignment.item_id)
                           .where(Item.study_id == study_id))
    return {(r, i) for r, i in rows}


def assign(session: Session, study: Study | int, rater: Rater | int, item_ids: Iterable[int]) -> int:
    """Assign items of a study to one of its raters; already assigned pairs are skipped.  Returns the number
    of new assignments."""
    study = get_study(session, study)
    rater = get_rater(session, rater)
    if rater.study_id != study.id:
        raise NotFoundError(f"rater {rater.id} is not part of study {study.id}")
    wanted = []
    for i in item_ids:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise DataError(f"item ids must be integers, not {i!r}")
        wanted.append(operator.index(i))
    wanted = list(dict.fromkeys(wanted))
    valid = [i for i in wanted if 1 <= i <= MAX_ID]
    have = set(session.scalars(select(Item.id).where(Item.study_id == study.id, Item.id.in_(valid))))
    missing = [i for i in wanted if i not in have]
    if missing:
        raise NotFoundError(f"study {study.id} has no items {', '.join(map(str, missing))}")
    done = _assigned(session, study.id)
    new = [i for i in wanted if (rater.id, i) not in done]
    session.add_all(Assignment(rater_id=rater.id, item_id=i) for i in new)
    session.commit()
    return len(new)


def assign_round_robin(session: Session, study: Study | int, per_item: int, role: str | None = None) -> int:
    """Give every item of the study ``per_item`` distinct raters (e.g. 3 for the paper's triple rating), taking
    the least loaded raters first so loads differ by at most one when starting from no assignments.  Items
    that already have raters only get the missing ones.  ``role`` restricts to physicians or lay raters.
    Returns the number of new assignments."""
    study = get_study(session, study)
    q = select(Rater).where(Rater.study_id == study.id).order_by(Rater.id)
    if role is not None:
        if role not in schema.ROLES:
            raise DataError(f"rater role must be one of {', '.join(schema.ROLES)}, not {role!r}")
        q = q.where(Rater.role == role)
    raters = list(session.scalars(q))
    if not isinstance(per_item, int) or isinstance(per_item, bool) or per_item < 1:
        raise DataError(f"per_item must be a positive integer, not {per_item!r}")
    if per_item > len(raters):
        raise DataError(f"cannot give each item {per_item} raters: study {study.id} has {len(raters)}"
                        + (f" {role} raters" if role else " raters"))
    done = _assigned(session, study.id)
    ids = [r.id for r in raters]
    load = {r: sum(1 for rr, _ in done if rr == r) for r in ids}
    item_ids = list(session.scalars(select(Item.id).where(Item.study_id == study.id).order_by(Item.id)))
    new = []
    for item_id in item_ids:
        have = {r for r in ids if (r, item_id) in done}
        need = per_item - len(have)
        if need <= 0:
            continue
        free = sorted((r for r in ids if r not in have), key=lambda r: (load[r], ids.index(r)))
        for r in free[:need]:
            load[r] += 1
            new.append(Assignment(rater_id=r, item_id=item_id))
    session.add_all(new)
    session.commit()
    return len(new)


def is_assigned(session: Session, rater: Rater | int, item: Item | int) -> bool:
    rid = rater.id if isinstance(rater, Rater) else int(rater)
    iid = item.id if isinstance(item, Item) else int(item)
    q = select(Assignment.id).where(Assignment.rater_id == rid, Assignment.item_id == iid)
    return session.scalars(q).first() is not None


def assigned_items(session: Session, rater: Rater | int) -> list[Item]:
    rid = rater.id if isinstance(rater, Rater) else int(rater)
    q = select(Item).join(Assignment, Assignment.item_id == Item.id).where(Assignment.rater_id == rid)
    return list(session.scalars(q.order_by(Item.id)))


def get_rating(session: Session, rater: Rater | int, item: Item | int, kind: str | None = None) -> Rating | None:
    rater = get_rater(session, rater)
    item = get_item(session, item)
    kind = kind or schema.rating_kind(item.kind, rater.role)
    q = select(Rating).where(Rating.rater_id == rater.id, Rating.item_id == item.id, Rating.kind == kind)
    return session.scalars(q).first()


def submit_rating(session: Session, rater: Rater | int, item: Item | int, values: dict) -> Rating:
    """Store a rater's rating of an assigned item, replacing their earlier rating of it.  The rubric follows
    from the item and the rater (``schema.rating_kind``); ``values`` are checked with ``schema.validate``
    (``ValueError`` when incomplete or invalid).  Pairwise values are the blinded choices "A"/"B"/"tie"."""
    rater = get_rater(session, rater)
    item = get_item(session, item)
    if item.study_id != rater.study_id or not is_assigned(session, rater, item):
        raise NotAssignedError(f"item {item.id} is not assigned to rater {rater.name!r}")
    kind = schema.rating_kind(item.kind, rater.role)
    values = schema.validate(kind, values)
    for attempt in range(2):
        rating = get_rating(session, rater, item, kind)
        if rating is None:
            rating = Rating(rater_id=rater.id, item_id=item.id, kind=kind, values=values)
            session.add(rating)
        else:
            rating.values = values
            rating.updated = _now()
        try:
            session.commit()
            return rating
        except IntegrityError:  # a concurrent first submission won: update it instead
            session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def unblind(item: Item, kind: str, values: dict) -> dict:
    """The values of a rating with pairwise choices translated from the shown labels ("A"/"B") to the
    sources of the chosen answers; "tie" and independent ratings pass unchanged."""
    if kind != "pairwise":
        return dict(values)
    shown = item.shown()
    label = {"A": shown[0][1], "B": shown[1][1], "tie": "tie"}
    return {k: label.get(v, v) for k, v in values.items()}


def study_ratings(session: Session, study: Study | int) -> list[tuple[Rating, Rater, Item]]:
    study = get_study(session, study)
    q = (select(Rating, Rater, Item).join(Rater, Rater.id == Rating.rater_id).join(Item, Item.id == Rating.item_id)
         .where(Item.study_id == study.id).order_by(Item.id, Rater.name, Rating.kind))
    return [tuple(row) for row in session.execute(q)]


def export_rows(session: Session, study: Study | int) -> list[dict]:
    """One row per rating per axis (columns ``CSV_COLUMNS``): ``value`` is the un-blinded value (the chosen
    source or "tie" for pairwise ratings), ``shown_value`` what the rater clicked, ``source_1``/``source_2``
    the item's sources in the imported order."""
    study = get_study(session, study)
    rows = []
    for rating, rater, item in study_ratings(session, study):
        plain = unblind(item, rating.kind, rating.values)
        order = [a.key for a in schema.axes_for(rating.kind)] if rating.kind in schema.AXES else list(plain)
        for axis in order:
            if axis not in rating.values:
                continue
            rows.append({"study": study.name, "item_id": item.id, "rater": rater.name, "role": rater.role,
                         "kind": rating.kind, "axis": axis, "value": plain[axis], "shown_value": rating.values[axis],
                         "source_1": item.source_a, "source_2": item.source_b or ""})
    return rows


def csv_cell(value: Any) -> Any:
    """A value as written to the CSV: text that a spreadsheet would run as a formula (starting with one of
    ``FORMULA_PREFIXES``) gets a leading ``'``; anything else, numbers included, is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export_csv(session: Session, study: Study | int, path_or_file: str | Path | IO[str]) -> int:
    """Write ``export_rows`` as CSV (text cells through ``csv_cell``) to a path or an open text file; returns
    the number of data rows."""
    rows = export_rows(session, study)

    def write(f: IO[str]) -> None:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)

    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "w", newline="", encoding="utf-8") as f:
            write(f)
    else:
        write(path_or_file)
    return len(rows)


def export_csv_text(session: Session, study: Study | int) -> str:
    buf = io.StringIO()
    export_csv(session, study, buf)
    return buf.getvalue()
