"""Any classifier's decisions, in the model-vs-human raw-data format.

A :class:`Classifier` maps a batch of images to class probabilities (or scores where larger is
more likely); :func:`decide` runs it over a set of stimuli and :func:`write_decisions` writes the
toolbox's CSV (``raw-data/<dataset>/<dataset>_<model>_session-1.csv``, columns ``subj, session,
trial, rt, object_response, category, condition, imagename``), which the toolbox's own plotting
and :func:`discern.psychophysics.metrics.read_trials` both read.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .metrics import COLUMNS


@runtime_checkable
class Classifier(Protocol):
    classes: list[str]

    def predict_proba(self, images) -> np.ndarray:
        """images (N, C, H, W) in [-1, 1] -> (N, len(classes)) scores, larger = more likely."""
        ...


def decision_path(raw_dir, dataset: str, model: str) -> Path:
    """The toolbox's file name: model names use "-" for "_"."""
    return Path(raw_dir) / dataset / f"{dataset}_{model.replace('_', '-')}_session-1.csv"


def write_decisions(raw_dir, dataset: str, model: str, rows: list[dict]) -> Path:
    """rows: dicts with ``object_response``, ``category``, ``condition``, ``imagename`` (in trial order)."""
    path = decision_path(raw_dir, dataset, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, r in enumerate(rows, 1):
            w.writerow([model, 1, i, "NaN", r["object_response"], r["category"], r["condition"], r["imagename"]])
    tmp.replace(path)
    return path


def decide(classifier: Classifier, images, batch_size: int = 64, desc: str | None = None) -> list[str]:
    """The top-1 class name of each image (a progress bar when ``desc`` is given)."""
    from discern.core import progress

    out = []
    starts = range(0, len(images), batch_size)
    for i in (progress(starts, desc=desc) if desc else starts):
        p = np.asarray(classifier.predict_proba(images[i:i + batch_size]))
        if p.ndim != 2 or p.shape[1] != len(classifier.classes):
            raise ValueError(f"predict_proba returned shape {p.shape}, expected (N, {len(classifier.classes)})")
        out.extend(classifier.classes[j] for j in p.argmax(1))
    return out
