"""Accuracy intervals, the samples file, the comparison table and the exact contamination check."""

import json
import random

import pytest

from discern.medqa.evaluate import (accuracy_ci, comparison_table, contaminated, shares_span, wilson,
                                    write_samples)


def test_wilson_interval_matches_the_formula():
    lo, hi = wilson(8, 10)
    z = 1.959963984540054
    p, n = 0.8, 10
    centre = (p + z * z / 20) / (1 + z * z / 10)
    half = z * ((p * (1 - p) / n + z * z / 400) ** 0.5) / (1 + z * z / 10)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))
    assert wilson(0, 0) == (0.0, 1.0)


def test_accuracy_ci_is_seeded_and_brackets_the_accuracy():
    c = [True] * 30 + [False] * 20
    a, b = accuracy_ci(c, seed=1), accuracy_ci(c, seed=1)
    assert a == b and a["acc"] == 0.6 and a["n"] == 50
    assert a["bootstrap_ci"][0] < 0.6 < a["bootstrap_ci"][1]
    assert accuracy_ci([True] * 5)["bootstrap_ci"] == [1.0, 1.0]


def test_samples_file_and_table(tmp_path):
    recs = [{"question": "q1", "target": "A", "prediction": "A", "correct": True, "answers": ["A", "B"],
             "generations": ["g1", "g2"]},
            {"question": "q2", "target": "B", "prediction": None, "correct": False, "answers": [None],
             "generations": ["?"]}]
    lines = [json.loads(x) for x in write_samples(tmp_path / "s.jsonl", recs).read_text().splitlines()]
    assert lines[0] == {"doc_id": 0, "target": "A", "resps": ["g1", "g2"], "filtered_resps": ["A", "B"],
                        "prediction": "A", "acc": 1.0, "question": "q1"}
    assert lines[1]["prediction"] is None and lines[1]["acc"] == 0.0
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
    from discern.medqa.strategies import StrategyConfig

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
