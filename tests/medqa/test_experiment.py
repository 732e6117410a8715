"""The Med-PaLM 2 reproduction end to end at the tiny preset (SmolLM2-135M, a few questions): the
report's accuracies are exactly those of the per-sample files, the claims are valid, and with 2 + 1
questions no ordering can be significant, so both claims are inconclusive."""

import json

from discern.core import Result
from discern.metrics import stats


def test_tiny_reproduction_reports_what_its_samples_say(tiny_reproduction):
    run = tiny_reproduction("medqa")
    raw = json.loads((run / "results.json").read_text())
    res = Result.from_dict(raw)  # the contract: a valid result with typed claims
    strategies = ["few_shot", "cot", "self_consistency", "ensemble_refinement"]
    rows = {}
    for ds in ("mmlu_anatomy", "pubmedqa"):
        for st in strategies:
            rows[ds, st] = [json.loads(line) for line in
                            (run / "samples" / f"samples_{ds}_{st}.jsonl").read_text().splitlines()]
            assert len(rows[ds, st]) == {"mmlu_anatomy": 2, "pubmedqa": 1}[ds]
            assert all(r["acc"] == float(r["prediction"] == r["target"]) for r in rows[ds, st])
            pooled = raw["pooled"]["mmlu_clinical" if ds.startswith("mmlu") else "pubmedqa"][st]
            assert pooled["acc"] == sum(r["acc"] for r in rows[ds, st]) / len(rows[ds, st])
            assert pooled["n"] == len(rows[ds, st])
            assert pooled["unparsed"] == sum(r["prediction"] is None for r in rows[ds, st])
    assert raw["pooled"]["mmlu_clinical"]["chance"] == 0.25
    assert abs(raw["pooled"]["pubmedqa"]["chance"] - 1 / 3) < 1e-12
    er = rows["pubmedqa", "ensemble_refinement"]
    assert len(er[0]["resps"]) == 2  # k2 = 2 stage-2 samples at the tiny preset
    assert [c.statement for c in res.claims] == [
        "ensemble refinement >= self-consistency >= chain of thought (mmlu_clinical)",
        "ensemble refinement >= self-consistency >= chain of thought (pubmedqa)"]
    for claim, ds in zip(res.claims, ("mmlu_anatomy", "pubmedqa")):
        assert claim.verdict == "inconclusive"  # 2 or 1 questions: no test can reach 0.05
        correct = {st: [bool(r["acc"]) for r in rows[ds, st]] for st in strategies}
        mc = [stats.mcnemar(correct[a], correct[b])["p_value"]
              for a, b in (("ensemble_refinement", "self_consistency"), ("self_consistency", "cot"))]
        chance = 0.25 if ds.startswith("mmlu") else 1 / 3
        binom = [stats.binomial_test(sum(correct[s]), len(correct[s]), chance)["p_value"]
                 for s in ("ensemble_refinement", "self_consistency", "cot")]
        assert abs(claim.p_value - max(stats.holm(mc) + binom)) < 1e-12
        assert "McNemar" in claim.test and "unparsed" in claim.ours
    assert [r["strategy"] for r in res.table] == ["few-shot", "CoT", "CoT + SC", "ER"] * 2
    assert res.plots == ["plots/accuracy_by_strategy.png"]
    assert (run / "plots" / "accuracy_by_strategy.png").stat().st_size > 10_000
    assert (run / "cache.sqlite").is_file()
