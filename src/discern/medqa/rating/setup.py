"""Setting up a rating study from a long-form answers file, and finding studies (what ``discern medqa
rate-setup`` and ``stats`` do; the command line only parses and prints).

The paper has each answer rated by three physicians (Singhal et al. 2023, section 4); ``per_item`` raters
of each role are assigned per item, the least loaded first, capped at the raters invited.  Lay raters
rate single answers only.  Needs the ``rating`` extra (SQLAlchemy).
"""

from __future__ import annotations

from pathlib import Path

from discern.core.errors import DiscernError

from . import db


def open_existing(url: str):
    """A sessionmaker for a database that must already exist (a plain path that is not a file is a mistake)."""
    if "://" not in str(url) and url != ":memory:" and not Path(url).expanduser().is_file():
        raise DiscernError(f"{url}: no such database (create one with 'discern medqa rate-setup')")
    return db.connect(url)


def shown_url(url: str) -> str:
    """The database URL with any password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(db.database_url(url)).render_as_string(hide_password=True)


def find_study(session, spec: str):
    """A study by id (digits) or by its unique name."""
    from sqlalchemy import select

    spec = spec.strip()
    if spec.isdigit():
        return db.get_study(session, int(spec))
    found = list(session.scalars(select(db.Study).where(db.Study.name == spec).order_by(db.Study.id)))
    if len(found) > 1:
        raise DiscernError(f"{len(found)} studies are named {spec!r} (ids {', '.join(str(x.id) for x in found)}); "
                           "give the id")
    if not found:
        names = [f"{x.id} {x.name!r}" for x in session.scalars(select(db.Study).order_by(db.Study.id))]
        raise DiscernError(f"no study named {spec!r} (studies: {', '.join(names) or 'none'})")
    return found[0]


def round_robin(session, study, rater_ids: list[int], item_ids: list[int], k: int) -> int:
    """Give each item ``k`` distinct raters, the least loaded first (ties: the earlier rater)."""
    load = dict.fromkeys(rater_ids, 0)
    plan: dict[int, list[int]] = {r: [] for r in rater_ids}
    for item in item_ids:
        for r in sorted(rater_ids, key=lambda r: (load[r], rater_ids.index(r)))[:k]:
            load[r] += 1
            plan[r].append(item)
    return sum(db.assign(session, study, r, ids) for r, ids in plan.items() if ids)


def create_study(url: str, name: str, records: list[dict], physicians: list[str], lay: list[str], per_item: int,
                 seed: int = 0) -> dict:
    """Create the study ``name`` with the items ``records`` (``longform.rating_records``), invite the raters
    and assign ``per_item`` raters of each role to each item; on any error nothing is left behind.

    Returns ``{"study": {"id", "name"}, "n_pairwise", "n_single", "per_item": {"physician", "lay"},
    "raters": [{"name", "role", "token", "items"}]}``."""
    both = sorted(set(physicians) & set(lay))
    if both:
        raise DiscernError(f"{', '.join(both)}: named both as physician and as lay rater")
    if per_item < 1:
        raise DiscernError(f"--per-item must be positive, not {per_item}")
    n_pair = sum(len(r["answers"]) == 2 for r in records)
    n_single = len(records) - n_pair
    if lay and not n_single:
        raise DiscernError("--lay: lay raters rate single answers only, and every answer here has a reference "
                           "(all items are pairwise)")
    k_phys, k_lay = min(per_item, len(physicians)), min(per_item, len(lay))
    from sqlalchemy import select

    sessionmaker = db.connect(url)
    with sessionmaker() as s:
        same = list(s.scalars(select(db.Study.id).where(db.Study.name == name.strip())))
        if same:
            raise DiscernError(f"a study named {name.strip()!r} already exists (id {same[0]}); choose another name")
        study = db.create_study(s, name)
        try:
            items = db.add_items(s, study, records, seed=seed)
            tokens = [(n, "physician", db.invite(s, study, n, "physician")) for n in physicians]
            tokens += [(n, "lay", db.invite(s, study, n, "lay")) for n in lay]
            if physicians:
                db.assign_round_robin(s, study, k_phys, role="physician")
            if lay:
                lay_ids = [db.rater_by_token(s, t).id for _, role, t in tokens if role == "lay"]
                round_robin(s, study, lay_ids, [i.id for i in items if i.kind == "single"], k_lay)
        except BaseException:
            s.rollback()
            s.delete(study)
            s.commit()
            raise
        raters = [{"name": n, "role": role, "token": t, "items": len(db.assigned_items(s, db.rater_by_token(s, t)))}
                  for n, role, t in tokens]
        return {"study": {"id": study.id, "name": study.name}, "n_items": len(items), "n_pairwise": n_pair,
                "n_single": n_single, "per_item": {"physician": k_phys, "lay": k_lay}, "raters": raters}
