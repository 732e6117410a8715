"""``discern psychophysics evaluate`` and ``discern psychophysics stimuli``."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.errors import DiscernError


def add_commands(sub) -> None:
    pp = sub.add_parser("psychophysics", help="model-vs-human metrics: shape bias, OOD accuracy, error consistency")
    ps = pp.add_subparsers(dest="psy_command", required=True)
    ev = ps.add_parser("evaluate", help="metrics of a classifier's decisions (model-vs-human raw-data CSVs)")
    ev.add_argument("--decisions", required=True, nargs="+",
                    help="decision CSVs (raw-data/<dataset>/<dataset>_<model>_session-1.csv) or folders of them; "
                         "the dataset is the file name's first field")
    ev.add_argument("--humans", default="auto",
                    help="folder with the human raw-data/<dataset>/ CSVs; 'auto' = the installed model-vs-human "
                         "data when present, 'none' = skip the human comparison")
    ev.add_argument("--out", default=None, help="write the metrics as JSON here")
    hu = ps.add_parser("humans", help="human-human agreement per dataset on the model-vs-human data")
    hu.add_argument("--raw", default=None, help="raw-data folder (default: the installed model-vs-human data)")
    hu.add_argument("--datasets", default=None, help="comma-separated (default: all 17)")
    hu.add_argument("--json", action="store_true")
    st = ps.add_parser("stimuli", help="write the shape x texture test sets in the toolbox's layout")
    st.add_argument("--out", required=True)
    st.add_argument("--size", type=int, default=32)
    st.add_argument("--per-pair", type=int, default=4, help="cue-conflict images per (shape, texture) pair")
    st.add_argument("--per-class", type=int, default=10, help="silhouettes and edges per class")
    st.add_argument("--parametric-per-class", type=int, default=4, help="images per class per distortion condition")
    st.add_argument("--seed", type=int, default=0)


def _decision_files(paths) -> dict[str, list[Path]]:
    by_ds: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        files = sorted(p.rglob("*.csv")) if p.is_dir() else [p]
        if not files or not all(f.is_file() for f in files):
            raise DiscernError(f"{p}: no decision CSV found")
        for f in files:
            by_ds.setdefault(f.name.split("_")[0], []).append(f)
    return by_ds


def evaluate(paths, humans="auto") -> dict:
    import pandas as pd

    from . import metrics as M

    human_dir = None
    if humans == "auto":
        from discern.data import registry

        if registry.is_installed("model-vs-human"):
            human_dir = registry.path("model-vs-human") / "raw-data"
    elif humans != "none":
        human_dir = Path(humans)
    out = {}
    for ds, files in sorted(_decision_files(paths).items()):
        try:
            df = M.read_trials(files)
        except ValueError as e:
            raise DiscernError(str(e)) from None
        rep = {}
        for m in sorted(df.subj.unique()):
            d = df[df.subj == m]
            r = {"trials": len(d), "accuracy": M.accuracy(d)}
            if ds in M.DATA_CONDITIONS:
                r["accuracy_by_condition"] = {c: M.accuracy(g) for c, g in d.groupby("condition", sort=False)}
                if M.included_conditions(ds):
                    r["OOD accuracy"] = M.ood_accuracy(d, ds, [m])
            if ds == "cue-conflict":
                r["shape_bias"] = M.shape_bias(d)
                r["shape_bias_by_category"] = M.shape_bias_by_category(d)
            rep[m] = r
        if human_dir is not None and (human_dir / ds).is_dir():
            hdf = M.load_dataset(human_dir, ds)
            hs = M.humans(hdf)
            model_ids = {m: set(df[df.subj == m].image_id) for m in rep}
            human_ids = set(hdf[hdf.subj == hs[0]].image_id) if hs else set()
            for m in rep:
                if model_ids[m] != human_ids:
                    rep[m]["vs_humans"] = "skipped: the decisions are not on the human experiment's images"
                    continue
                # a human subject's own file is compared with the *other* humans, never with itself
                both = pd.concat([hdf[hdf.subj != m], df[df.subj == m]], ignore_index=True)
                try:
                    rep[m]["vs_humans"] = M.versus_humans(both, ds, m)
                except ValueError as e:
                    rep[m]["vs_humans"] = f"skipped: {e}"
        out[ds] = rep
    return out


def human_table(raw=None, datasets=None) -> dict:
    """Per dataset: subjects, pairs, mean pairwise error consistency, observed consistency and
    accuracy difference over the included conditions, and the pooled human OOD accuracy."""
    from . import metrics as M

    if raw is None:
        from discern.data import registry

        raw = registry.path("model-vs-human") / "raw-data"
    return {ds: M.human_consistency(M.load_dataset(raw, ds), ds) for ds in (datasets or M.DEFAULT_DATASETS)}


def run_command(args) -> int:
    if args.psy_command == "humans":
        table = human_table(args.raw, args.datasets.split(",") if args.datasets else None)
        if args.json:
            print(json.dumps(table, indent=2))
        else:
            print(f"{'dataset':20s} {'subj':>4s} {'pairs':>5s} {'kappa':>7s} {'c_obs':>7s} {'acc diff':>9s} {'OOD acc':>8s}")
            for ds, r in table.items():
                print(f"{ds:20s} {r['subjects']:4d} {r['pairs']:5d} {r['error consistency']:7.3f} "
                      f"{r['observed consistency']:7.3f} {r['accuracy difference']:9.4f} {r['OOD accuracy']:8.3f}")
            mean = {k: sum(r[k] for r in table.values()) / len(table)
                    for k in ("error consistency", "observed consistency", "accuracy difference", "OOD accuracy")}
            print(f"{'mean':20s} {'':4s} {'':5s} {mean['error consistency']:7.3f} {mean['observed consistency']:7.3f} "
                  f"{mean['accuracy difference']:9.4f} {mean['OOD accuracy']:8.3f}")
        return 0
    if args.psy_command == "evaluate":
        res = evaluate(args.decisions, args.humans)
        text = json.dumps(res, indent=2, default=float)
        if args.out:
            Path(args.out).write_text(text)
        print(text)
        return 0
    if args.psy_command == "stimuli":
        from .stimuli import all_stimuli, write_stimuli

        rows = write_stimuli(all_stimuli(args.per_pair, args.per_class, args.parametric_per_class, args.size,
                                         args.seed), args.out)
        counts = {}
        for r in rows:
            counts[r["dataset"]] = counts.get(r["dataset"], 0) + 1
        print(json.dumps({"out": args.out, "images": len(rows), "per_dataset": counts}, indent=2))
        return 0
    raise DiscernError(f"unknown psychophysics command {args.psy_command}")
