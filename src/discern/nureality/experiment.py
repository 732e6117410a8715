"""The nuReality reproduction with simulated pedestrians (Schmitt et al. 2022 and the companion RA-L
study "Can Cars Gesture?"): every scenario of the library runs through the real study server, over
its HTTP API, exactly as a browser participant's trials would:

1. the study server starts on 127.0.0.1 with an SQLite (WAL) database in the run folder;
2. a researcher creates a study with all ten scenarios (balanced Latin-square order);
3. each simulated pedestrian joins with a code and, trial by trial, posts the events a browser
   posts: ``trial_start``, ``onset``, ``safe`` (the decision time from
   :func:`discern.nureality.pedestrian.simulate`), ``decision``, the post-trial Likert items and
   ``trial_end``, with client sequence numbers, in batches;
4. the trials come back from the admin API and go to :mod:`discern.nureality.analysis`.

The published qualitative finding checked: easing into a stop, or stopping farther away, leads to
quicker decisions to cross than the baseline stop (abstract of the RA-L paper).  The pedestrian
model and every kinematic parameter are our reconstruction (see the scenario provenance fields);
the simulated Likert answers are a documented stand-in, not data.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from discern.core import Run, progress
from discern.core.serving import LocalServer

LIKERT = ("The vehicle's intention was clear to me.", "I felt safe deciding to cross.")


@dataclass
class Config:
    participants: int = 40
    repetitions: int = 1
    order: str = "latin"
    seed: int = 0
    batch: int = 3  # events per POST
    likert: list[str] = field(default_factory=lambda: list(LIKERT))


def quick() -> Config:
    return Config()


def paper() -> Config:
    """60 pedestrians, as in the companion study's talk abstract; two repetitions of each scenario."""
    return Config(participants=60, repetitions=2)


def tiny() -> Config:
    return Config(participants=4)


PRESETS = {"tiny": tiny, "quick": quick, "paper": paper}


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


def run_study(url: str, admin_token: str, cfg: Config, scenario_ids: list[str]) -> dict:
    """Create the study and run every simulated participant through the HTTP API; returns the study id,
    the admin trials and what was sent (decision times per participant and trial)."""
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


def run(cfg: Config, run: Run) -> dict:
    from .analysis import analyze, plot
    from .scenarios import scenario_ids
    from .server import make_app

    ids = scenario_ids()
    token = secrets.token_urlsafe(16)

    def study():
        server = LocalServer(make_app(run.path / "study.sqlite", token))
        try:
            t0 = time.perf_counter()
            out = run_study(server.url, token, cfg, ids)
            out["seconds"] = time.perf_counter() - t0
        finally:
            server.stop()
        (run.path / "trials.csv").write_text(out.pop("csv"))
        return out

    data = run.stage("study", study)
    trials = [t for t in data["trials"] if t["complete"]]
    res = analyze(trials, baseline="baseline", order=ids, seed=cfg.seed)
    run.plots.mkdir(parents=True, exist_ok=True)
    plot(res["summary"], run.plots / "decision_time_by_scenario.png",
         title=f"Simulated pedestrians (n = {cfg.participants}): decision time to 'safe to cross'")
    return _report(cfg, run, data, trials, res)


def _report(cfg: Config, run: Run, data: dict, trials: list[dict], res: dict) -> dict:
    summary = {r["scenario"]: r for r in res["summary"]}
    comp = {r["scenario"]: r for r in res["comparisons"]}
    table = []
    for r in res["summary"]:
        c = comp.get(r["scenario"], {})
        table.append({"scenario": r["scenario"], "trials": r["n_trials"], "never_safe": r["n_never"],
                      "mean_s": r["mean"], "median_s": r["median"],
                      "95%_CI": "–" if r["ci_t"] is None else f"[{r['ci_t'][0]:.2f}, {r['ci_t'][1]:.2f}]",
                      "diff_vs_baseline_s": c.get("mean_diff"), "d_z": c.get("d_z"), "p_holm": c.get("p_t_holm"),
                      "cross_rate": r["cross_rate"]})
    claims = []
    for sid, words in (("early_eased", "easing into a stop"), ("stop_farther", "stopping farther away")):
        c = comp[sid]
        claims.append({
            "claim": f"{words} leads to quicker decisions to cross than the baseline stop",
            "paper": "expressive behaviours such as easing into a full stop or stopping farther away can help "
                     "pedestrians make quicker decisions to cross (RA-L 2022 abstract; no numbers published)",
            "ours": f"{sid}: {summary[sid]['mean']:.2f} s vs baseline {summary['baseline']['mean']:.2f} s, paired "
                    f"difference {c['mean_diff']:+.2f} s (d_z {c['d_z']:.2f}, Holm p {c['p_t_holm']:.2g}, "
                    f"{c['n_pairs']} simulated pedestrians, through the study server)",
            "held": bool(c["mean_diff"] < 0 and c["p_t_holm"] is not None and c["p_t_holm"] < 0.05)})
    result = {"paper": "nureality", "title": "nuReality: simulated pedestrians through the study platform",
              "preset_config": json.loads(json.dumps(cfg.__dict__)), "study": data["study"],
              "trials_stored": len(data["trials"]), "trials_complete": len(trials),
              "seconds_through_server": data["seconds"], "analysis": res, "table": table, "claims": claims,
              "plots": ["plots/decision_time_by_scenario.png"]}
    run.save_results(result)
    return result
