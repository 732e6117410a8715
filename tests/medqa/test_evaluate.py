"""Accuracy intervals, the ordering test of the strategies, the samples file, the comparison table and the exact
contamination check."""

import json
import random

import pytest

import numpy as np
from scipy import stats

from discern.medqa.evaluate import (accuracy_ci, chance_rate, comparison_table, contaminated, ordering_test,
                                    shares_span, write_samples)
from discern.medqa.prompts import Question
from discern.medqa.strategies import StrategyConfig


def test_accuracy_ci_has_the_wilson_interval_and_a_seeded_bootstrap():
    c = [True] * 30 + [False] * 20
    a, b = accuracy_ci(c, seed=1), accuracy_ci(c, seed=1)
    assert a == b and a["acc"] == 0.6 and a["n"] == 50 and a["k"] == 30
    z = 1.959963984540054
    centre = (0.6 + z * z / 100) / (1 + z * z / 50)
    half = z * ((0.6 * 0.4 / 50 + z * z / 10000) ** 0.5) / (1 + z * z / 50)
    assert a["wilson_ci"] == pytest.approx([centre - half, centre + half], abs=1e-12)
    boot = np.asarray(c, float)[np.random.default_rng(1).integers(0, 50, size=(2000, 50))].mean(1)
    assert a["bootstrap_ci"] == pytest.approx(list(np.percentile(boot, [2.5, 97.5])), abs=1e-12)
    assert accuracy_ci([True] * 5)["bootstrap_ci"] == [1.0, 1.0]
    with pytest.raises(ValueError):
        accuracy_ci([])


def _outcomes(n, right):
    """Right on the first ``right[s]`` of ``n`` questions, per strategy (nested: ER's set contains SC's ...)."""
    return {s: [i < k for i in range(n)] for s, k in right.items()}


def test_ordering_held_needs_every_pair_and_every_strategy_above_chance():
    res = ordering_test(_outcomes(40, {"ensemble_refinement": 40, "self_consistency": 30, "cot": 20}), 0.25)
    (er_sc, sc_cot) = res["pairs"]
    # 10 discordant questions, all the better strategy's: one-sided exact McNemar p = 2^-10; Holm over 2 pairs
    assert (er_sc["a_only"], er_sc["b_only"], er_sc["p_greater"]) == (10, 0, pytest.approx(2 ** -10, abs=1e-15))
    assert er_sc["p_greater_holm"] == sc_cot["p_greater_holm"] == pytest.approx(2 ** -9, abs=1e-15)
    assert er_sc["p_less"] == 1.0
    chance = [stats.binom.sf(k - 1, 40, 0.25) for k in (40, 30, 20)]
    assert [a["p_value"] for a in res["above_chance"].values()] == pytest.approx(chance, rel=1e-9)
    assert res["verdict"] == "held" and res["p_value"] == pytest.approx(max(chance + [2 ** -9]), rel=1e-9)
    # the same pairs when chain of thought sits at chance (10 / 40): not held, not refuted
    low = ordering_test(_outcomes(40, {"ensemble_refinement": 30, "self_consistency": 20, "cot": 10}), 0.25)
    assert low["pairs"][1]["p_greater_holm"] < 0.05 and low["above_chance"]["cot"]["p_value"] > 0.05
    assert low["verdict"] == "inconclusive"


def test_ordering_ties_at_chance_are_inconclusive_and_a_reversal_is_not_held():
    # the quick preset's MMLU picture before the tests: ER 7, SC 5, CoT 5 of 24 (29.2 >= 20.8 >= 20.8)
    tie = ordering_test(_outcomes(24, {"ensemble_refinement": 7, "self_consistency": 5, "cot": 5}), 0.25)
    assert tie["pairs"][0]["p_greater"] == pytest.approx(0.25, abs=1e-15)  # 2 vs 0 discordant
    assert tie["pairs"][1]["p_greater"] == 1.0  # no discordant question
    assert tie["verdict"] == "inconclusive" and tie["p_value"] == 1.0
    rev = ordering_test(_outcomes(40, {"ensemble_refinement": 20, "self_consistency": 30, "cot": 20}), 0.25)
    # SC beats ER on 10 questions, none the other way: p_less = 2^-10, Holm x 2
    assert rev["pairs"][0]["p_less_holm"] == pytest.approx(2 ** -9, abs=1e-15)
    assert rev["verdict"] == "not held" and rev["p_value"] == pytest.approx(2 ** -9, abs=1e-15)
    with pytest.raises(ValueError):
        ordering_test({"ensemble_refinement": [True], "self_consistency": [True, False], "cot": [True]}, 0.25)


def test_chance_is_one_over_the_number_of_options():
    q4 = Question("q", ["a", "b", "c", "d"], "A")
    q3 = Question("q", ["yes", "no", "maybe"], "A")
    assert chance_rate([q4, q4]) == 0.25 and chance_rate([q3]) == pytest.approx(1 / 3)
    assert chance_rate([q4, q3]) == pytest.approx((1 / 4 + 1 / 3) / 2)


def test_samples_file_and_table(tmp_path):
    from discern.medqa.strategies import run_strategy

    class TwoSamples:  # q1: "A" then "B" (the tie goes to A); q2: nothing parses
        name = "two"

        def generate(self, prompts, n, params):
            return [["x Answer: (A)", "y Answer: (B)"] if "q1" in p else ["?", "?"] for p in prompts]

    qs = [Question("q1", ["a", "b"], "A", meta={"index": 7}), Question("q2", ["a", "b"], "B", meta={"index": 2})]
    recs = run_strategy(TwoSamples(), "self_consistency", qs, [], StrategyConfig(k=2))
    lines = [json.loads(x) for x in write_samples(tmp_path / "s.jsonl", recs, qs).read_text().splitlines()]
    assert [x["doc_id"] for x in lines] == [7, 2]  # the source rows, not the positions in the run
    assert lines[0]["resps"] == [["x Answer: (A)", "y Answer: (B)"]] and lines[0]["filtered_resps"] == ["A"]
    assert lines[0]["target"] == "A" and lines[0]["acc"] == 1.0 and lines[0]["doc"]["question"] == "q1"
    assert lines[1]["filtered_resps"] == ["[invalid]"] and lines[1]["acc"] == 0.0
    with pytest.raises(ValueError):
        write_samples(tmp_path / "s.jsonl", recs, qs[:1])
    table = comparison_table({"pubmedqa": {"cot": {"acc": 0.5, "bootstrap_ci": [0.4, 0.6]}}})
    assert table.splitlines()[-1] == "| pubmedqa | 50.0 [40.0, 60.0] |"
    two = comparison_table({"a": {"sc": {"acc": 1.0, "bootstrap_ci": [1, 1]}, "cot": {"acc": 0.0, "bootstrap_ci": [0, 0]}}})
    assert two.splitlines()[0] == "| dataset | sc | cot |"  # strategies in run order, not sorted


def test_contamination_needs_512_shared_characters_exactly():
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz "
    question = "".join(rng.choice(letters) for _ in range(900))
    noise = "".join(rng.choice(letters) for _ in range(5000))
    for offset in (0, 1, 100, 255, 256, 257, 1000):  # every alignment against the corpus blocks
        for length, expect in ((512, True), (511, False)):
            corpus = noise[:offset] + "#" + question[200:200 + length] + "#" + noise[offset:]
            assert shares_span(question, corpus) is expect, (offset, length)
    assert contaminated([question, "short"], noise[:300] + question[:600]) == [0]


def test_evaluate_writes_results_samples_and_table(tmp_path):
    from discern.medqa.evaluate import evaluate, load_dataset

    class Oracle:  # answers every MMLU anatomy val question right in CoT, wrong in few-shot
        name = "oracle"

        def __init__(self):
            self.answers = {q.question: q.answer for q in load_dataset("mmlu:anatomy")[0]}

        def generate(self, prompts, n, params):
            out = []
            for p in prompts:
                q = next(k for k in self.answers if f"Question: {k}\n" in p.rsplit("\n\n", 1)[-1])
                right = self.answers[q]
                wrong = "A" if right != "A" else "B"
                out.append([f" ({wrong})" if p.endswith("Answer:") else f"Answer: ({right})"] * n)
            return out

    res = evaluate(Oracle(), ["mmlu:anatomy"], ["few_shot", "cot", "self_consistency"], tmp_path,
                   StrategyConfig(k=3), limit=6)
    assert res["mmlu:anatomy"]["cot"]["acc"] == 1.0 and res["mmlu:anatomy"]["few_shot"]["acc"] == 0.0
    assert res["mmlu:anatomy"]["self_consistency"]["n"] == 6
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["model"] == "oracle" and saved["config"]["k"] == 3
    assert len((tmp_path / "samples_mmlu_anatomy_cot.jsonl").read_text().splitlines()) == 6
    assert "| mmlu:anatomy |" in (tmp_path / "comparison.md").read_text()
    a, _, _ = load_dataset("pubmedqa", limit=10, seed=1)
    b, ex, pub = load_dataset("pubmedqa", limit=10, seed=1)
    assert [q.meta["pmid"] for q in a] == [q.meta["pmid"] for q in b] and len(ex) == 3 and pub
    assert not {q.meta["pmid"] for q in ex} & {q.meta["pmid"] for q in a}
