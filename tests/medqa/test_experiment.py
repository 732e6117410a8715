"""The Med-PaLM 2 reproduction end to end at the tiny preset (SmolLM2-135M, a few questions): the
report's accuracies are exactly those of the per-sample files, the claims are valid, and with 2 + 1 + 1
questions no ordering can be significant, so the ordering claims are inconclusive; the few-shot
log-likelihood claim is the Holm-adjusted binomial tests of its own samples files."""

import json

from discern.core import Result
from discern.metrics import stats


def test_tiny_reproduction_reports_what_its_samples_say(tiny_reproduction):
    run = tiny_reproduction("medqa")
    raw = json.loads((run / "results.json").read_text())
    res = Result.from_dict(raw)  # the contract: a valid result with typed claims
    strategies = ["few_shot", "cot", "self_consistency", "ensemble_refinement"]
    rows = {}
    pool_of = {"mmlu_anatomy": "mmlu_clinical", "pubmedqa": "pubmedqa", "medqa-usmle": "medqa_usmle"}
    for ds in pool_of:
        for st in strategies:
            rows[ds, st] = [json.loads(line) for line in
                            (run / "samples" / f"samples_{ds}_{st}.jsonl").read_text().splitlines()]
            assert len(rows[ds, st]) == {"mmlu_anatomy": 2, "pubmedqa": 1, "medqa-usmle": 1}[ds]
            # the harness's samples format: the last request's filtered answer is the one scored
            assert all(r["acc"] == float(r["filtered_resps"][-1] == r["target"]) for r in rows[ds, st])
            pooled = raw["pooled"][pool_of[ds]][st]
            assert pooled["acc"] == sum(r["acc"] for r in rows[ds, st]) / len(rows[ds, st])
            assert pooled["n"] == len(rows[ds, st])
            assert pooled["unparsed"] == sum(r["filtered_resps"][-1] == "[invalid]" for r in rows[ds, st])
    assert raw["pooled"]["mmlu_clinical"]["chance"] == 0.25
    assert abs(raw["pooled"]["pubmedqa"]["chance"] - 1 / 3) < 1e-12
    er = rows["pubmedqa", "ensemble_refinement"]
    assert [len(r) for r in er[0]["resps"]] == [2, 2]  # k1 = 2 stage-1 and k2 = 2 stage-2 samples (tiny)
    assert [c.statement for c in res.claims] == [
        "few-shot answers are above chance on every dataset (the baseline a strategy comparison needs)",
        "ensemble refinement >= self-consistency >= chain of thought (mmlu_clinical)",
        "ensemble refinement >= self-consistency >= chain of thought (pubmedqa)",
        "ensemble refinement >= self-consistency >= chain of thought (medqa_usmle)"]
    # few-shot by option log-likelihood: 2 questions per set, each record's prediction is its best letter
    p_raw = []
    for key, chance in (("mmlu_clinical", 0.25), ("pubmedqa", 1 / 3), ("medqa_usmle", 0.25)):
        recs = [json.loads(x) for x in (run / "samples" / f"loglik_{key}.jsonl").read_text().splitlines()]
        assert len(recs) == 2
        for r in recs:
            assert r["prediction"] == max(r["logprobs"], key=lambda x: (r["logprobs"][x], -ord(x)))
            assert r["correct"] == (r["prediction"] == r["target"])
        k = sum(r["correct"] for r in recs)
        assert raw["few_shot_loglik"][key]["acc"] == k / 2
        p_raw.append(stats.binomial_test(k, 2, chance)["p_value"])
    first = res.claims[0]
    assert first.verdict == "inconclusive" and abs(first.p_value - max(stats.holm(p_raw))) < 1e-12
    for claim, ds in zip(res.claims[1:], ("mmlu_anatomy", "pubmedqa", "medqa-usmle")):
        assert claim.verdict == "inconclusive"  # 2 or 1 questions: no test can reach 0.05
        correct = {st: [bool(r["acc"]) for r in rows[ds, st]] for st in strategies}
        mc = [stats.mcnemar(correct[a], correct[b])["p_value"]
              for a, b in (("ensemble_refinement", "self_consistency"), ("self_consistency", "cot"))]
        chance = 1 / 3 if ds == "pubmedqa" else 0.25
        binom = [stats.binomial_test(sum(correct[s]), len(correct[s]), chance)["p_value"]
                 for s in ("ensemble_refinement", "self_consistency", "cot")]
        assert abs(claim.p_value - max(stats.holm(mc) + binom)) < 1e-12
        assert "McNemar" in claim.test and "unparsed" in claim.ours
    assert [r["strategy"] for r in res.table] == (["5-shot (log-likelihood)"] * 3
                                                  + ["few-shot", "CoT", "CoT + SC", "ER"] * 3)
    assert res.plots == ["plots/accuracy_by_strategy.png"]
    assert (run / "plots" / "accuracy_by_strategy.png").stat().st_size > 10_000
    assert (run / "cache.sqlite").is_file()
