import math

import numpy as np
import pytest

from discern.metrics.plateau import binary_entropy, nce_prior_loss, unigram_detector_loss, unigram_entropy


def test_binary_and_unigram_entropy_exact():
    assert binary_entropy(0.15) == pytest.approx(-(0.15 * math.log(0.15) + 0.85 * math.log(0.85)), abs=1e-12)
    assert binary_entropy(0.0) == 0.0 and binary_entropy(1.0) == 0.0
    assert unigram_entropy([5, 5, 5, 5, 0]) == pytest.approx(math.log(4))
    assert nce_prior_loss(0.15) == pytest.approx(0.4227, abs=1e-4)
    assert nce_prior_loss(0.15, 0.5) == pytest.approx(0.5 * 0.42271, abs=1e-4)
    with pytest.raises(ValueError):
        unigram_entropy([0, 0])


def test_unigram_detector_limits():
    o = np.array([10.0, 5, 3, 2])
    # replacements distributed like the originals: the token says nothing, loss = h(r)
    assert unigram_detector_loss(o, o, 0.2) == pytest.approx(binary_entropy(0.2))
    # disjoint supports: the token says everything
    assert unigram_detector_loss([1, 1, 0, 0], [0, 0, 1, 1], 0.3) == pytest.approx(0.0, abs=1e-12)


def test_unigram_detector_matches_brute_force_conditional_entropy():
    rng = np.random.default_rng(0)
    o, s, r = rng.random(50), rng.random(50), 0.137
    joint = np.stack([(1 - r) * o / o.sum(), r * s / s.sum()])  # (label, token)
    pw = joint.sum(0)
    brute = -(joint * np.log(joint / pw)).sum()
    assert unigram_detector_loss(o, s, r) == pytest.approx(brute, rel=1e-12)
    with pytest.raises(ValueError):
        unigram_detector_loss(o, s[:10], r)
    with pytest.raises(ValueError):
        unigram_detector_loss(o, s, 1.5)


def test_held_out_references_are_cross_entropies():
    from discern.metrics.plateau import unigram_cross_entropy

    tr = np.array([6.0, 3, 1, 0])
    assert unigram_cross_entropy(tr, [1, 0, 0, 0]) == pytest.approx(-math.log(6.5 / 11.5))
    # an unseen held-out token costs a finite amount
    assert math.isfinite(unigram_cross_entropy(tr, [0, 0, 0, 2]))
    # scored on its own distribution (large counts: smoothing negligible) = the conditional entropy
    o, s = np.array([5e6, 3e6, 2e6]), np.array([1.0, 2, 7])
    assert unigram_detector_loss(o, s, 0.15, eval_original_counts=o) == pytest.approx(
        unigram_detector_loss(o, s, 0.15), rel=1e-6)
    # a held-out set unlike the training one costs more
    assert unigram_detector_loss(o, s, 0.15, eval_original_counts=[1.0, 1, 8]) > unigram_detector_loss(o, s, 0.15)


def test_unigram_references_exclude_special_tokens():
    from discern.metrics.plateau import unigram_references

    refs = unigram_references([100, 0, 5, 5, 5], [50, 0, 1, 2, 1], special_ids=[0])
    assert refs["unigram_entropy"] == pytest.approx(math.log(3))
    assert refs["unigram_held_out"] == pytest.approx(-(1 * math.log(5.5 / 16.5) + 2 * math.log(5.5 / 16.5)
                                                       + 1 * math.log(5.5 / 16.5)) / 4)
