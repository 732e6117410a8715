"""From decisions to the paper's measurements: the reproduction's test stimuli, every metric of
the decision CSVs, and the tests behind the shape-bias claims (Jaini, Clark & Geirhos 2024,
section 4: shape bias on cue-conflict stimuli, Geirhos et al. 2019)."""

from __future__ import annotations

import numpy as np

from discern.core import derive_seed

PARAMETRIC = ("contrast", "uniform-noise", "low-pass", "high-pass", "phase-scrambling", "rotation")


def evaluation_stimuli(cfg):
    """The test stimuli of a run: cue-conflict, silhouette, edge, the parametric distortions (their
    benchmark conditions; rotation with its 0-degree control) and clean images, all from ``cfg.seed``."""
    from .metrics import included_conditions
    from .stimuli import SHAPES, TEXTURES, Stimulus, all_stimuli, render, to_uint8

    conds = {ds: included_conditions(ds) for ds in PARAMETRIC}
    conds["rotation"] = ["0", "90", "180", "270"]  # the control condition too: rotation is a reported control
    stim = all_stimuli(cfg.cue_conflict_per_pair, cfg.outline_per_class, cfg.parametric_per_class, cfg.size,
                       derive_seed(cfg.seed, "test-stimuli"), conditions=conds)
    rng = np.random.default_rng(derive_seed(cfg.seed, "clean-test"))
    for k, shape in enumerate(SHAPES):
        for i in range(cfg.clean_per_class):
            name = f"{shape}{i + 1}.png"
            stim.append(Stimulus("clean", shape, "NaN", name, f"clean/{shape}/{name}",
                                 to_uint8(render(shape, TEXTURES[k], cfg.size, rng))))
    return stim


def shape_bias_p(a: dict, b: dict) -> float:
    """One-sided Fisher exact test that ``a``'s shape decisions are a larger share of its cue
    decisions than ``b``'s (the 2 x 2 table of shape / texture decision counts)."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[a["shape"], a["texture"]], [b["shape"], b["texture"]]], alternative="greater")[1])


def cue_decisions(df):
    """Per true cue-conflict trial (shape != texture), sorted by image: ``(image_id, shape, texture)``,
    where ``shape`` / ``texture`` say whether the response named the shape / the texture class."""
    from . import metrics as M

    d = df.sort_values("image_id", kind="mergesort")
    texture = M.texture_categories(d["imagename"])
    shape = d["category"].to_numpy(dtype=object)
    resp = d["object_response"].to_numpy(dtype=object)
    conflict = shape != texture
    return (d["image_id"].to_numpy()[conflict], (resp == shape)[conflict], (resp == texture)[conflict])


def shape_bias_difference(df_a, df_b, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0,
                          chunk: int = 1000) -> dict:
    """Shape bias of ``a`` minus that of ``b`` on the same cue-conflict stimuli, with a paired
    percentile bootstrap over stimuli: each resample draws stimuli with replacement and recomputes
    both shape biases (shape decisions / (shape + texture decisions)) on them.  Resamples where a
    shape bias is undefined (no cue decision) are dropped and counted.  ``p_value`` is the share of
    resamples at or below 0 (one-sided: is ``a`` more shape-biased?)."""
    ia, sa, ta = cue_decisions(df_a)
    ib, sb, tb = cue_decisions(df_b)
    if len(ia) != len(ib) or not np.array_equal(ia, ib):
        raise ValueError("shape_bias_difference: the two classifiers did not see the same cue-conflict stimuli")
    n = len(ia)
    pct = int(round(level * 100))
    out = {"n": n, "level": level, "shape": [int(sa.sum()), int(sb.sum())], "texture": [int(ta.sum()), int(tb.sum())],
           "test": f"paired percentile bootstrap over the {n} cue-conflict stimuli of the shape-bias difference "
                   f"({pct}%, {n_resamples} resamples)"}
    if n == 0 or sa.sum() + ta.sum() == 0 or sb.sum() + tb.sum() == 0:
        return {**out, "difference": float("nan"), "ci": None, "p_value": None, "undefined_resamples": n_resamples}
    est = float(sa.sum() / (sa.sum() + ta.sum()) - sb.sum() / (sb.sum() + tb.sum()))
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, n_resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_resamples - start), n))  # (B, n) stimuli
        SA, TA, SB, TB = (v[idx].sum(1) for v in (sa, ta, sb, tb))
        with np.errstate(invalid="ignore", divide="ignore"):
            diffs.append(SA / (SA + TA) - SB / (SB + TB))
    d = np.concatenate(diffs)
    ok = np.isfinite(d)
    d = d[ok]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(d, [alpha, 1 - alpha]) if d.size else (np.nan, np.nan)
    return {**out, "difference": est, "ci": [float(lo), float(hi)] if d.size else None,
            "p_value": float((d <= 0).mean()) if d.size else None, "undefined_resamples": int((~ok).sum())}


def analyse(frames: dict, names: list[str]) -> dict:
    """Every metric from the decision CSVs: shape bias (overall, per shape), accuracy per dataset and
    condition, OOD accuracy (mean over the distortion and outline sets), pairwise error consistency."""
    from itertools import combinations

    from . import metrics as M

    cue = frames["cue-conflict"]
    shape_bias = {n: M.shape_bias(cue[cue.subj == n]) for n in names}
    per_category = {n: M.shape_bias_by_category(cue[cue.subj == n]) for n in names}
    accuracy = {}
    for ds, df in frames.items():
        for n in names:
            d = df[df.subj == n]
            row = {"all": M.accuracy(d)}
            if ds in PARAMETRIC:
                row.update({c: M.accuracy(g) for c, g in d.groupby("condition", sort=False)})
            accuracy.setdefault(n, {})[ds] = row
    ood_sets = [ds for ds in frames if ds not in ("clean", "cue-conflict")]
    ood = {n: float(np.mean([M.ood_accuracy(frames[ds], ds, [n]) for ds in ood_sets])) for n in names}
    consistency = {}
    for a, b in combinations(names, 2):
        per_ds = {ds: M.pair_metrics(frames[ds], ds, a, b) for ds in frames if ds != "clean"}
        consistency[f"{a} vs {b}"] = {"per_dataset": per_ds, **{k: float(np.mean([v[k] for v in per_ds.values()]))
                                                                 for k in next(iter(per_ds.values()))}}
    return {"shape_bias": shape_bias, "shape_bias_by_category": per_category, "accuracy": accuracy,
            "ood_accuracy": ood, "error_consistency": consistency}
