"""The model-vs-human metrics (Geirhos et al. 2021, toolbox ``modelvshuman``), re-implemented on
pandas 2+ (the toolbox itself needs pandas < 2).

Every trial is a row ``subj, session, trial, rt, object_response, category, condition, imagename``
(the toolbox's raw-data CSV).  Definitions, as in the toolbox:

- **16-class accuracy**: fraction of rows with ``object_response == category`` (a human "na" is wrong).
- **Accuracy difference** of two observers: ``(acc1 - acc2) ** 2``.
- **Error consistency** (Geirhos, Meding & Wichmann 2020): trials aligned by short image name;
  ``c_obs`` = fraction of trials both observers get right or both get wrong; ``c_exp = p1 p2 +
  (1 - p1)(1 - p2)``; ``kappa = (c_obs - c_exp) / (1 - c_exp)``, and 1 when ``c_obs == 1``.
- **Shape bias** (Geirhos et al. 2019) on cue-conflict trials: the texture class is parsed from the
  file name (``..._dog10-bird2.png`` -> ``bird``), trials whose shape equals their texture are
  dropped, responses matching neither cue are ignored:
  ``shape_bias = #shape / (#shape + #texture)``.
- **Benchmark** (``plotting/plot.py``): control conditions and conditions with mean human accuracy
  below 0.2 are excluded; each metric is computed per dataset x condition x (model, human) pair and
  averaged over conditions, then humans, then datasets.  The human row uses every human-human pair
  once.  **OOD accuracy** pools a decision maker's trials over the included conditions of a dataset
  and averages the accuracies over datasets.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from discern.core.errors import DataError
from discern.core.files import brief

HUMAN_PREFIX = "subject-"
CATEGORIES = ("airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "clock", "dog",
              "elephant", "keyboard", "knife", "oven", "truck")  # sorted, as the toolbox orders them
COLUMNS = ("subj", "session", "trial", "rt", "object_response", "category", "condition", "imagename")

NOISE_DATASETS = ("colour", "contrast", "high-pass", "low-pass", "phase-scrambling", "power-equalisation",
                  "false-colour", "rotation", "eidolonI", "eidolonII", "eidolonIII", "uniform-noise")
NONPARAMETRIC_DATASETS = ("edge", "silhouette", "cue-conflict", "sketch", "stylized")
DEFAULT_DATASETS = ("edge", "silhouette", "cue-conflict") + NOISE_DATASETS + ("sketch", "stylized")
ERROR_CONSISTENCY_MATRIX_DATASETS = ("cue-conflict", "edge", "silhouette", "sketch", "stylized")

# the conditions of each parametric dataset, as strings after the toolbox's pandas round trip
DATA_CONDITIONS = {
    "colour": ["cr", "bw"],
    "contrast": ["c100", "c50", "c30", "c15", "c10", "c05", "c03", "c01"],
    "high-pass": ["inf", "3.0", "1.5", "1.0", "0.7", "0.55", "0.45", "0.4"],
    "low-pass": ["0", "1", "3", "5", "7", "10", "15", "40"],
    "phase-scrambling": ["0", "30", "60", "90", "120", "150", "180"],
    "power-equalisation": ["0", "pow"],
    "false-colour": ["True", "False"],
    "rotation": ["0", "90", "180", "270"],
    "eidolonI": [f"{r}-10-10" for r in (1, 2, 4, 8, 16, 32, 64, 128)],
    "eidolonII": [f"{r}-3-10" for r in (1, 2, 4, 8, 16, 32, 64, 128)],
    "eidolonIII": [f"{r}-0-10" for r in (1, 2, 4, 8, 16, 32, 64, 128)],
    "uniform-noise": ["0.0", "0.03", "0.05", "0.1", "0.2", "0.35", "0.6", "0.9"],
}
# control conditions, and conditions where humans are below 20% accuracy, leave the benchmark
EXCLUDE_CONDITIONS = {
    "colour": ["cr"],
    "contrast": ["c100", "c03", "c01"],
    "high-pass": ["inf", "0.55", "0.45", "0.4"],
    "low-pass": ["0", "15", "40"],
    "phase-scrambling": ["0", "150", "180"],
    "power-equalisation": ["0"],
    "false-colour": ["True"],
    "rotation": ["0"],
    "eidolonI": ["1-10-10", "64-10-10", "128-10-10"],
    "eidolonII": ["1-3-10", "32-3-10", "64-3-10", "128-3-10"],
    "eidolonIII": ["1-0-10", "16-0-10", "32-0-10", "64-0-10", "128-0-10"],
    "uniform-noise": ["0.0", "0.6", "0.9"],
}


def included_conditions(dataset: str, conditions=None) -> list[str] | None:
    """The benchmark's conditions of ``dataset`` (None for a dataset without conditions)."""
    if dataset not in DATA_CONDITIONS:
        return None
    conds = DATA_CONDITIONS[dataset] if conditions is None else list(conditions)
    return [c for c in conds if c not in EXCLUDE_CONDITIONS.get(dataset, [])]


def short_imagename(name: str) -> str:
    """The image's identity shared by every observer: the last ``_`` field, or ``WNID_number`` for
    ImageNet names (``0000_cl_s01_bw_boat_40_n02951358_5952.JPEG`` -> ``n02951358_5952.JPEG``)."""
    parts = name.split("_")
    if len(parts) == 1:
        return name
    if parts[-2].startswith("n0"):
        return parts[-2] + "_" + parts[-1]
    return parts[-1]


def texture_category(name: str) -> str:
    """The texture cue of a cue-conflict file name: ``..._dog10-bird2.png`` -> ``bird``."""
    last = name.split("_")[-1].split(".")[0].split("-")[-1]
    return "".join(ch for ch in last if not ch.isdigit())


def texture_categories(names) -> np.ndarray:
    """:func:`texture_category` of every name (an object array; faster than pandas' string methods,
    which loop in Python too)."""
    return np.array([texture_category(n) for n in names], dtype=object)


def _parse_like_pandas(values: list) -> list[str]:
    """Condition strings as the toolbox sees them: pandas infers the column's type from the CSV text
    and the toolbox casts it back to ``str`` ("3" -> "3.0" in a float column, "true" -> "True")."""
    raw = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip() for v in values]
    missing = {"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None", "n/a", "#N/A", "-NaN", "-nan"}
    present = [v for v in raw if v not in missing]

    def is_int(s):
        try:
            int(s)
            return True
        except ValueError:
            return False

    def is_float(s):
        try:
            float(s)
            return True
        except ValueError:
            return False

    if present and all(v.lower() in ("true", "false") for v in present) and len(present) == len(raw):
        return ["True" if v.lower() == "true" else "False" for v in raw]
    if all(is_int(v) for v in present) and len(present) == len(raw):
        return [str(int(v)) for v in raw]
    if all(is_float(v) for v in present):
        return ["nan" if v in missing else str(float(v)) for v in raw]
    return ["nan" if v in missing else v for v in raw]


def read_trials(paths):
    """Read toolbox CSVs (one file, or a list) into one DataFrame: lower-case columns, conditions as
    the toolbox's strings, ``image_id`` added.  Each file's conditions are typed on their own.

    Every cell is read as text (pandas' ``read_csv(dtype=str, keep_default_na=False)``; blank lines are
    skipped).  A file that is missing, not UTF-8, not CSV, without the toolbox's columns, or with a row of
    another number of fields than its header is a :class:`~discern.core.errors.DataError` naming the file
    (and the line)."""
    import pandas as pd

    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = []
    for p in paths:
        header, rows = _read_csv_rows(Path(p))
        columns = [c.lower() for c in header]
        missing = [c for c in COLUMNS if c not in columns]
        if missing:
            raise DataError(f"{p}: not a model-vs-human decision file (missing columns {missing})")
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise DataError(f"{p}: column {brief(twice[0])} appears twice in the header")
        df = pd.DataFrame(rows, columns=columns, dtype=str) if rows else pd.DataFrame(
            {c: pd.Series(dtype=str) for c in columns})
        df["condition"] = _parse_like_pandas(df["condition"].tolist())
        frames.append(df)
    if not frames:
        raise DataError("no decision CSV to read")
    df = pd.concat(frames, ignore_index=True)
    df["image_id"] = [short_imagename(n) for n in df["imagename"]]
    return df


def _read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and rows of one decision CSV, every row as long as the header."""
    if not path.is_file():
        raise DataError(f"{path}: no such decision CSV")
    header: list[str] | None = None
    rows: list[list[str]] = []
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for row in reader:
                if not row:  # a blank line
                    continue
                if header is None:
                    header = row
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}:{reader.line_num}: expected {len(header)} fields like the header, "
                                    f"got {len(row)}")
                rows.append(row)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:  # a NUL byte, a field longer than csv.field_size_limit(), ...
        line = reader.line_num if reader is not None else 1
        raise DataError(f"{path}:{line}: unreadable CSV ({brief(str(e), 100, quote=False)})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    if header is None:
        raise DataError(f"{path}: empty file (expected a header with the columns {', '.join(COLUMNS)})")
    return header, rows


def load_dataset(raw_dir, dataset: str):
    """All CSVs of ``raw_dir/<dataset>/`` (humans and models), sorted by file name."""
    if not Path(raw_dir).is_dir():
        raise DataError(f"{raw_dir}: no such folder (expected model-vs-human's raw-data folder, with one "
                        "sub-folder of decision CSVs per dataset)")
    files = sorted(Path(raw_dir, dataset).glob("*.csv"))
    if not files:
        raise DataError(f"no decision CSVs in {Path(raw_dir, dataset)}")
    return read_trials(files)


def is_human(subj: str) -> bool:
    return str(subj).startswith(HUMAN_PREFIX)


def humans(df) -> list[str]:
    return sorted(s for s in df["subj"].unique() if is_human(s))


def models(df) -> list[str]:
    return sorted(s for s in df["subj"].unique() if not is_human(s))


def accuracy(df) -> float:
    """16-class accuracy of a set of trials."""
    if len(df) == 0:
        raise ValueError("accuracy of no trials")
    return float((df["object_response"] == df["category"]).mean())


def accuracy_difference(df1, df2, norm=np.square) -> float:
    return float(norm(accuracy(df1) - accuracy(df2)))


def error_consistency(df1, df2) -> dict:
    """Observed, expected and error consistency (Cohen's kappa) of two observers on the same images."""
    if len(df1) == 0 or len(df1) != len(df2):
        raise ValueError(f"error consistency needs two non-empty sets of the same trials ({len(df1)} vs {len(df2)})")
    p1, p2 = accuracy(df1), accuracy(df2)
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    a = df1.sort_values("image_id", kind="mergesort").reset_index(drop=True)
    b = df2.sort_values("image_id", kind="mergesort").reset_index(drop=True)
    if not a["image_id"].equals(b["image_id"]):
        raise ValueError("the two observers did not see the same images")
    observed = float(((a["object_response"] == a["category"]) == (b["object_response"] == b["category"])).mean())
    kappa = 1.0 if observed == 1.0 else (observed - expected) / (1 - expected)
    return {"expected-consistency": expected, "observed-consistency": observed, "error-consistency": kappa}


def shape_bias(df) -> dict:
    """Shape bias of cue-conflict trials (responses matching neither cue are ignored)."""
    texture = texture_categories(df["imagename"])
    shape = df["category"].to_numpy(dtype=object)
    conflict = shape != texture
    resp = df["object_response"].to_numpy(dtype=object)
    n_shape = int((resp[conflict] == shape[conflict]).sum())
    n_texture = int((resp[conflict] == texture[conflict]).sum())
    total = n_shape + n_texture
    return {"shape": n_shape, "texture": n_texture, "conflict_trials": int(conflict.sum()),
            "fraction-correct-shape": n_shape / len(df), "fraction-correct-texture": n_texture / len(df),
            "shape-bias": n_shape / total if total else float("nan")}


def shape_bias_by_category(df) -> dict[str, float]:
    """Shape bias per shape category (the toolbox's per-category plot)."""
    return {cat: shape_bias(g)["shape-bias"] for cat, g in df.groupby("category", sort=True)}


def _condition_subsets(df, dataset: str):
    conds = included_conditions(dataset)
    if conds is None:
        return [(None, df)]
    return [(c, df[df["condition"] == c]) for c in conds]


def pair_metrics(df, dataset: str, a: str, b: str) -> dict:
    """The three pairwise metrics of observers ``a`` and ``b`` on ``dataset``, averaged over conditions."""
    rows = []
    for _, sub in _condition_subsets(df, dataset):
        da, db = sub[sub["subj"] == a], sub[sub["subj"] == b]
        if len(da) == 0 or len(db) == 0:
            continue
        ec = error_consistency(da, db)
        rows.append({"accuracy difference": accuracy_difference(da, db),
                     "observed consistency": ec["observed-consistency"], "error consistency": ec["error-consistency"]})
    if not rows:
        raise ValueError(f"{a} and {b} share no included condition of {dataset}")
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def pairwise_metrics(df, dataset: str, subjects: list[str]) -> dict[tuple[str, str], dict]:
    """:func:`pair_metrics` of every pair of ``subjects`` (each pair once, in ``combinations``
    order), from one correctness matrix per included condition instead of one pair at a time.

    Per condition, every subject's trials are sorted by image (as :func:`error_consistency`
    aligns them) into a (S, n) 0/1 matrix C; then for all pairs at once: accuracies p = C.mean(1),
    observed consistency (C C^T + (1 - C)(1 - C)^T) / n, expected p_i p_j + (1 - p_i)(1 - p_j),
    kappa (1 where observed is 1) and the squared accuracy difference.  The numbers equal the
    pair-at-a-time ones; a pair that did not see the same images raises as there."""
    from itertools import combinations

    subjects = list(subjects)
    d = df[df["subj"].isin(subjects)]
    correct = (d["object_response"] == d["category"]).to_numpy()
    conds = included_conditions(dataset)
    frame = d.assign(_correct=correct, _cond=d["condition"] if conds is not None else "")
    frame = frame.sort_values(["_cond", "subj", "image_id"], kind="mergesort")
    rows: dict[tuple[str, str], list[dict]] = {pair: [] for pair in combinations(subjects, 2)}
    for cond in (conds if conds is not None else [""]):
        sub = frame[frame["_cond"] == cond]
        if len(sub) == 0:
            continue
        groups = {s: g for s, g in sub.groupby("subj", sort=False)}
        present = [s for s in subjects if s in groups]
        ids = {s: groups[s]["image_id"].to_numpy() for s in present}
        for a, b in combinations(present, 2):
            if len(ids[a]) != len(ids[b]):
                raise ValueError(f"error consistency needs two non-empty sets of the same trials "
                                 f"({len(ids[a])} vs {len(ids[b])})")
            if not np.array_equal(ids[a], ids[b]):
                raise ValueError("the two observers did not see the same images")
        if len(present) < 2:
            continue
        C = np.stack([groups[s]["_correct"].to_numpy(dtype=np.float64) for s in present])  # (S, n)
        n = C.shape[1]
        p = C.sum(1) / n
        observed = (C @ C.T + (1 - C) @ (1 - C).T) / n
        expected = p[:, None] * p[None, :] + (1 - p[:, None]) * (1 - p[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            kappa = np.where(observed == 1.0, 1.0, (observed - expected) / (1 - expected))
        index = {s: i for i, s in enumerate(present)}
        for a, b in combinations(present, 2):
            i, j = index[a], index[b]
            key = (a, b) if (a, b) in rows else (b, a)
            rows[key].append({"accuracy difference": float(np.square(p[i] - p[j])),
                              "observed consistency": float(observed[i, j]),
                              "error consistency": float(kappa[i, j])})
    out = {}
    for pair, rs in rows.items():
        if not rs:
            raise ValueError(f"{pair[0]} and {pair[1]} share no included condition of {dataset}")
        out[pair] = {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
    return out


def versus_humans(df, dataset: str, subject: str) -> dict:
    """One decision maker (a model, or a human subject's own file) against every human of ``df``
    other than itself: the pair metrics averaged over those humans, as the benchmark table does
    for a model, its OOD accuracy, and how many humans it was compared with."""
    others = [h for h in humans(df) if h != subject]
    if not others:
        raise ValueError(f"no human other than {subject} to compare with on {dataset}")
    rows = [pair_metrics(df, dataset, subject, h) for h in others]
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["OOD accuracy"] = ood_accuracy(df, dataset, [subject])
    out["humans compared"] = len(others)
    return out


def ood_accuracy(df, dataset: str, subjects: list[str]) -> float:
    """Accuracy of the pooled trials of ``subjects`` over the included conditions of ``dataset``."""
    sub = df[df["subj"].isin(subjects)]
    conds = included_conditions(dataset)
    if conds is not None:
        sub = sub[sub["condition"].isin(conds)]
    return accuracy(sub)


def benchmark(frames: dict) -> dict:
    """The benchmark table: ``frames`` maps dataset -> trials (humans and models).

    Returns {decision maker: {metric: value}} for every model and for "humans"; model metrics are
    averaged over conditions, then humans, then datasets; the human row over conditions, then all
    human pairs (each once), then datasets."""
    per_model: dict[str, dict[str, list]] = {}
    per_human_ds: dict[str, list[dict]] = {}
    for dataset, df in frames.items():
        hs = humans(df)
        for m in models(df):
            rows = [pair_metrics(df, dataset, m, h) for h in hs]
            acc = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            acc["OOD accuracy"] = ood_accuracy(df, dataset, [m])
            for k, v in acc.items():
                per_model.setdefault(m, {}).setdefault(k, []).append(v)
        pairs = list(pairwise_metrics(df, dataset, hs).values()) if len(hs) > 1 else []
        if pairs:
            row = {k: float(np.mean([r[k] for r in pairs])) for k in pairs[0]}
            row["OOD accuracy"] = ood_accuracy(df, dataset, hs)
            per_human_ds[dataset] = row
    table = {m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in per_model.items()}
    if per_human_ds:
        keys = next(iter(per_human_ds.values())).keys()
        table["humans"] = {k: float(np.mean([r[k] for r in per_human_ds.values()])) for k in keys}
    return table


def human_consistency(df, dataset: str) -> dict:
    """Human-human agreement on one dataset: mean over all pairs (each once) of the pair's metrics
    averaged over the included conditions, and the pooled human accuracy."""
    hs = humans(df)
    pairs = list(pairwise_metrics(df, dataset, hs).values()) if len(hs) > 1 else []
    out = {k: float(np.mean([p[k] for p in pairs])) for k in pairs[0]} if pairs else {}
    out.update({"subjects": len(hs), "pairs": len(pairs), "OOD accuracy": ood_accuracy(df, dataset, hs)})
    return out


def most_human_like(table: dict) -> list[tuple[str, float]]:
    """Models ranked by the mean of three ranks: accuracy difference (ascending), observed and error
    consistency (descending); the human row is left out."""
    ms = [m for m in table if m != "humans"]

    def ranks(key, reverse):
        order = sorted(ms, key=lambda m: table[m][key], reverse=reverse)
        return {m: i + 1 for i, m in enumerate(order)}

    a = ranks("accuracy difference", False)
    o = ranks("observed consistency", True)
    e = ranks("error consistency", True)
    return sorted(((m, (a[m] + o[m] + e[m]) / 3) for m in ms), key=lambda x: x[1])
