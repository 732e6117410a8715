import numpy as np
import pytest

from discern.metrics import (bootstrap_wer_ci, edit_distance, normalize_words, paired_bootstrap, wer,
                             word_errors)


def test_normalize_words():
    assert normalize_words("Don't 'go' -- well-known!  The END.") == [
        "don't", "go", "well", "known", "the", "end"]
    assert normalize_words("\u2018Tis Mrs. Smith\u2019s \u201cbook\u201d, and/or") == [
        "tis", "mrs", "smith's", "book", "and", "or"]
    assert normalize_words("  ") == []
    assert normalize_words("o'clock rock'n'roll") == ["o'clock", "rock'n'roll"]


@pytest.mark.parametrize("ref, hyp, d", [
    ("kitten sitting on the mat", "sitting sitting on mat", 2),  # 1 substitution + 1 deletion
    ("a b c", "a b c", 0),
    ("a b c", "", 3),  # all deletions
    ("", "x y", 2),  # all insertions
    ("", "", 0),
    ("a b c d", "b c d e", 2),  # delete a, insert e
    ("the cat sat", "the bat sat down", 2),  # substitution + insertion
    ("a b", "b a", 2),
])
def test_edit_distance(ref, hyp, d):
    assert edit_distance(ref.split(), hyp.split()) == d
    assert edit_distance(hyp.split(), ref.split()) == d


def test_word_errors_normalises():
    assert word_errors("The cat, sat.", "the CAT sat") == (0, 3)
    assert word_errors("he might even have been made amiable himself",
                       "he might even have been made the amiable himself") == (1, 8)
    assert word_errors("", "uh") == (1, 0)


def test_corpus_wer_exact():
    refs = ["the cat sat on the mat", "hello world", "a b c d"]
    hyps = ["the cat sat on mat", "hello there world", "a x c d"]
    # errors: 1 deletion, 1 insertion, 1 substitution; words: 6 + 2 + 4 = 12
    assert wer(refs, hyps) == pytest.approx(100 * 3 / 12)
    assert wer(["a b"], ["a b"]) == 0.0
    with pytest.raises(ValueError):
        wer(["a"], [])
    with pytest.raises(ValueError):
        wer([""], ["x"])


def test_bootstrap_ci_contains_point_and_is_deterministic():
    rng = np.random.default_rng(3)
    words = rng.integers(5, 25, size=60)
    errors = rng.binomial(words, 0.3)
    point = 100 * errors.sum() / words.sum()
    lo, hi = bootstrap_wer_ci(errors, words, n_boot=500, seed=7)
    assert lo < point < hi
    assert 0 < hi - lo < 30
    assert bootstrap_wer_ci(errors, words, n_boot=500, seed=7) == (lo, hi)
    assert bootstrap_wer_ci(errors, words, n_boot=500, seed=8) != (lo, hi)
    lo99, hi99 = bootstrap_wer_ci(errors, words, n_boot=500, alpha=0.01, seed=7)
    assert lo99 <= lo and hi99 >= hi


def test_bootstrap_ci_zero_width_for_constant_rate():
    words = np.array([4, 8, 12, 20])
    errors = words // 4  # every utterance at exactly 25 %
    lo, hi = bootstrap_wer_ci(errors, words, n_boot=200, seed=0)
    assert lo == pytest.approx(25.0) and hi == pytest.approx(25.0)


def test_paired_bootstrap():
    words = np.full(40, 10)
    a = np.full(40, 3)
    b = a.copy()
    b[:20] = 1  # b is better on half the utterances and never worse
    assert paired_bootstrap(a, b, words, n_boot=300, seed=0) == 1.0
    assert paired_bootstrap(b, a, words, n_boot=300, seed=0) == 0.0
    assert paired_bootstrap(a, a, words, n_boot=300, seed=0) == 0.0  # ties are not improvements
    p = paired_bootstrap(a, b, words, n_boot=300, seed=1)
    assert p == paired_bootstrap(a, b, words, n_boot=300, seed=1)
    mixed = a.copy()
    mixed[:20], mixed[20:] = 2, 4  # as good as a on average
    p = paired_bootstrap(a, mixed, words, n_boot=1000, seed=0)
    assert 0.3 < p < 0.7
    with pytest.raises(ValueError):
        paired_bootstrap(a, b[:3], words)
