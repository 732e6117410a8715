"""Simulated pedestrians through the real study server, over its HTTP API, exactly as a browser
participant's trials would go:

1. the study server starts on 127.0.0.1 (``simulate_through_server``) with its database;
2. a researcher creates a study with the scenarios (balanced Latin-square order by default);
3. each simulated pedestrian joins with the code and, trial by trial, posts the events a browser posts:
   ``trial_start``, ``onset``, ``safe`` (the decision time from
   :func:`discern.nureality.pedestrian.simulate`), ``decision``, the post-trial Likert items and
   ``trial_end``, with client sequence numbers, in batches;
4. the trials and the CSV export come back from the admin API.

The pedestrian is our decision model with hand-set parameters (:mod:`discern.nureality.pedestrian`) and
the Likert answers a documented stand-in (:func:`simulated_likert`): this drives and tests the platform;
it is not data about people.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from discern.core import progress


def simulated_likert(decision_time_s: float | None) -> list[int]:
    """A stand-in for the post-trial questionnaire (not data): the sooner the pedestrian judged it safe,
    the clearer the intent and the safer the decision felt; never safe gives 1."""
    if decision_time_s is None:
        return [1, 1]
    v = int(min(7, max(1, round(8 - decision_time_s))))
    return [v, v]


def trial_events(trial: int, decision) -> list[dict]:
    """The events a browser posts for one trial (times in ms since vehicle onset)."""
    ev = [{"trial": trial, "type": "trial_start", "t_ms": -1000.0, "data": {}},
          {"trial": trial, "type": "onset", "t_ms": 0.0, "data": {}}]
    if decision.decision_time_s is not None:
        ev.append({"trial": trial, "type": "safe", "t_ms": 1000.0 * decision.decision_time_s, "data": {}})
    end = 1000.0 * (decision.decision_time_s or 12.0)
    ev.append({"trial": trial, "type": "decision", "t_ms": end + 500, "data": {"cross": bool(decision.cross)}})
    for i, v in enumerate(simulated_likert(decision.decision_time_s)):
        ev.append({"trial": trial, "type": "likert", "t_ms": end + 1000 + 500 * i, "data": {"item": i, "value": v}})
    ev.append({"trial": trial, "type": "trial_end", "t_ms": end + 2500, "data": {}})
    return ev


def run_study(url: str, admin_token: str, cfg, scenario_ids: list[str]) -> dict:
    """Create the study and run every simulated participant (``cfg``: a :class:`discern.nureality.config.Config`)
    through the HTTP API; returns the study, the admin trials, what was sent (decision times per participant
    and trial) and the CSV export."""
    import httpx

    from .pedestrian import simulate
    from .scenarios import get_scenario

    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post("/api/admin/studies", headers=admin,
                      json={"name": f"simulated-{cfg.seed}", "scenarios": scenario_ids, "order": cfg.order,
                            "repetitions": cfg.repetitions, "likert": cfg.likert, "seed": cfg.seed})
        r.raise_for_status()
        study = r.json()
        sent: dict[str, dict[int, float | None]] = {}
        for j in progress(range(cfg.participants), desc="simulated pedestrians"):
            label = f"P{j + 1:02d}"
            joined = http.post("/api/join", json={"code": study["code"], "participant": label}).json()
            auth = {"Authorization": f"Bearer {joined['token']}"}
            events, per_block = [], {}
            for t in joined["trials"]:
                rep = per_block.get(t["scenario"], 0)  # the k-th time this participant sees the scenario
                per_block[t["scenario"]] = rep + 1
                d = simulate(get_scenario(t["scenario"]), cfg.seed * 100003 + j, repetition=rep)
                sent.setdefault(label, {})[t["index"]] = d.decision_time_s
                events += trial_events(t["index"], d)
            for k, e in enumerate(events, 1):
                e["seq"] = k
            for s in range(0, len(events), cfg.batch):
                res = http.post("/api/events", headers=auth, json={"events": events[s:s + cfg.batch]})
                res.raise_for_status()
                if res.json()["acked"] != min(s + cfg.batch, len(events)):
                    raise RuntimeError(f"{label}: the server acknowledged {res.json()['acked']} events")
        trials = http.get(f"/api/admin/studies/{study['id']}/trials", headers=admin).json()
        csv_text = http.get(f"/api/admin/studies/{study['id']}/export.csv", headers=admin).text
    return {"study": study, "trials": trials, "sent": sent, "csv": csv_text}


def simulate_through_server(cfg, database: str | Path, scenario_ids: list[str]) -> dict:
    """Start the study server on 127.0.0.1 over ``database`` (an SQLite path or a SQLAlchemy URL), run
    :func:`run_study` against it and stop it; adds ``seconds`` (wall time through the server)."""
    from discern.core.serving import LocalServer

    from .server import make_app

    token = secrets.token_urlsafe(16)
    server = LocalServer(make_app(database, token))
    try:
        t0 = time.perf_counter()
        out = run_study(server.url, token, cfg, scenario_ids)
        out["seconds"] = time.perf_counter() - t0
    finally:
        server.stop()
    return out
