"""``discern psychophysics evaluate | evaluate-model | humans | stimuli``: parsing and printing; the
work is in :mod:`.evaluate`, :mod:`.model_eval` and :mod:`.stimuli`."""

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
    em = ps.add_parser("evaluate-model",
                       help="classify the real cue-conflict / edge / silhouette stimuli with an ImageNet model "
                            "and compare it with the human subjects")
    em.add_argument("--model", required=True,
                    help="efficientnet-lite0, or a folder: a Hugging Face image classifier (1000 ImageNet labels), "
                         "a timm model (needs timm), or one holding efficientnet-lite0-57934424.pth")
    em.add_argument("--dataset", "--datasets", dest="datasets", nargs="+",
                    default=["cue-conflict", "edge", "silhouette"],
                    help="cue-conflict, edge, silhouette (several, comma-separated or space-separated; default all)")
    em.add_argument("--out", required=True, help="folder for raw-data/<dataset>/*.csv and metrics.json")
    em.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    from discern.core.device import add_device_args

    add_device_args(em, "float32 (the classifier is loaded in this precision)")
    em.add_argument("--limit", type=int, default=None,
                    help="only the first N stimuli of each dataset (categories in turn), compared with the humans "
                         "on those images")
    em.add_argument("--humans", default="auto",
                    help="folder with the human raw-data/<dataset>/ CSVs; 'auto' = the installed model-vs-human "
                         "data when present, 'none' = skip the human comparison")
    em.add_argument("--stimuli", default=None,
                    help="texture-vs-shape folder (holding stimuli/); default: the installed data")
    em.add_argument("--json", action="store_true", help="print the summary as JSON")
    hu = ps.add_parser("humans", help="human-human agreement per dataset on the model-vs-human data")
    hu.add_argument("--raw", default=None, help="raw-data folder (default: the installed model-vs-human data)")
    hu.add_argument("--datasets", default=None, help="comma-separated (default: all 17)")
    hu.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    st = ps.add_parser("stimuli", help="write the shape x texture test sets in the toolbox's layout")
    st.add_argument("--out", required=True, help="output folder, in the toolbox's layout")
    st.add_argument("--size", type=int, default=32, help="image side in pixels")
    st.add_argument("--per-pair", type=int, default=4, help="cue-conflict images per (shape, texture) pair")
    st.add_argument("--per-class", type=int, default=10, help="silhouettes and edges per class")
    st.add_argument("--parametric-per-class", type=int, default=4, help="images per class per distortion condition")
    st.add_argument("--seed", type=int, default=0, help="seed of the generated shapes and textures")


def run_command(args) -> int:
    from .evaluate import evaluate, human_table

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
            from discern.core import atomic_write_text

            atomic_write_text(Path(args.out), text)
        print(text)
        return 0
    if args.psy_command == "evaluate-model":
        from discern.core.device import apply

        from .model_eval import evaluate_model, format_summary

        device, dtype = apply(args, cpu="float32", cuda="float32")
        res = evaluate_model(args.model, args.datasets, args.out, args.batch_size, device, args.limit,
                             args.humans, args.stimuli, dtype=dtype)
        print(json.dumps(res["summary"], indent=2, default=float) if args.json else format_summary(res))
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
