"""Evaluation output for the strategies: accuracy with intervals, per-sample JSONL in the style of
lm-evaluation-harness, a strategy comparison table, and a contamination check.

- Accuracy intervals: the Wilson score interval and a percentile bootstrap over questions (seeded).
- ``samples_<dataset>_<strategy>.jsonl``: one line per question: ``doc_id``, ``target``, ``resps``
  (the generations), ``filtered_resps`` (the parsed answers), ``prediction``, ``acc``.
- Contamination: a question is flagged when it shares a substring of at least 512 characters with
  a corpus (the overlap rule of the Med-PaLM 2 contamination analysis).  Found exactly: any such
  shared substring contains a whole 256-character corpus block aligned at a multiple of 256, so
  only those blocks are looked up among the question's 256-character windows, then extended.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (mid - half, mid + half)


def accuracy_ci(correct: list[bool], n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    c = np.asarray(correct, dtype=float)
    n = len(c)
    if n == 0:
        raise ValueError("accuracy of no questions")
    rng = np.random.default_rng(seed)
    boots = c[rng.integers(0, n, (n_boot, n))].mean(1)
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    w = wilson(int(c.sum()), n)
    return {"acc": float(c.mean()), "n": n, "bootstrap_ci": [float(lo), float(hi)], "wilson_ci": [w[0], w[1]]}


def write_samples(path, records: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i, r in enumerate(records):
            f.write(json.dumps({"doc_id": i, "target": r["target"], "resps": r.get("generations", []),
                                "filtered_resps": r.get("answers", [r.get("prediction")]),
                                "prediction": r["prediction"], "acc": float(r["correct"]),
                                "question": r["question"]}) + "\n")
    return path


def comparison_table(results: dict) -> str:
    """Markdown: one row per dataset, one column per strategy, accuracy [bootstrap 95% CI]."""
    strategies = list(dict.fromkeys(s for d in results.values() for s in d))  # in the order they were run
    lines = ["| dataset | " + " | ".join(strategies) + " |", "|---|" + "---|" * len(strategies)]
    for ds, row in results.items():
        cells = [f"{100 * row[s]['acc']:.1f} [{100 * row[s]['bootstrap_ci'][0]:.1f}, "
                 f"{100 * row[s]['bootstrap_ci'][1]:.1f}]" if s in row else "–" for s in strategies]
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shares_span(text: str, corpus: str, span: int = 512) -> bool:
    """Whether ``text`` and ``corpus`` share a substring of at least ``span`` characters."""
    if len(text) < span or len(corpus) < span:
        return False
    block = span // 2
    windows: dict[str, list[int]] = {}
    for i in range(len(text) - block + 1):
        windows.setdefault(text[i:i + block], []).append(i)
    for c in range(0, len(corpus) - block + 1, block):
        for i in windows.get(corpus[c:c + block], ()):
            left = 0
            while i - left > 0 and c - left > 0 and text[i - left - 1] == corpus[c - left - 1]:
                left += 1
            right = 0
            while (i + block + right < len(text) and c + block + right < len(corpus)
                   and text[i + block + right] == corpus[c + block + right]):
                right += 1
            if left + block + right >= span:
                return True
    return False


def contaminated(texts: list[str], corpus: str, span: int = 512) -> list[int]:
    """Indices of the texts that share at least ``span`` characters with ``corpus``."""
    return [i for i, t in enumerate(texts) if shares_span(t, corpus, span)]


DATASETS = ("mmlu:anatomy", "mmlu:clinical_knowledge", "mmlu:college_biology", "mmlu:college_medicine",
            "mmlu:medical_genetics", "mmlu:professional_medicine", "pubmedqa", "medqa", "medmcqa")


def load_dataset(name: str, limit: int | None = None, seed: int = 0):
    """(questions, exemplars, is_pubmedqa) for a dataset name; ``limit`` takes a fixed random subset.
    Exemplars: MMLU's 5 dev questions; PubMedQA: the first 3 items, left out of the questions; MedQA: the
    first 5 dev items (questions from test); MedMCQA (questions from dev, as in the paper): the first 5 of
    train.json when it is there, else the first 5 dev items, left out of the questions."""
    import random

    from . import data

    if name.startswith("mmlu:"):
        subject = name.split(":", 1)[1]
        qs, ex, pub = data.mmlu(subject, "val"), data.mmlu(subject, "dev"), False
    elif name == "pubmedqa":
        qs, pub = data.pubmedqa(), True
        qs, ex = qs[3:], qs[:3]
    elif name == "medqa":
        qs, pub = data.medqa("test"), False
        ex = data.medqa("dev")[:5]
    elif name == "medmcqa":
        qs, pub = data.medmcqa("dev"), False
        if (data._root("medmcqa", None) / "train.json").is_file():
            ex = data.medmcqa("train", first=5)
        else:
            qs, ex = qs[5:], qs[:5]
    else:
        raise ValueError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    if limit is not None and limit < len(qs):
        qs = [qs[i] for i in sorted(random.Random(seed).sample(range(len(qs)), limit))]
    return qs, ex, pub


def evaluate(backend, datasets: list[str], strategies: list[str], out_dir, cfg=None, limit: int | None = None,
             seed: int = 0) -> dict:
    """Run every strategy on every dataset; writes ``results.json``, the samples files and
    ``comparison.md`` to ``out_dir``; returns the results."""
    from .strategies import StrategyConfig, run_strategy

    cfg = cfg or StrategyConfig(seed=seed)
    out_dir = Path(out_dir)
    results: dict[str, dict] = {}
    for ds in datasets:
        qs, ex, pub = load_dataset(ds, limit, seed)
        for st in strategies:
            recs = run_strategy(backend, st, qs, ex, cfg, pubmedqa=pub)
            write_samples(out_dir / f"samples_{ds.replace(':', '_')}_{st}.jsonl", recs)
            r = accuracy_ci([x["correct"] for x in recs], seed=seed)
            r["parse_failure_rate"] = float(np.mean([x.get("parse_failures", 0) / max(len(x.get("answers", [1])), 1)
                                                     for x in recs]))
            results.setdefault(ds, {})[st] = r
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"model": backend.name, "results": results,
                                                      "config": {"strategies": strategies, "limit": limit,
                                                                 "seed": seed, **vars(cfg)}}, indent=2))
    (out_dir / "comparison.md").write_text(comparison_table(results) + "\n")
    return results
