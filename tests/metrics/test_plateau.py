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


def test_detector_posterior_and_per_batch_gaps():
    from discern.metrics.plateau import detector_gaps, unigram_detector_posterior

    o, s, r = np.array([6.0, 3, 1, 0]), np.array([0.0, 1, 1, 2]), 0.25
    post = unigram_detector_posterior(o, s, r)
    # P(replaced | w) = r s(w) / (r s(w) + (1 - r) o(w)), by hand
    assert post[0] == pytest.approx(1e-12)
    assert post[1] == pytest.approx(0.25 * 0.25 / (0.25 * 0.25 + 0.75 * 0.3))
    assert post[3] == pytest.approx(1 - 1e-12)
    # the expected per-token loss of the posterior on its own distribution is the detector loss
    real, fake = 0.75 * o / o.sum(), 0.25 * s / s.sum()
    expected = float((real * -np.log1p(-post)).sum() + (fake * -np.log(post)).sum())
    assert expected == pytest.approx(unigram_detector_loss(o, s, r), rel=1e-9)
    # the posterior applied to held-out originals gives the held-out reference exactly
    e = np.array([2.0, 2, 1, 0])
    post_e = unigram_detector_posterior(o, s, r, eval_original_counts=e)
    ref = unigram_detector_loss(o, s, r, eval_original_counts=e)
    by_hand = float((0.75 * e / e.sum() * -np.log1p(-post_e)).sum() + (fake[fake > 0] * -np.log(post_e[fake > 0])).sum())
    assert by_hand == pytest.approx(ref, rel=1e-12)
    # gaps: detector BCE minus the model's, per batch; a model equal to the detector has gap 0
    tokens, labels = np.array([1, 2, 1, 0]), np.array([1, 0, 0, 0])
    det = np.where(labels == 1, -np.log(post[tokens]), -np.log1p(-post[tokens]))
    gaps = detector_gaps(post, [(tokens, labels, det), (tokens, labels, det - 0.1), (tokens[:0], labels[:0], det[:0])])
    assert gaps == pytest.approx([0.0, 0.1])


def test_token_only_energy_recovers_per_token_log_odds():
    from discern.metrics.plateau import token_only_energy, token_only_energy_gaps

    # token 0: 20% noise, token 1: 50%, token 2: never noise; offsets a_t fixed per token
    tokens = np.repeat([0, 1, 2], 10_000)
    labels = np.concatenate([np.arange(10_000) < 2_000, np.arange(10_000) < 5_000, np.zeros(10_000, bool)])
    offsets = np.concatenate([np.full(10_000, -1.0), np.full(10_000, 0.5), np.full(10_000, 0.0)])
    f = token_only_energy(tokens, offsets, labels, vocab_size=4)
    # the optimum f[w] + a_w = log odds of noise for that token (ridge 1 of 10,000: negligible)
    assert f[0] - 1.0 == pytest.approx(math.log(0.2 / 0.8), abs=1e-3)
    assert f[1] + 0.5 == pytest.approx(0.0, abs=1e-3)
    assert f[2] < -7  # seen only as data: finite, far towards "data"
    assert np.isfinite(f).all()
    # two identical batches: cross-fitting scores each with the other's fit, i.e. the same f; the
    # plateau is then the per-token conditional entropy, and a model at that loss has gap 0
    ent = (binary_entropy(0.2) + binary_entropy(0.5)) / 3
    bce = np.where(labels, -np.log(np.where(tokens == 0, 0.2, 0.5)),
                   -np.log(np.where(tokens == 0, 0.8, np.where(tokens == 1, 0.5, 1.0))))
    batch = (tokens, offsets, labels, bce)
    ref, gaps, covered, model_loss = token_only_energy_gaps([batch, batch], vocab_size=4)
    assert ref == pytest.approx(ent, abs=1e-3) and model_loss == pytest.approx(float(bce.mean()))
    assert gaps == pytest.approx([0.0, 0.0], abs=1e-3)
    assert covered == 1.0
    # a token rarer than min_count in the fitting half is scored by neither side
    rare = (np.array([3]), np.array([0.0]), np.array([True]), np.array([9.0]))
    both = tuple(np.concatenate([x, r]) for x, r in zip(batch, rare))
    ref2, gaps2, covered2, model_loss2 = token_only_energy_gaps([both, both], vocab_size=4)
    assert model_loss2 == pytest.approx(model_loss)  # the rare token's BCE of 9 is left out
    assert ref2 == pytest.approx(ref, abs=1e-6) and gaps2 == pytest.approx(gaps, abs=1e-6)
    assert covered2 == pytest.approx(30_000 / 30_001)
    with pytest.raises(ValueError):
        token_only_energy_gaps([batch], vocab_size=4)
