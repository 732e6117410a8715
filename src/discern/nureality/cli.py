"""``discern nureality serve | scenarios | analyze``: the study platform from the command line."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from discern.core.errors import DataError, DiscernError


def add_commands(sub) -> None:
    p = sub.add_parser("nureality", help="nuReality: the AV-pedestrian intent study platform")
    ns = p.add_subparsers(dest="nureality_command", required=True)
    sv = ns.add_parser("serve", help="serve the study (scene, participant API, researcher API)")
    sv.add_argument("--db", default="nureality.sqlite", help="SQLite path (WAL) or a SQLAlchemy URL")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only by default)")
    sv.add_argument("--port", type=int, default=8000, help="TCP port")
    sv.add_argument("--admin-token", default=None, help="researcher token (default: $DISCERN_ADMIN_TOKEN, else new)")
    sv.add_argument("--scenarios", default=None, help="a folder of scenario JSON files (default: the library)")
    sc = ns.add_parser("scenarios", help="list, show or validate scenarios")
    sc.add_argument("action", choices=("list", "show", "validate"))
    sc.add_argument("names", nargs="*", help="show: scenario ids; validate: JSON files")
    an = ns.add_parser("analyze", help="decision-time summaries and comparisons against the baseline")
    an.add_argument("trials", help="a trials CSV (the study export) or JSON list of trial records")
    an.add_argument("--baseline", default="baseline", help="the scenario every other one is compared with")
    an.add_argument("--out", default=None, help="a folder for analysis.json and decision_times.png")
    an.add_argument("--simulated", action="store_true",
                    help="the trials come from simulated pedestrians: claims are self-tests (implied when every "
                         "row's study is named simulated-...)")


def run_command(args) -> int:
    cmd = args.nureality_command
    if cmd == "serve":
        return _serve(args)
    if cmd == "scenarios":
        return _scenarios(args)
    if cmd == "analyze":
        return _analyze(args)
    raise DiscernError(f"unknown nureality command {cmd!r}")


def _serve(args) -> int:
    from .server import serve

    token = args.admin_token or os.environ.get("DISCERN_ADMIN_TOKEN")
    if not token:
        token = secrets.token_urlsafe(18)
        print(f"admin token (use as 'Authorization: Bearer ...'): {token}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: participants and the admin API are reachable from the network")
    print(f"nuReality study server on http://{args.host}:{args.port}/ (database {args.db})")
    serve(args.db, token, args.host, args.port, args.scenarios)
    return 0


def _scenarios(args) -> int:
    from .kinematics import braking_times
    from .scenarios import get_scenario, library, load_scenario

    if args.action == "list":
        print(f"{'id':<20} {'yields':<7} {'profile':<8} {'onset m':>8} {'stop m':>7}  title")
        for s in library():
            b = s.braking
            print(f"{s.id:<20} {str(s.yields):<7} {(b.profile if b else '-'):<8} "
                  f"{(f'{b.onset_distance_m:.1f}' if b else '-'):>8} "
                  f"{(f'{s.stop_distance_m:.1f}' if s.stop_distance_m is not None else '-'):>7}  {s.title}")
        return 0
    if not args.names:
        raise DiscernError(f"scenarios {args.action}: name at least one {'id' if args.action == 'show' else 'file'}")
    for name in args.names:
        if args.action == "show":
            s = get_scenario(name)
            print(json.dumps({**s.to_dict(), "braking_times_s": braking_times(s)}, indent=2, default=str))
        else:
            s = load_scenario(Path(name))
            print(f"{name}: valid ({s.id})")
    return 0


def _analyze(args) -> int:
    from .analysis import analyze, decision_claims, is_simulated, plot, read_trials
    from .scenarios import scenario_ids

    trials = read_trials(Path(args.trials))
    seen = list(dict.fromkeys(t.get("scenario") for t in trials))
    order = [i for i in scenario_ids() if i in seen] + [i for i in seen if i not in scenario_ids()]
    try:
        res = analyze(trials, baseline=args.baseline, order=order)
    except DataError as e:  # e.g. no trial of the baseline scenario: say which file
        raise DataError(f"{args.trials}: {e}") from None
    if args.out and not any(r["mean"] is not None for r in res["summary"]):  # before anything is written
        raise DataError(f"{args.trials}: no scenario has a decision time, so there is nothing to plot in --out")
    simulated = args.simulated or is_simulated(trials)
    claims = decision_claims(res, simulated=simulated, baseline=args.baseline)
    comp = {c["scenario"]: c for c in res["comparisons"]}
    print(f"{'scenario':<20} {'n':>3} {'never':>5} {'mean s':>7} {'95% CI':>15} {'diff s':>7} {'d_z':>6} {'Holm p':>8}")
    for r in res["summary"]:
        c = comp.get(r["scenario"], {})
        ci = f"[{r['ci_t'][0]:.2f}, {r['ci_t'][1]:.2f}]" if r["ci_t"] else "-"
        mean = f"{r['mean']:.3f}" if r["mean"] is not None else "-"
        diff = f"{c['mean_diff']:+.3f}" if c.get("mean_diff") is not None else "-"
        dz = f"{c['d_z']:.2f}" if c.get("d_z") is not None else "-"
        p = f"{c['p_t_holm']:.2g}" if c.get("p_t_holm") is not None else "-"
        print(f"{r['scenario']:<20} {r['n']:>3} {r['n_never']:>5} {mean:>7} {ci:>15} {diff:>7} {dz:>6} {p:>8}")
    for c in claims:
        print(f"claim: {c.statement}: {c.verdict} ({c.ours})")
    if args.out:
        from discern.core import atomic_write_text

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "analysis.json", json.dumps({**res, "claims": [c.to_dict() for c in claims]}, indent=2))
        plot(res["summary"], out / "decision_times.png")
        print(f"wrote {out / 'analysis.json'} and {out / 'decision_times.png'}")
    return 0
