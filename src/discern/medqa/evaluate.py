"""Evaluation of the strategies: accuracy with intervals, the ordering test of the strategies,
per-sample JSONL in the style of lm-evaluation-harness, a strategy comparison table, and a contamination
check.

- Accuracy intervals (:func:`accuracy_ci`): the Wilson score interval and a percentile bootstrap over
  questions (seeded), both from :mod:`discern.metrics.stats`.  A question whose vote found no parsed
  answer counts as wrong (section 3.3 reports accuracy over all questions).
- The ordering of the strategies (:func:`ordering_test`): the paper's Table 5 ranks ensemble refinement
  above self-consistency, and self-consistency above chain of thought; on paired questions each adjacent
  pair gets an exact one-sided McNemar test, Holm-adjusted over the pairs, and each strategy an exact
  binomial test against chance (1 / number of options).
- ``samples_<dataset>_<strategy>.jsonl`` (:func:`write_samples`): one line per question in the form
  lm-evaluation-harness's ``--log_samples`` writes: ``doc_id`` (the question's row in its source file),
  ``doc``, ``target``, ``arguments`` (``{"gen_args_<i>": {"arg_0": prompt, "arg_1": generation kwargs}}``,
  one per request), ``resps`` (per request, its responses), ``filtered_resps`` (per request, the plurality
  of the letters parsed from its responses, ``[invalid]`` when none parses), ``filter``, ``metrics``,
  the sha256 ``doc_hash`` / ``prompt_hash`` / ``target_hash`` and ``acc``.  Ensemble refinement makes two
  requests, the stage-1 samples and the stage-2 samples; the last request's answer is the one scored.
- ``results.json`` (:func:`evaluate`) holds, beside this module's own per-dataset results, each
  dataset x strategy as an lm-evaluation-harness task (:func:`task_name`, e.g. ``medqa_usmle_cot``):
  ``results[task]`` with ``acc,none`` and ``acc_stderr,none``, and ``configs``, ``versions``, ``n-shot``,
  ``higher_is_better``, ``n-samples``, ``task_hashes``, ``config`` (model) as the harness writes them.
- Contamination: a question is flagged when it shares a substring of at least 512 characters with
  a corpus (the overlap rule of the Med-PaLM 2 contamination analysis).  Found exactly: any such
  shared substring contains a whole 256-character corpus block aligned at a multiple of 256, so
  only those blocks are looked up among the question's 256-character windows, then extended.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import time
from pathlib import Path

import numpy as np

from discern.metrics import stats

#: the paper's ordering, best first (arXiv Table 5: ER >= CoT + SC; self-consistency over a single chain)
ORDER = ("ensemble_refinement", "self_consistency", "cot")


def accuracy_ci(correct: list[bool], n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Accuracy of right/wrong outcomes with its Wilson interval and a percentile bootstrap interval
    over questions (``n_boot`` resamples of ``numpy.random.default_rng(seed)``)."""
    c = np.asarray(correct, dtype=float)
    n = len(c)
    if n == 0:
        raise ValueError("accuracy of no questions")
    k = int(c.sum())
    boot = stats.bootstrap_ci(c, np.mean, n_resamples=n_boot, level=level, seed=seed, method="percentile")
    return {"acc": k / n, "k": k, "n": n, "bootstrap_ci": boot["ci"],
            "wilson_ci": stats.proportion_ci(k, n, level=level)["ci"]}


def chance_rate(questions) -> float:
    """The accuracy of guessing: the mean of 1 / number of options over the questions (PubMedQA: 1/3)."""
    if not questions:
        raise ValueError("chance rate of no questions")
    return float(np.mean([1.0 / len(q.options) for q in questions]))


def ordering_test(correct: dict[str, list[bool]], chance: float, order=ORDER, alpha: float = 0.05) -> dict:
    """Test "``order[0]`` >= ``order[1]`` >= ..." on the same questions (lists of right/wrong in the same
    question order; an unparsed answer is wrong).

    - Each adjacent pair (A, B): the exact McNemar test of A > B and of B > A (one-sided, on the
      discordant questions), each direction Holm-adjusted over the pairs.
    - Each strategy: the exact binomial test of its accuracy > ``chance``.  With a mix of option counts
      ``chance`` is the mean guessing rate, for which the binomial test is conservative.

    ``verdict``: ``held`` when every pair is significant in the paper's direction (Holm-adjusted p <
    ``alpha``) and every strategy is significantly above chance; ``not held`` when some pair is
    significant in the opposite direction; ``inconclusive`` otherwise (ties, chance-level accuracies, too
    few discordant questions).  ``p_value``: for ``not held`` the smallest adjusted p of an opposite
    pair; otherwise the largest p among the conditions (the intersection-union p of "held")."""
    order = list(order)
    missing = [s for s in order if s not in correct]
    if missing:
        raise ValueError(f"ordering_test: no outcomes for {missing}")
    n = {len(correct[s]) for s in order}
    if len(n) != 1 or 0 in n:
        raise ValueError(f"ordering_test: the strategies must be scored on the same questions, got sizes {sorted(n)}")
    pairs = []
    for a, b in zip(order, order[1:]):
        up = stats.mcnemar(correct[a], correct[b], alternative="greater")
        down = stats.mcnemar(correct[a], correct[b], alternative="less")
        pairs.append({"pair": [a, b], "a_only": up["a_only"], "b_only": up["b_only"], "diff": up["diff"],
                      "p_greater": up["p_value"], "p_less": down["p_value"]})
    for key in ("p_greater", "p_less"):
        for pair, adj in zip(pairs, stats.holm([p[key] for p in pairs])):
            pair[f"{key}_holm"] = adj
    above = {}
    for s in order:
        k, m = int(np.sum(correct[s])), len(correct[s])
        above[s] = {"k": k, "n": m, "p_value": stats.binomial_test(k, m, chance, "greater")["p_value"]}
    held_p = max([p["p_greater_holm"] for p in pairs] + [a["p_value"] for a in above.values()])
    opposite = min(p["p_less_holm"] for p in pairs) if pairs else 1.0
    if opposite < alpha:
        verdict, p_value = "not held", opposite
    elif held_p < alpha:
        verdict, p_value = "held", held_p
    else:
        verdict, p_value = "inconclusive", held_p
    names = ", ".join(f"{a} > {b}" for a, b in zip(order, order[1:]))
    return {"order": order, "pairs": pairs, "above_chance": above, "chance": chance, "alpha": alpha,
            "verdict": verdict, "p_value": p_value, "n": n.pop(),
            "test": f"exact one-sided McNemar tests of each adjacent pair ({names}), "
                    f"Holm-adjusted over the pairs, and exact binomial tests of each accuracy > chance "
                    f"({chance:.3g}); held only if all are below {alpha}; not held if a pair is significant the "
                    "other way"}


def score_strategy(backend, strategy: str, questions, exemplars, cfg, pubmedqa: bool, samples_path) -> dict:
    """Run one strategy on the questions, write its samples file, and return ``correct`` (per question),
    ``unparsed`` (questions without any parsed answer, counted wrong), ``parse_failure_rate`` (over all
    generations) and ``seconds``."""
    from .strategies import run_strategy

    t0 = time.perf_counter()
    recs = run_strategy(backend, strategy, questions, exemplars, cfg, pubmedqa=pubmedqa)
    seconds = time.perf_counter() - t0
    write_samples(samples_path, recs, questions)
    answers = [a for r in recs for a in r.get("answers", [r["prediction"]])]
    return {"correct": [bool(r["correct"]) for r in recs], "seconds": seconds,
            "unparsed": sum(r["prediction"] is None for r in recs),
            "parse_failure_rate": sum(a is None for a in answers) / max(len(answers), 1)}


# ----------------------------------------------------------------------------- lm-evaluation-harness format

#: the filter name of the samples and of the metric keys ("acc,none"): the answer extraction and the vote
#: are the strategy's own, as a harness task without a filter list scores in its process_results
FILTER = "none"
#: a request whose responses gave no parsed answer (lm-evaluation-harness's regex filter fallback)
INVALID = "[invalid]"
#: the version of these task definitions (prompts, extraction, vote) in ``versions``
TASK_VERSION = 1.0
SUFFIX = {"few_shot": "few_shot", "cot": "cot", "self_consistency": "sc", "ensemble_refinement": "er"}
SPLITS = {"pubmedqa": "pqa_l", "medqa": "test", "medqa-usmle": "test", "medmcqa": "dev"}  # MMLU: val


def task_name(dataset: str, strategy: str) -> str:
    """The harness task name of a dataset x strategy: ``medqa_usmle_cot``, ``mmlu_clinical_knowledge_sc``,
    ``pubmedqa_er``, ``mmlu_anatomy_few_shot``."""
    return re.sub(r"\W", "_", dataset) + "_" + SUFFIX.get(strategy, strategy)


def hash_string(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_default(o):
    return o.tolist() if isinstance(o, np.ndarray) else o.item() if isinstance(o, np.generic) else str(o)


def sample_record(rec: dict, question, doc_id: int) -> dict:
    """One line of the samples file, as lm-evaluation-harness writes a ``generate_until`` sample (its
    ``arguments`` already in the ``gen_args_<i>`` / ``arg_<j>`` form of its JSONL writer, ``target`` a
    string)."""
    requests = rec["requests"]
    resps = [rec["stage1"]["generations"], rec["generations"]] if "stage1" in rec else [rec["generations"]]
    votes = [rec["stage1"]["prediction"], rec["prediction"]] if "stage1" in rec else [rec["prediction"]]
    if len(resps) != len(requests):
        raise ValueError(f"{len(requests)} requests but {len(resps)} response lists")
    doc = dataclasses.asdict(question)
    target = str(question.answer)
    return {"doc_id": int(doc_id), "doc": doc, "target": target,
            "arguments": {f"gen_args_{i}": {"arg_0": r["prompt"], "arg_1": r["gen_kwargs"]}
                          for i, r in enumerate(requests)},
            "resps": [[str(g) for g in gens] for gens in resps],
            "filtered_resps": [INVALID if v is None else str(v) for v in votes],
            "filter": FILTER, "metrics": ["acc"],
            "doc_hash": hash_string(json.dumps(doc, indent=2, default=_json_default, ensure_ascii=False)),
            "prompt_hash": hash_string(requests[0]["prompt"]), "target_hash": hash_string(target),
            "acc": float(bool(rec["correct"]))}


def write_samples(path, records: list[dict], questions) -> Path:
    """The samples file of one strategy's records (:func:`~discern.medqa.strategies.run_strategy`, in the
    order of ``questions``); ``doc_id`` is each question's ``meta["index"]``, its row in the source file."""
    if len(records) != len(questions):
        raise ValueError(f"{len(records)} records for {len(questions)} questions")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, (r, q) in enumerate(zip(records, questions)):
            line = sample_record(r, q, q.meta.get("index", i))
            f.write(json.dumps(line, default=_json_default, ensure_ascii=False) + "\n")
    return path


def read_samples(path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def mean_stderr(values: list[float]):
    """The standard error of a mean as lm-evaluation-harness reports it: the sample standard deviation
    (n - 1) over sqrt(n); ``"N/A"`` for fewer than two values."""
    n = len(values)
    if n < 2:
        return "N/A"
    mu = sum(values) / n
    return math.sqrt(sum((x - mu) ** 2 for x in values) / (n - 1)) / math.sqrt(n)


def harness_task(name: str, samples: list[dict], dataset: str, strategy: str, n_original: int, n_shot: int,
                 limit: int | None, seed: int) -> dict:
    """One task's entries of the harness's results.json, from its samples: ``results`` (``acc,none``,
    ``acc_stderr,none``), ``configs``, ``versions``, ``n-shot``, ``higher_is_better``, ``n-samples`` and
    ``task_hashes``."""
    acc = [float(s["acc"]) for s in samples]
    kwargs = [a["arg_1"] for a in samples[0]["arguments"].values()] if samples else [{}]
    config = {"task": name, "task_alias": name, "tag": ["discern_medqa"], "dataset_path": dataset,
              "test_split": SPLITS.get(dataset, "val"), "output_type": "generate_until",
              "num_fewshot": n_shot, "repeats": kwargs[-1].get("n", 1), "generation_kwargs": kwargs[-1],
              "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
              "metadata": {"version": TASK_VERSION, "strategy": strategy, "requests_per_doc": len(kwargs),
                           "generation_kwargs_per_request": kwargs, "limit": limit, "seed": seed,
                           "scoring": "per request the plurality of the letters parsed from its responses "
                                      f"({INVALID!r} when none parses); the last request's is the answer"}}
    return {"results": {"name": name, "alias": name, "sample_len": len(acc),
                        f"acc,{FILTER}": sum(acc) / len(acc) if acc else "N/A",
                        f"acc_stderr,{FILTER}": mean_stderr(acc)},
            "configs": config, "versions": TASK_VERSION, "n-shot": n_shot, "higher_is_better": {"acc": True},
            "n-samples": {"original": n_original, "effective": len(acc)},
            "task_hashes": hash_string("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"]
                                               for s in samples))}


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
            "mmlu:medical_genetics", "mmlu:professional_medicine", "pubmedqa", "medqa", "medqa-usmle", "medmcqa")


def load_dataset(name: str, limit: int | None = None, seed: int = 0):
    """(questions, exemplars, is_pubmedqa) for a dataset name; ``limit`` takes a fixed random subset
    (:func:`subset`) of :func:`dataset_pool`'s questions."""
    qs, ex, pub = dataset_pool(name)
    return subset(qs, limit, seed), ex, pub


def subset(questions: list, limit: int | None, seed: int = 0) -> list:
    """A fixed random subset of ``limit`` questions (seeded), in their original order; all when ``limit`` is
    None or not below their number.  The questions keep their source rows (``meta["index"]``)."""
    import random

    if limit is not None and limit < len(questions):
        return [questions[i] for i in sorted(random.Random(seed).sample(range(len(questions)), limit))]
    return questions


def dataset_pool(name: str):
    """(questions, exemplars, is_pubmedqa) for a dataset name: every question a run may score.
    Exemplars: MMLU's 5 dev questions; PubMedQA: the first 3 items, left out of the questions; MedQA: the
    first 5 dev items (questions from test); MedQA-USMLE (the registry's 273 test questions, no dev split):
    the first 5 items, left out of the questions; MedMCQA (questions from dev, as in the paper): the first 5 of
    train.json when it is there, else the first 5 dev items, left out of the questions."""
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
    elif name == "medqa-usmle":
        qs, pub = data.medqa_usmle(), False
        qs, ex = qs[5:], qs[:5]
    elif name == "medmcqa":
        qs, pub = data.medmcqa("dev"), False
        if (data._root("medmcqa", None) / "train.json").is_file():
            ex = data.medmcqa("train", first=5)
        else:
            qs, ex = qs[5:], qs[:5]
    else:
        raise ValueError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    return qs, ex, pub


def evaluate(backend, datasets: list[str], strategies: list[str], out_dir, cfg=None, limit: int | None = None,
             seed: int = 0) -> dict:
    """Run every strategy on every dataset; writes ``results.json``, the samples files and
    ``comparison.md`` to ``out_dir``; returns the results (per dataset and strategy: accuracy with its
    intervals, ``unparsed`` and ``parse_failure_rate``; per dataset ``ordering`` when the three ordered
    strategies ran).

    ``results.json``: ``model``, ``results`` (per dataset and strategy, as returned), ``ordering``, ``config``
    (the strategies, limit, seed and :class:`StrategyConfig`), and beside them each dataset x strategy as an
    lm-evaluation-harness task (:func:`harness_task`): ``results[task]``, ``configs``, ``versions``,
    ``n-shot``, ``higher_is_better``, ``n-samples``, ``group_subtasks``, ``task_hashes``, ``config.model``,
    ``model_name``, ``date`` and ``total_evaluation_time_seconds``."""
    from .strategies import StrategyConfig, prompt_exemplars

    cfg = cfg or StrategyConfig(seed=seed)
    out_dir = Path(out_dir)
    start, t0 = time.time(), time.perf_counter()
    results: dict[str, dict] = {}
    orderings: dict[str, dict] = {}
    harness: dict[str, dict] = {}
    for ds in datasets:
        pool, ex, pub = dataset_pool(ds)
        qs = subset(pool, limit, seed)
        scored = {}
        for st in strategies:
            path = out_dir / f"samples_{ds.replace(':', '_')}_{st}.jsonl"
            scored[st] = score_strategy(backend, st, qs, ex, cfg, pub, path)
            r = accuracy_ci(scored[st]["correct"], seed=seed)
            r.update(unparsed=scored[st]["unparsed"], parse_failure_rate=scored[st]["parse_failure_rate"])
            results.setdefault(ds, {})[st] = r
            name = task_name(ds, st)
            harness[name] = harness_task(name, read_samples(path), ds, st, len(pool),
                                         len(prompt_exemplars(st, ex)), limit, seed)
        if all(s in scored for s in ORDER):
            orderings[ds] = ordering_test({s: scored[s]["correct"] for s in ORDER}, chance_rate(qs))
    out_dir.mkdir(parents=True, exist_ok=True)
    per_task = {key: {t: h[key] for t, h in harness.items()} for key in
                ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "task_hashes")}
    report = {"model": backend.name,
              # lm-evaluation-harness's per-task entries under its own key; this module's per-dataset accuracy
              # with intervals beside them
              "results": per_task.pop("results"),
              "accuracy": results,
              "ordering": orderings,
              "config": {"strategies": strategies, "limit": limit, "seed": seed, **vars(cfg),
                         "model": backend.name, "model_args": None, "random_seed": seed},
              "group_subtasks": {}, **per_task,
              "model_name": backend.name,
              "model_name_sanitized": re.sub(r"[\"<>:/|\\?*\[\]]+", "__", backend.name),
              "date": start, "total_evaluation_time_seconds": str(time.perf_counter() - t0)}
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, default=_json_default, ensure_ascii=False),
                                          encoding="utf-8")
    (out_dir / "comparison.md").write_text(comparison_table(results) + "\n")
    return results
