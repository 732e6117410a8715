"""The nuReality reproduction with simulated pedestrians (Schmitt et al. 2022 and the companion RA-L
study "Can Cars Gesture?"): every scenario of the library runs through the real study server, over its
HTTP API, exactly as a browser participant's trials would (:mod:`discern.nureality.study`), and the
trials that come back go to :mod:`discern.nureality.analysis`.

The published qualitative finding checked: easing into a stop, or stopping farther away, leads to
quicker decisions to cross than the baseline stop (abstract of the RA-L paper).  The pedestrians are our
decision model with parameters set by hand (:mod:`discern.nureality.pedestrian`), so the claims are
``self-test``: they show that the platform measures and analyses what the study measured, never that
people behave this way.  Every kinematic parameter is our reconstruction (see the scenario provenance
fields); the simulated Likert answers are a documented stand-in, not data.
"""

from __future__ import annotations

import json

from discern.core import Result, Run

from .config import LIKERT, PRESETS, Config  # noqa: F401  (old imports: experiment.Config, PRESETS)
from .study import run_study, simulated_likert, trial_events  # noqa: F401  (old imports)


def run(cfg: Config, run: Run) -> Result:
    from .analysis import analyze, decision_claims, plot
    from .scenarios import scenario_ids
    from .study import simulate_through_server

    ids = scenario_ids()

    def study():
        out = simulate_through_server(cfg, run.path / "study.sqlite", ids)
        (run.path / "trials.csv").write_text(out.pop("csv"))
        return out

    data = run.stage("study", study)
    trials = [t for t in data["trials"] if t["complete"]]
    res = analyze(trials, baseline="baseline", order=ids, seed=cfg.seed)
    run.plots.mkdir(parents=True, exist_ok=True)
    plot(res["summary"], run.plots / "decision_time_by_scenario.png",
         title=f"Simulated pedestrians (n = {cfg.participants}): decision time to 'safe to cross'")
    comp = {r["scenario"]: r for r in res["comparisons"]}
    table = []
    for r in res["summary"]:
        c = comp.get(r["scenario"], {})
        table.append({"scenario": r["scenario"], "trials": r["n_trials"], "never_safe": r["n_never"],
                      "mean_s": r["mean"], "median_s": r["median"],
                      "95%_CI": "–" if r["ci_t"] is None else f"[{r['ci_t'][0]:.2f}, {r['ci_t'][1]:.2f}]",
                      "diff_vs_baseline_s": c.get("mean_diff"), "d_z": c.get("d_z"), "p_holm": c.get("p_t_holm"),
                      "cross_rate": r["cross_rate"]})
    result = Result(
        paper="nureality", title="nuReality: simulated pedestrians through the study platform",
        claims=decision_claims(res, simulated=True, n_participants=cfg.participants, alpha=cfg.alpha),
        plots=["plots/decision_time_by_scenario.png"], table=table,
        details={"preset_config": json.loads(json.dumps(cfg.__dict__)), "study": data["study"],
                 "trials_stored": len(data["trials"]), "trials_complete": len(trials),
                 "seconds_through_server": data["seconds"], "analysis": res})
    run.save_results(result.to_dict())
    return result
