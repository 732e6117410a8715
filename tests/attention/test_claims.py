"""The pieces behind the claim tests: per-sentence attention, middle layers, paired outcomes."""

import numpy as np
import pytest

from discern.attention.coref import GapExample, baseline_correct, baselines, head_accuracy, head_correct
from discern.attention.extract import Example
from discern.attention.probe import uas_difference
from discern.attention.surface import (middle_layers, token_type_attention, token_type_per_example,
                                       uniform_share)
from discern.attention.syntax import Sentence, dependency_outcomes, relation_accuracy


def _ex(maps, n_sep=1):
    T = maps.shape[-1]
    W = T - 1 - n_sep
    return Example(["w"] * W, ["[CLS]"] + ["w"] * W + ["[SEP]"] * n_sep, [None] + list(range(W)) + [None] * n_sep,
                   maps.astype(np.float16))


def test_middle_layers_scale_the_papers_six_to_ten_of_twelve():
    assert middle_layers(12) == (5, 9)  # 1-based 6-10
    assert middle_layers(6) == (2, 4)  # 1-based 3-5
    assert middle_layers(24) == (11, 19)
    assert middle_layers(1) == (0, 0)
    with pytest.raises(ValueError):
        middle_layers(0)


def test_per_sentence_attention_averages_to_the_token_type_table():
    rng = np.random.default_rng(0)
    exs = []
    for T in (5, 7, 6):
        m = rng.random((2, 3, T, T))
        exs.append(_ex(m / m.sum(-1, keepdims=True)))
    per = token_type_per_example(exs)
    table = token_type_attention(exs)
    assert per["sep"].shape == (3, 2, 3)
    for k in table:
        assert np.allclose(per[k].mean(0), table[k])
    # sentence 1 by hand: mean over its 7 queries of the attention to the last token ([SEP])
    a = exs[1].maps.astype(np.float32)
    assert per["sep"][1] == pytest.approx(a[..., -1].mean(-1), abs=1e-6)
    assert per["cls"][1] == pytest.approx(a[..., 0].mean(-1), abs=1e-6)


def test_uniform_share_of_sep_is_its_count_over_the_tokens():
    exs = [_ex(np.full((1, 1, 5, 5), 0.2)), _ex(np.full((1, 1, 8, 8), 0.125), n_sep=2)]
    assert uniform_share(exs, "sep").tolist() == [1 / 5, 2 / 8]
    assert uniform_share(exs, "cls").tolist() == [1 / 5, 1 / 8]
    # a uniform head gives [SEP] exactly that share
    assert token_type_per_example(exs)["sep"][:, 0, 0] == pytest.approx([1 / 5, 2 / 8], abs=1e-3)


def test_dependency_outcomes_pair_the_head_with_its_offset_baseline():
    s = Sentence(["the", "cat", "sat", "down"], [2, 3, 0, 3], ["det", "nsubj", "root", "advmod"],
                 ["DET", "NOUN", "VERB", "ADV"])
    W = 4
    m = np.full((1, 2, W + 2, W + 2), 1e-3)
    for i, h in enumerate(s.heads):
        m[0, 0, i + 1, h if h > 0 else 0] = 1.0  # head 0: each word's gold head
        m[0, 1, i + 1, min(i + 2, W)] = 1.0  # head 1: the next word
    hc, oc = dependency_outcomes([s, s], [m, m], "det", "dep->head", 0, 0, +1)
    assert hc.tolist() == [True, True] and oc.tolist() == [True, True]
    hc, oc = dependency_outcomes([s], [m], "advmod", "dep->head", 0, 1, -1)
    assert hc.tolist() == [False] and oc.tolist() == [True]  # head 1 looks at "down" itself (zeroed): wrong; offset -1 is "sat": right
    rel = relation_accuracy([s], [m])
    for r in ("det", "nsubj", "advmod"):
        for head in (0, 1):
            got, _ = dependency_outcomes([s], [m], r, "dep->head", 0, head, 1)
            assert got.mean() == rel[r]["dep_to_head"][0, head]
    with pytest.raises(ValueError, match="direction"):
        dependency_outcomes([s], [m], "det", "left", 0, 0, 1)


def test_coref_outcomes_agree_with_the_accuracies():
    words = ["Anna", "met", "Anna", "'", "s", "friend", "Bob", "then", "she", "left"]
    ex = [GapExample("a", words, 8, (2, 6), 0), GapExample("b", words, 8, (2, 6), 1)]
    W = len(words) + 2
    m = np.full((1, 2, W, W), 0.01)
    m[0, 0, 9, 3] = 0.9
    m[0, 1, 9, 7] = 0.9
    assert head_correct(ex, [m, m], 0, 0).tolist() == [True, False]
    assert head_correct(ex, [m, m], 0, 1).tolist() == [False, True]
    assert head_accuracy(ex, [m, m]).tolist() == [[0.5, 0.5]]
    b = baseline_correct(ex)
    assert b["nearest"].tolist() == [False, True] and b["string_match"].tolist() == [True, False]
    assert baselines(ex) == {"nearest": 0.5, "string_match": 0.5}


def test_uas_difference_is_the_word_level_difference_with_a_paired_interval():
    # sentence 1 has 10 scored words, sentence 2 has 1: word-level UAS, not a mean of sentence UAS
    d = uas_difference([10, 0], [5, 1], [10, 1], n_resamples=200, seed=0)
    assert d["mean"] == pytest.approx(100 * (10 - 6) / 11)
    same = uas_difference([3, 4], [3, 4], [5, 5])
    assert same["ci"] == [0.0, 0.0] and same["p_value"] == 1.0
    # a always right where b is always wrong: every resample gives +100
    always = uas_difference([2, 3, 1], [0, 0, 0], [2, 3, 1], n_resamples=200, seed=1)
    assert always["ci"] == pytest.approx([100.0, 100.0]) and always["p_value"] == 0.0
    rng = np.random.default_rng(0)
    n = rng.integers(5, 20, 60)
    a = rng.binomial(n, 0.7)
    b = rng.binomial(n, 0.5)
    r = uas_difference(a, b, n, n_resamples=2000, seed=3)
    assert r["ci"][0] < r["mean"] < r["ci"][1] and r["ci"][0] > 0 and r["p_value"] < 0.01
    assert r == uas_difference(a, b, n, n_resamples=2000, seed=3)  # one seed, one answer
    with pytest.raises(ValueError):
        uas_difference([1], [1, 2], [2, 2])
