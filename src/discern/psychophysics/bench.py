"""Benchmark: the human-human table of the model-vs-human data (every pair of subjects, each
metric averaged over the included conditions, per dataset) and every subject's cue-conflict
shape bias, computed three ways on the same decision files in one process:

- ours: :func:`metrics.human_consistency` (one correctness matrix per condition, all pairs by
  matrix products) and :func:`metrics.shape_bias`;
- pair at a time: :func:`metrics.pair_metrics` for each pair, which filters, aligns and compares
  two observers with pandas as the toolbox's ``ErrorConsistency`` does;
- per trial: a straightforward Python loop over the trials (``itertuples``) that builds, per
  subject and condition, a dictionary image -> correct, then loops over pairs and images.

Reading the CSVs is not timed (the same DataFrames serve all three).  Ratios are the other way's
time over ours; the details give the largest disagreement between the three (0 when the numbers
are identical).
"""

from __future__ import annotations

import time
from itertools import combinations

import numpy as np


def _per_trial(frames: dict) -> dict:
    """The same numbers from plain loops over the trials."""
    from .metrics import included_conditions, is_human

    table, biases = {}, {}
    for ds, df in frames.items():
        conds = included_conditions(ds)
        correct: dict[tuple, dict[str, bool]] = {}
        for r in df.itertuples(index=False):
            if not is_human(r.subj) or (conds is not None and r.condition not in conds):
                continue
            correct.setdefault((r.condition if conds is not None else "", r.subj), {})[r.image_id] = \
                r.object_response == r.category
            if ds == "cue-conflict":
                last = r.imagename.split("_")[-1].split(".")[0].split("-")[-1]
                texture = "".join(ch for ch in last if not ch.isdigit())
                if texture != r.category:
                    c = biases.setdefault(r.subj, [0, 0])
                    c[0] += r.object_response == r.category
                    c[1] += r.object_response == texture
        subjects = sorted({s for _, s in correct})
        pair_rows = []
        for a, b in combinations(subjects, 2):
            rows = []
            for cond in sorted({c for c, _ in correct}):
                ca, cb = correct.get((cond, a)), correct.get((cond, b))
                if not ca or not cb:
                    continue
                p1, p2 = sum(ca.values()) / len(ca), sum(cb.values()) / len(cb)
                observed = sum(ca[k] == cb[k] for k in ca) / len(ca)
                expected = p1 * p2 + (1 - p1) * (1 - p2)
                rows.append((np.square(p1 - p2), observed,
                             1.0 if observed == 1.0 else (observed - expected) / (1 - expected)))
            pair_rows.append([float(np.mean([r[k] for r in rows])) for k in range(3)])
        table[ds] = [float(np.mean([p[k] for p in pair_rows])) for k in range(3)]
    return {"table": table, "shape_bias": {s: c[0] / (c[0] + c[1]) for s, c in biases.items()}}


def _pair_at_a_time(frames: dict) -> dict:
    from . import metrics as M

    table = {}
    for ds, df in frames.items():
        pairs = [M.pair_metrics(df, ds, a, b) for a, b in combinations(M.humans(df), 2)]
        table[ds] = [float(np.mean([p[k] for p in pairs])) for k in
                     ("accuracy difference", "observed consistency", "error consistency")]
    cue = frames["cue-conflict"]
    return {"table": table, "shape_bias": {s: M.shape_bias(cue[cue.subj == s])["shape-bias"] for s in M.humans(cue)}}


def _ours(frames: dict) -> dict:
    from . import metrics as M

    table = {}
    for ds, df in frames.items():
        r = M.human_consistency(df, ds)
        table[ds] = [r["accuracy difference"], r["observed consistency"], r["error consistency"]]
    cue = frames["cue-conflict"]
    return {"table": table, "shape_bias": {s: M.shape_bias(cue[cue.subj == s])["shape-bias"] for s in M.humans(cue)}}


def _disagreement(x: dict, y: dict) -> float:
    worst = max(abs(a - b) for ds in x["table"] for a, b in zip(x["table"][ds], y["table"][ds]))
    return float(max(worst, max(abs(x["shape_bias"][s] - y["shape_bias"][s]) for s in x["shape_bias"])))


def bench(quick: bool = False) -> dict:
    from discern.data import registry

    from . import metrics as M

    raw = registry.path("model-vs-human") / "raw-data"
    datasets = ("cue-conflict", "edge", "silhouette", "contrast") if quick else M.DEFAULT_DATASETS
    frames = {ds: M.load_dataset(raw, ds) for ds in datasets}
    seconds, outs = {}, {}
    for name, fn in (("ours", _ours), ("pair_at_a_time", _pair_at_a_time), ("per_trial", _per_trial)):
        t0 = time.perf_counter()
        outs[name] = fn(frames)
        seconds[name] = time.perf_counter() - t0
    trials = int(sum(len(df) for df in frames.values()))
    pairs = int(sum(len(M.humans(df)) * (len(M.humans(df)) - 1) // 2 for df in frames.values()))
    return {
        "bench": "psychophysics",
        "ratios": {"human_table_speed_vs_pair_at_a_time": seconds["pair_at_a_time"] / seconds["ours"],
                   "human_table_speed_vs_per_trial_loops": seconds["per_trial"] / seconds["ours"]},
        "goals": {},
        "details": {"datasets": list(datasets), "trials": trials, "human_pairs": pairs,
                    "seconds": seconds,
                    "max_abs_difference_vs_pair_at_a_time": _disagreement(outs["ours"], outs["pair_at_a_time"]),
                    "max_abs_difference_vs_per_trial_loops": _disagreement(outs["ours"], outs["per_trial"])},
    }
