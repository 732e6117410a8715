"""The Med-PaLM 2 reproduction: the four prompting strategies (Singhal et al. 2023, section 3.3) on
MMLU's six clinical topics (val), PubMedQA PQA-L and MedQA (USMLE) with Qwen2.5-Coder-0.5B-Instruct
(``quick``; 1.5B for ``paper``), beside the paper's Table 5 (unified Med-PaLM 2 by strategy), and whether
"ensemble refinement >= self-consistency >= chain of thought" holds for this model by paired tests
(:func:`discern.medqa.evaluate.ordering_test`).  First, the baseline every strategy comparison needs:
few-shot accuracy by option log-likelihood on each dataset, tested against chance.

Every generation goes through an SQLite cache in the run folder and every (dataset, strategy) is a
stage, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

from discern.core import Claim, Result, Run, progress

from .config import PRESETS, STRATEGIES, Config  # noqa: F401  (old imports: experiment.PRESETS, Config)

LABELS = {"few_shot": "few-shot", "cot": "CoT", "self_consistency": "CoT + SC", "ensemble_refinement": "ER"}
SHORT = {"few_shot": "5-shot", "cot": "CoT", "self_consistency": "SC", "ensemble_refinement": "ER"}

# arXiv Table 5 / Nature Supp. Table 1 (unified model; 5-shot, CoT + SC, ER) and the MMLU test sizes
PAPER_TABLE5 = {
    "pubmedqa": (79.2, 74.0, 75.0),
    "mmlu:clinical_knowledge": (88.3, 88.3, 88.7),
    "mmlu:medical_genetics": (90.0, 89.0, 92.0),
    "mmlu:anatomy": (77.8, 80.0, 84.4),
    "mmlu:professional_medicine": (95.2, 93.4, 92.3),
    "mmlu:college_biology": (94.4, 95.1, 95.8),
    "mmlu:college_medicine": (80.9, 81.5, 83.2),
    "medqa": (79.7, 83.7, 85.4),
}
MMLU_TEST_SIZES = {"clinical_knowledge": 265, "medical_genetics": 100, "anatomy": 135, "professional_medicine": 272,
                   "college_biology": 144, "college_medicine": 173}
PAPER_COLUMN = {"few_shot": 0, "self_consistency": 1, "ensemble_refinement": 2}


def _paper_mmlu_pooled() -> tuple[float, float, float]:
    """The six topics' Table 5 accuracies weighted by their test sizes (the pooled MMLU-clinical row)."""
    total = sum(MMLU_TEST_SIZES.values())
    return tuple(sum(PAPER_TABLE5[f"mmlu:{s}"][i] * n for s, n in MMLU_TEST_SIZES.items()) / total
                 for i in range(3))


def _strategy_datasets(cfg: Config) -> list[tuple[str, int | None]]:
    out = [(f"mmlu:{s}", cfg.mmlu_per_subject) for s in cfg.mmlu_subjects if cfg.mmlu_per_subject != 0]
    if cfg.pubmedqa != 0:
        out.append(("pubmedqa", cfg.pubmedqa))
    if cfg.medqa != 0:
        out.append(("medqa-usmle", cfg.medqa))
    return out


def _loglik_groups(cfg: Config) -> dict[str, list[tuple[str, int | None]]]:
    groups = {"mmlu_clinical": [(f"mmlu:{s}", cfg.loglik_mmlu_per_subject) for s in cfg.mmlu_subjects],
              "pubmedqa": [("pubmedqa", cfg.loglik_pubmedqa)], "medqa_usmle": [("medqa-usmle", cfg.loglik_medqa)]}
    return {k: [(d, n) for d, n in v if n != 0] for k, v in groups.items() if any(n != 0 for _, n in v)}


def _loglik(cfg: Config, path: Path, datasets: list[tuple[str, int | None]]) -> dict:
    """Few-shot accuracy by option log-likelihood on ``datasets`` pooled: ``correct`` per question, the
    pooled chance rate and seconds; the records (prompt, log-probabilities, prediction) go to ``path``."""
    import time

    import torch

    from discern.llm import load_causal_lm

    from .evaluate import chance_rate, load_dataset
    from .strategies import few_shot_loglik

    model, tok = load_causal_lm(cfg.model, dtype=getattr(torch, cfg.dtype))
    t0 = time.perf_counter()
    recs, rates = [], []
    for ds, limit in datasets:
        qs, ex, _ = load_dataset(ds, limit, cfg.seed)
        recs += [{"dataset": ds, "meta": q.meta, **r} for q, r in zip(qs, few_shot_loglik(model, tok, qs, ex))]
        rates += [chance_rate(qs)] * len(qs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, default=str) + "\n" for r in recs))
    return {"correct": [bool(r["correct"]) for r in recs], "chance": sum(rates) / len(rates),
            "seconds": time.perf_counter() - t0}


def run(cfg: Config, run: Run) -> Result:
    from .backend import cached_model_backend
    from .evaluate import chance_rate, load_dataset, score_strategy
    from .strategies import StrategyConfig

    bad = [s for s in cfg.strategies if s not in STRATEGIES]
    if bad:
        raise ValueError(f"unknown strategies {bad} (choose from {', '.join(STRATEGIES)})")
    datasets = _strategy_datasets(cfg)
    groups = _loglik_groups(cfg)
    bar = progress(total=len(groups) + len(datasets) * len(cfg.strategies), desc="medqa")
    loglik: dict[str, dict] = {}
    for key, dss in groups.items():
        bar.set_postfix_str(f"few-shot log-likelihood {key}")
        loglik[key] = run.stage(f"loglik_{key}", lambda dss=dss, key=key: _loglik(
            cfg, run.path / "samples" / f"loglik_{key}.jsonl", dss))
        bar.update(1)
    backend = cached_model_backend(cfg.model, cfg.dtype, run.path / "cache.sqlite", cfg.max_sequences)
    scfg = StrategyConfig(k=cfg.k, k1=cfg.k1, k2=cfg.k2, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                          seed=cfg.seed)
    per: dict[str, dict[str, dict]] = {}
    chance: dict[str, list[float]] = {}
    for ds, limit in datasets:
        qs, ex, pub = load_dataset(ds, limit, cfg.seed)
        chance[ds] = [chance_rate(qs), len(qs)]
        for st in cfg.strategies:
            bar.set_postfix_str(f"{ds} {st}")
            path = run.path / "samples" / f"samples_{ds.replace(':', '_')}_{st}.jsonl"
            per.setdefault(ds, {})[st] = run.stage(
                f"{ds.replace(':', '_')}_{st}",
                lambda st=st, qs=qs, ex=ex, pub=pub, path=path: score_strategy(backend, st, qs, ex, scfg, pub, path))
            bar.update(1)
    bar.close()
    backend.close()
    return report(cfg, run, per, chance, loglik)


def _pool(cfg: Config, run: Run, per: dict, chance: dict) -> dict:
    """Per pooled dataset (MMLU clinical, PubMedQA) and strategy: the outcomes in a fixed question order,
    accuracy with intervals, unparsed questions, parse-failure rate and seconds per question."""
    from .evaluate import accuracy_ci

    groups = {"mmlu_clinical": [d for d in per if d.startswith("mmlu:")],
              "pubmedqa": [d for d in per if d == "pubmedqa"], "medqa_usmle": [d for d in per if d == "medqa-usmle"]}
    pooled: dict[str, dict] = {}
    for key, dss in groups.items():
        if not dss:
            continue
        n_q = sum(chance[d][1] for d in dss)
        rate = sum(chance[d][0] * chance[d][1] for d in dss) / n_q
        pooled[key] = {"chance": rate, "strategies": {}}
        for st in cfg.strategies:
            correct = [c for d in dss for c in per[d][st]["correct"]]
            r = accuracy_ci(correct, seed=cfg.seed)
            unparsed = 0
            for d in dss:  # the samples files say which votes found no answer (counted wrong)
                if "unparsed" in per[d][st]:
                    unparsed += per[d][st]["unparsed"]
                else:  # a stage stored before the count was kept
                    path = run.path / "samples" / f"samples_{d.replace(':', '_')}_{st}.jsonl"
                    unparsed += sum(_unparsed(json.loads(x)) for x in path.read_text().splitlines())
            r.update(correct=correct, unparsed=unparsed,
                     seconds_per_question=sum(per[d][st]["seconds"] for d in dss) / max(r["n"], 1),
                     parse_failure_rate=sum(per[d][st]["parse_failure_rate"] for d in dss) / len(dss))
            pooled[key]["strategies"][st] = r
    return pooled


def _unparsed(sample: dict) -> bool:
    """Whether a samples-file line's vote found no answer (the harness format: the last request's filtered
    answer is ``[invalid]``; an older file: ``prediction`` is null)."""
    from .evaluate import INVALID

    if "prediction" in sample:
        return sample["prediction"] is None
    return sample["filtered_resps"][-1] == INVALID


def _ordering_claim(ds: str, pooled: dict, paper_row, test: dict) -> Claim:
    rows = pooled["strategies"]
    acc = ", ".join(f"{SHORT[s]} {100 * rows[s]['acc']:.1f}% [{100 * rows[s]['wilson_ci'][0]:.1f}, "
                    f"{100 * rows[s]['wilson_ci'][1]:.1f}] ({rows[s]['unparsed']} unparsed)" for s in test["order"])
    pairs = "; ".join(f"{SHORT[p['pair'][0]]} > {SHORT[p['pair'][1]]}: {p['a_only']} vs {p['b_only']} discordant, "
                      f"Holm p {p['p_greater_holm']:.3g} (reverse {p['p_less_holm']:.3g})" for p in test["pairs"])
    chance = ", ".join(f"{SHORT[s]} p {a['p_value']:.3g}" for s, a in test["above_chance"].items())
    return Claim(
        statement=f"ensemble refinement >= self-consistency >= chain of thought ({ds})",
        paper=f"Table 5: ER {paper_row[2]:.1f}, CoT + SC {paper_row[1]:.1f} (5-shot {paper_row[0]:.1f}); ER is not "
              "above 5-shot on PubMedQA or professional medicine",
        ours=f"{acc} (Wilson 95%; unparsed answers count as wrong); n = {test['n']}, chance "
             f"{100 * test['chance']:.1f}%; {pairs}; above chance (binomial): {chance}",
        test=test["test"], p_value=test["p_value"], verdict=test["verdict"], level=1 - test["alpha"])


def _above_chance_claim(loglik: dict, alpha: float, seed: int) -> tuple[Claim, dict]:
    """Few-shot log-likelihood accuracy of each dataset against its chance rate: exact one-sided binomial
    tests, Holm over the datasets.  ``held``: every dataset above chance; ``not held``: some dataset's
    Wilson interval wholly below chance; else ``inconclusive``."""
    from discern.metrics import stats

    from .evaluate import accuracy_ci

    rows = {}
    for key, r in loglik.items():
        acc = accuracy_ci(r["correct"], seed=seed)
        test = stats.binomial_test(acc["k"], acc["n"], r["chance"])
        rows[key] = {**acc, "chance": r["chance"], "p_value": test["p_value"],
                     "seconds_per_question": r["seconds"] / max(acc["n"], 1)}
    adjusted = stats.holm([rows[k]["p_value"] for k in rows])
    for key, p in zip(rows, adjusted):
        rows[key]["p_holm"] = p
    below = [k for k, r in rows.items() if r["wilson_ci"][1] < r["chance"]]
    verdict = ("not held" if below else
               "held" if all(r["p_holm"] < alpha for r in rows.values()) else "inconclusive")
    p_value = max(r["p_holm"] for r in rows.values()) if verdict != "not held" else None
    ci = None
    if verdict == "not held":
        worst = rows[below[0]]
        ci = [worst["wilson_ci"][0] - worst["chance"], worst["wilson_ci"][1] - worst["chance"]]
    ours = "; ".join(f"{k} {100 * r['acc']:.1f}% [{100 * r['wilson_ci'][0]:.1f}, {100 * r['wilson_ci'][1]:.1f}] "
                     f"of {r['n']} vs chance {100 * r['chance']:.1f}%, Holm p {r['p_holm']:.3g}"
                     for k, r in rows.items())
    claim = Claim(
        statement="few-shot answers are above chance on every dataset (the baseline a strategy comparison needs)",
        paper="Med-PaLM 2 5-shot (Table 5): MedQA 79.7, PubMedQA 79.2, MMLU clinical 77.8-95.2",
        ours=ours + " (option log-likelihood, Wilson 95%)",
        test="exact one-sided binomial test of accuracy > chance per dataset, Holm over datasets",
        p_value=p_value, ci=ci, verdict=verdict, level=1 - alpha)
    return claim, rows


def report(cfg: Config, run: Run, per: dict, chance: dict, loglik: dict | None = None) -> Result:
    """The result of a finished run from its stages: ``per[dataset][strategy]`` as
    :func:`discern.medqa.evaluate.score_strategy` returns it, ``chance[dataset] = [rate, questions]``,
    ``loglik[group]`` as :func:`_loglik` returns it."""
    from .evaluate import ORDER, comparison_table, ordering_test

    pooled = _pool(cfg, run, per, chance)
    paper_rows = {"mmlu_clinical": _paper_mmlu_pooled(), "pubmedqa": PAPER_TABLE5["pubmedqa"],
                  "medqa_usmle": PAPER_TABLE5["medqa"]}
    table = []
    claims, loglik_rows = [], {}
    if loglik:
        claim, loglik_rows = _above_chance_claim(loglik, cfg.alpha, cfg.seed)
        claims.append(claim)
        for key, r in loglik_rows.items():
            table.append({"dataset": key, "strategy": "5-shot (log-likelihood)", "n": r["n"],
                          "accuracy_%": 100 * r["acc"],
                          "wilson_95%": f"[{100 * r['wilson_ci'][0]:.1f}, {100 * r['wilson_ci'][1]:.1f}]",
                          "chance_%": 100 * r["chance"], "paper_%": paper_rows[key][0], "unparsed": 0,
                          "parse_failures_%": 0.0, "s_per_question": r["seconds_per_question"]})
    for ds, row in pooled.items():
        for st in cfg.strategies:
            r = row["strategies"][st]
            table.append({"dataset": ds, "strategy": LABELS[st], "n": r["n"], "accuracy_%": 100 * r["acc"],
                          "wilson_95%": f"[{100 * r['wilson_ci'][0]:.1f}, {100 * r['wilson_ci'][1]:.1f}]",
                          "chance_%": 100 * row["chance"],
                          "paper_%": paper_rows[ds][PAPER_COLUMN[st]] if st in PAPER_COLUMN else "–",
                          "unparsed": r["unparsed"], "parse_failures_%": 100 * r["parse_failure_rate"],
                          "s_per_question": r["seconds_per_question"]})
    tests = {}
    if all(s in cfg.strategies for s in ORDER):
        for ds, row in pooled.items():
            tests[ds] = ordering_test({s: row["strategies"][s]["correct"] for s in ORDER}, row["chance"],
                                      alpha=cfg.alpha)
            claims.append(_ordering_claim(ds, row, paper_rows[ds], tests[ds]))
    else:
        claims.append(Claim(
            statement="ensemble refinement >= self-consistency >= chain of thought",
            paper="Table 5", ours=f"not tested: the run's strategies {cfg.strategies} lack one of {list(ORDER)}",
            test="exact one-sided McNemar tests of each adjacent pair with Holm, binomial tests vs chance",
            p_value=None, verdict="inconclusive"))
    (run.path / "comparison.md").write_text(comparison_table(
        {ds: {LABELS[s]: r for s, r in row["strategies"].items()} for ds, row in pooled.items()}) + "\n")
    result = Result(
        paper="medqa", title=f"Med-PaLM 2 strategies (on {Path(str(cfg.model)).name})", claims=claims,
        plots=_plots(run, pooled, paper_rows), table=table,
        details={"preset_config": json.loads(json.dumps(cfg.__dict__)), "per_dataset": per,
                 "pooled": {ds: {**{s: {k: v for k, v in r.items() if k != "correct"}
                                    for s, r in row["strategies"].items()}, "chance": row["chance"]}
                            for ds, row in pooled.items()},
                 "ordering_tests": tests, "paper_table5": PAPER_TABLE5,
                 "few_shot_loglik": {k: {kk: vv for kk, vv in r.items() if kk != "correct"}
                                     for k, r in loglik_rows.items()}})
    run.save_results(result.to_dict())
    return result


def _plots(run: Run, pooled: dict, paper_rows: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run.plots.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(pooled), figsize=(5 * len(pooled), 3.6), squeeze=False)
    for ax, (ds, pool) in zip(axes[0], pooled.items()):
        row = pool["strategies"]
        names = list(row)
        acc = [100 * row[s]["acc"] for s in names]
        lo = [100 * (row[s]["acc"] - row[s]["wilson_ci"][0]) for s in names]
        hi = [100 * (row[s]["wilson_ci"][1] - row[s]["acc"]) for s in names]
        x = range(len(names))
        ax.bar(x, acc, yerr=[lo, hi], capsize=4, color="#4c72b0", label="ours (Wilson 95% interval)")
        px = [i for i, s in enumerate(names) if s in PAPER_COLUMN]
        ax.scatter(px, [paper_rows[ds][PAPER_COLUMN[names[i]]] for i in px], marker="D", color="#c44e52", zorder=3,
                   label="Med-PaLM 2 (paper)")
        ax.axhline(100 * pool["chance"], ls="--", color="grey", lw=1, label="chance")
        ax.set_xticks(list(x), [LABELS[s] for s in names])
        ax.set_ylim(0, 100)
        ax.set_title(f"{ds} (n = {row[names[0]]['n']})")
        ax.set_ylabel("accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = run.plots / "accuracy_by_strategy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path.relative_to(run.path))]
