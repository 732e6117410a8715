"""``discern psychophysics evaluate`` and ``humans``: the model-vs-human metrics of decision CSVs,
against the installed human data where the decisions are on the human experiment's images
(Geirhos et al. 2021's benchmark; a human subject's own file is compared with the other humans)."""

from __future__ import annotations

from pathlib import Path

from discern.core.errors import DiscernError


def decision_files(paths) -> dict[str, list[Path]]:
    """Decision CSVs (files or folders of them) by dataset, the first ``_`` field of the file name."""
    by_ds: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        files = sorted(p.rglob("*.csv")) if p.is_dir() else [p]
        if not files or not all(f.is_file() for f in files):
            raise DiscernError(f"{p}: no decision CSV found")
        for f in files:
            by_ds.setdefault(f.name.split("_")[0], []).append(f)
    return by_ds


def evaluate(paths, humans="auto", subset: bool = False) -> dict:
    """Per dataset and decision maker: trials, accuracy (per condition, OOD), shape bias on
    cue-conflict, and ``vs_humans`` (the benchmark metrics against every other human subject).
    ``humans``: a raw-data folder, "auto" (the installed model-vs-human data) or "none".
    ``subset``: decisions on only some of the human experiment's images are compared with the
    humans' trials on those images (``vs_humans`` then says how many images, ``images``)."""
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
    for ds, files in sorted(decision_files(paths).items()):
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
                ids = model_ids[m]
                partial = ids != human_ids
                if partial and not (subset and ids and ids <= human_ids):
                    rep[m]["vs_humans"] = "skipped: the decisions are not on the human experiment's images"
                    continue
                h = hdf[hdf.image_id.isin(ids)] if partial else hdf
                # a human subject's own file is compared with the *other* humans, never with itself
                both = pd.concat([h[h.subj != m], df[df.subj == m]], ignore_index=True)
                try:
                    rep[m]["vs_humans"] = M.versus_humans(both, ds, m)
                except ValueError as e:
                    rep[m]["vs_humans"] = f"skipped: {e}"
                    continue
                if partial:
                    rep[m]["vs_humans"]["images"] = f"{len(ids)} of {len(human_ids)}"
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
