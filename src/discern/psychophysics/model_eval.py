"""``discern psychophysics evaluate-model``: an ImageNet classifier on the real model-vs-human
stimuli of Geirhos et al. (ICLR 2019; texture-vs-shape): cue-conflict (1,280 style-transfer
images, shape from the folder, texture from the file name), edge (160) and silhouette (160).

Each image is classified as the toolbox classifies it with a PyTorch model: the model's 1000-way
softmax, then the mean probability over each of the 16 categories' ImageNet classes
(:func:`.imagenet16.decide_16`).  The decisions are written in the toolbox's raw-data format,
``raw-data/<dataset>/<dataset>_<model>_session-1.csv``, with the image's own file name as
``imagename`` (``cat1-airplane1.png``, as the toolbox's model files name it; the human files'
``..._cat1-airplane1.png`` ends in the same name, which is what trials are aligned by).  The metrics
are :func:`.evaluate.evaluate` on those files, against the installed human data.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from discern.core.errors import DataError, DiscernError
from discern.core.files import brief

from .metrics import CATEGORIES

# dataset -> folder under stimuli/ in texture-vs-shape
DATASETS = {"cue-conflict": "style-transfer-preprocessed-512", "edge": "edges", "silhouette": "filled-silhouettes"}
COUNTS = {"cue-conflict": 1280, "edge": 160, "silhouette": 160}


def parse_datasets(values) -> list[str]:
    """``["cue-conflict,edge", "silhouette"]`` -> the datasets, in the order given, each once."""
    out = []
    for v in values:
        for name in str(v).split(","):
            name = name.strip()
            if not name:
                continue
            if name not in DATASETS:
                raise DiscernError(f"unknown dataset {brief(name)} (choose from: {', '.join(DATASETS)})")
            if name not in out:
                out.append(name)
    if not out:
        raise DiscernError(f"no dataset given (choose from: {', '.join(DATASETS)})")
    return out


def stimuli_root(root=None) -> Path:
    """The ``stimuli/`` folder of the texture-vs-shape data (default: the installed registry copy)."""
    if root is None:
        from discern.data.registry import path

        root = path("texture-vs-shape")
    root = Path(root)
    folder = root / "stimuli" if (root / "stimuli").is_dir() else root
    if not folder.is_dir():
        raise DataError(f"{root}: no such stimuli folder")
    return folder


def list_stimuli(dataset: str, root=None, limit: int | None = None) -> list[tuple[Path, str]]:
    """(file, category) of every stimulus of ``dataset``, sorted by category then file name (the
    toolbox's order); with ``limit``, the first ``limit`` of the categories taken in turn (one
    image of each category before a second of any)."""
    folder = stimuli_root(root) / DATASETS[dataset]
    if not folder.is_dir():
        raise DataError(f"{folder}: missing (the texture-vs-shape stimuli of {dataset})")
    by_cat: dict[str, list[Path]] = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        if d.name not in CATEGORIES:
            raise DataError(f"{d}: not one of the 16 categories")
        by_cat[d.name] = sorted(f for f in d.iterdir() if f.suffix.lower() == ".png" and f.is_file())
    files = [(f, c) for c, fs in by_cat.items() for f in fs]
    if not files:
        raise DataError(f"{folder}: no PNG stimuli")
    if limit is not None:
        if limit < 1:
            raise DiscernError("--limit must be at least 1")
        turns, i = [], 0
        while len(turns) < min(limit, len(files)):
            for c, fs in by_cat.items():
                if i < len(fs) and len(turns) < limit:
                    turns.append((fs[i], c))
            i += 1
        files = turns
    return files


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: not a readable image ({type(e).__name__})") from None


def classify(classifier, files: list[Path], batch_size: int = 32, desc: str | None = None) -> list[str]:
    """The 16-class decision for each image file (1000-way softmax -> mean per category -> argmax)."""
    from discern.core import progress

    from .imagenet16 import decide_16

    if batch_size < 1:
        raise DiscernError("--batch-size must be at least 1")
    out: list[str] = []
    starts = range(0, len(files), batch_size)
    for i in (progress(starts, desc=desc) if desc else starts):
        out.extend(decide_16(classifier.probabilities([_open(f) for f in files[i:i + batch_size]])))
    return out


def evaluate_model(model: str, datasets, out, batch_size: int = 32, device: str = "auto", limit: int | None = None,
                   humans: str = "auto", stimuli=None, classifier=None, dtype=None) -> dict:
    """Classify the stimuli of each dataset, write the decision CSVs under ``out/raw-data``, and
    return (and write to ``out/metrics.json``) the metrics of :func:`.evaluate.evaluate` with a
    summary per dataset: accuracy, shape bias, and the mean over human subjects of error
    consistency, observed consistency and accuracy difference.  The classifier runs on ``device`` (auto,
    cpu, cuda, cuda:N or a ``torch.device``) in ``dtype`` (a ``torch.dtype``; None: float32)."""
    from .decisions import write_decisions
    from .evaluate import evaluate
    from .imagenet_models import load_classifier

    datasets = parse_datasets(datasets if isinstance(datasets, (list, tuple)) else [datasets])
    if batch_size < 1:
        raise DiscernError("--batch-size must be at least 1")
    if humans not in ("auto", "none") and not Path(humans).is_dir():
        raise DiscernError(f"--humans {humans}: no such folder (expected model-vs-human's raw-data folder)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DiscernError(f"--out {out}: exists and is not a folder")
    lists = {ds: list_stimuli(ds, stimuli, limit) for ds in datasets}  # fail on missing data before loading
    t0 = time.perf_counter()
    clf = classifier if classifier is not None else load_classifier(model, device, dtype)
    load_s = time.perf_counter() - t0
    raw = Path(out) / "raw-data"
    paths, seconds = [], {}
    for ds, items in lists.items():
        t = time.perf_counter()
        responses = classify(clf, [f for f, _ in items], batch_size, desc=f"{clf.name} {ds}")
        seconds[ds] = round(time.perf_counter() - t, 2)
        rows = [{"object_response": r, "category": c, "condition": "NaN", "imagename": f.name}
                for r, (f, c) in zip(responses, items)]
        try:
            paths.append(write_decisions(raw, ds, clf.name, rows))
        except OSError as e:
            raise DiscernError(f"cannot write the decisions under {raw} ({e.strerror or type(e).__name__})") from None
    metrics = evaluate(paths, humans, subset=limit is not None)
    summary = {}
    for ds in datasets:
        r = metrics[ds][clf.name]
        row = {"images": r["trials"], "accuracy": r["accuracy"]}
        if ds == "cue-conflict":
            row["shape bias"] = r["shape_bias"]["shape-bias"]
        vh = r.get("vs_humans")
        if isinstance(vh, dict):
            for k in ("error consistency", "observed consistency", "accuracy difference", "humans compared"):
                row[k] = vh[k]
            if "images" in vh:
                row["images compared with humans"] = vh["images"]
        elif vh is not None:
            row["vs humans"] = vh
        elif humans != "none":
            row["vs humans"] = ("not compared: no human data for this dataset "
                                "(install it with: discern data fetch model-vs-human)")
        summary[ds] = row
    result = {"model": clf.name, "source": str(model), "datasets": datasets, "limit": limit,
              "summary": summary, "metrics": metrics, "decisions": [str(p) for p in paths],
              "seconds": {"load": round(load_s, 2), **seconds}}
    from discern.core import atomic_write_text

    atomic_write_text(Path(out) / "metrics.json", json.dumps(result, indent=2, default=float))
    return result


def format_summary(result: dict) -> str:
    """The summary as a text table."""
    lines = [f"model {result['model']} ({result['source']}); decisions in {Path(result['decisions'][0]).parents[1]}",
             f"{'dataset':13s} {'images':>6s} {'accuracy':>8s} {'shape bias':>10s} {'error cons.':>11s} "
             f"{'obs. cons.':>10s} {'humans':>6s}"]
    for ds, r in result["summary"].items():
        def num(k, w):
            v = r.get(k)
            return f"{v:{w}.3f}" if isinstance(v, float) else f"{'-':>{w}s}"

        lines.append(f"{ds:13s} {r['images']:6d} {num('accuracy', 8)} {num('shape bias', 10)} "
                     f"{num('error consistency', 11)} {num('observed consistency', 10)} "
                     f"{r.get('humans compared', '-')!s:>6s}")
        if "vs humans" in r:
            lines.append(f"  {r['vs humans']}")
        if "images compared with humans" in r:
            lines.append(f"  (compared with the humans on {r['images compared with humans']} images)")
    return "\n".join(lines)
