import numpy as np
import pytest

from discern.electric.nbest import Hypothesis, Utterance
from discern.electric.rerank import choose, chosen_errors, error_table, rerank_report, split_dev_test, tune_lambda


def _utt(uid, ref, hyps):
    return Utterance(uid, ref, [Hypothesis(t, s) for t, s in hyps], {})


def test_choose_is_argmax_of_first_pass_plus_lambda_lm():
    f = np.array([-10.0, -11.0, -12.0])
    lm = np.array([-30.0, -20.0, -25.0])
    assert choose(f, None, 0.0) == 0
    assert choose(f, lm, 0.05) == 0  # -11.5, -12, -13.25
    assert choose(f, lm, 0.5) == 1  # -25, -21, -24.5
    assert choose(np.array([-1.0, -1.0]), np.array([0.0, 0.0]), 1.0) == 0  # ties: the first-pass best


def test_lambda_is_tuned_on_dev_and_oracle_bounds_every_reranker():
    utts = [
        _utt("a", "the cat sat", [("the cat sad", -10.0), ("the cat sat", -10.5)]),
        _utt("b", "a dog ran", [("a dog ran", -5.0), ("a dog rang", -5.2)]),
        _utt("c", "he said so", [("he sad so", -7.0), ("he said so", -7.4), ("she said so", -7.5)]),
    ]
    lm = [np.array([-9.0, -4.0]), np.array([-3.0, -8.0]), np.array([-9.0, -2.0, -6.0])]
    errs, words = error_table(utts)
    assert [e.tolist() for e in errs] == [[1, 0], [0, 1], [1, 0, 1]]
    assert words.tolist() == [3, 3, 3]
    best, curve = tune_lambda(utts, errs, words, lm, [0.05, 0.1, 0.2])
    # lambda 0.05: a: -10.45 vs -10.7 -> 0 (1 error); c: -7.45 vs -7.5 -> 0 (1 error)  => 2 / 9
    # lambda 0.1:  a: -10.9 vs -10.9 tie -> 0;          c: -7.9 vs -7.6 -> 1            => 1 / 9
    # lambda 0.2:  a: -11.8 vs -11.3 -> 1; c -> 1; b: -5.6 vs -6.8 -> 0                   => 0 / 9
    assert curve == pytest.approx({0.05: 200 / 9, 0.1: 100 / 9, 0.2: 0.0})
    assert best == 0.2
    assert chosen_errors(utts, errs, lm, 0.2).tolist() == [0, 0, 0]


def test_report_rows_oracle_lower_bound_and_deterministic_split():
    rng = np.random.default_rng(0)
    utts, lm = [], []
    for i in range(40):
        ref = "w1 w2 w3 w4"
        hyps = [("w1 w2 w3 x4", -1.0), ("w1 w2 w3 w4", -1.0 - rng.random()), ("x1 w2 x3 w4", -1.5)]
        utts.append(_utt(f"u{i:02d}", ref, hyps))
        lm.append([-5.0, -1.0, -9.0] if i % 4 else [-1.0, -5.0, -9.0])
    rep = rerank_report(utts, {"good": lm, "flat": [[0.0] * 3] * 40}, [0.05, 0.5, 1.0], 0.5, 200, seed=0)
    rows = rep["rows"]
    assert rep["dev_utterances"] == 20 and rep["test_utterances"] == 20
    assert rows["oracle"]["wer"] == 0.0
    for name in ("none", "good", "flat"):
        assert rows[name]["wer"] >= rows["oracle"]["wer"]
        assert rows[name]["ci95"][0] <= rows[name]["wer"] <= rows[name]["ci95"][1]
    assert rows["none"]["wer"] == 25.0  # the first-pass best always has one error in four words
    assert rows["flat"]["wer"] == rows["none"]["wer"]
    assert rows["good"]["wer"] < rows["none"]["wer"]
    assert rows["good"]["lambda"] in (0.05, 0.5, 1.0)
    assert split_dev_test(utts, 0.5, 0) == split_dev_test(list(reversed(utts)), 0.5, 0)


def test_report_rejects_scores_of_the_wrong_shape():
    utts = [_utt("a", "x y", [("x y", -1.0), ("x z", -2.0)]), _utt("b", "x y", [("x y", -1.0)])]
    with pytest.raises(ValueError, match="utterance 'a': 1 values for 2 hypotheses"):
        rerank_report(utts, {"bad": [[0.0], [0.0]]}, [0.1], 0.5, 10)
