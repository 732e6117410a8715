"""The Med-PaLM 2 reproduction end to end at the tiny preset (SmolLM2-135M, a few questions): the
report's accuracies are exactly those of the per-sample files, and the claim follows them."""

import json


def test_tiny_reproduction_reports_what_its_samples_say(tiny_reproduction):
    run = tiny_reproduction("medqa")
    res = json.loads((run / "results.json").read_text())
    strategies = ["few_shot", "cot", "self_consistency", "ensemble_refinement"]
    for ds in ("mmlu_anatomy", "pubmedqa"):
        for st in strategies:
            rows = [json.loads(line) for line in (run / "samples" / f"samples_{ds}_{st}.jsonl").read_text().splitlines()]
            assert len(rows) == {"mmlu_anatomy": 2, "pubmedqa": 1}[ds]
            assert all(r["acc"] == float(r["prediction"] == r["target"]) for r in rows)
            pooled = res["pooled"]["mmlu_clinical" if ds.startswith("mmlu") else "pubmedqa"][st]
            assert pooled["acc"] == sum(r["acc"] for r in rows) / len(rows) and pooled["n"] == len(rows)
    er = [json.loads(line) for line in (run / "samples" / "samples_pubmedqa_ensemble_refinement.jsonl").read_text()
          .splitlines()]
    assert len(er[0]["resps"]) == 2  # k2 = 2 stage-2 samples at the tiny preset
    for claim, ds in zip(res["claims"], ("mmlu_clinical", "pubmedqa")):
        a = [res["pooled"][ds][s]["acc"] for s in ("ensemble_refinement", "self_consistency", "cot")]
        assert claim["held"] == (a[0] >= a[1] >= a[2])
    assert [r["strategy"] for r in res["table"]] == ["few-shot", "CoT", "CoT + SC", "ER"] * 2
    assert (run / "plots" / "accuracy_by_strategy.png").stat().st_size > 10_000
    assert (run / "cache.sqlite").is_file()
