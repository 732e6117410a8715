"""Trivial-baseline losses of pre-training objectives: the plateaus a model must leave.

A masked LM, a replaced-token detector and a noise-contrastive energy model can each reach a
loss without reading any context.  These functions give that loss exactly, from token counts
of the run's own corpus and tokenizer, so a run's curve can be read against it:

- **MLM / generator** cross-entropy: the unigram entropy ``H(u) = -sum_w u(w) log u(w)`` of the
  tokens that can be masked (a model that predicts the corpus frequencies everywhere);
- **replaced-token detection** (ELECTRA): the Bayes-optimal detector that sees only the token at
  each position.  With ``r`` the replaced fraction of real tokens, ``s`` the distribution of
  replacement tokens and ``o`` that of the tokens left original,
  ``P(replaced | w) = r s(w) / (r s(w) + (1 - r) o(w))`` and its loss is the conditional entropy
  ``sum_w P(w) h(P(replaced | w))`` (``h`` the binary entropy, natural log);
- **NCE** (Electric): the prior of the noise rate, ``c h(rho)`` with ``rho`` the noised fraction
  of candidate positions and ``c`` the candidates' share of real tokens (special tokens are
  never noised, which any model learns from the token itself).

All losses are in nats, to compare with PyTorch's cross-entropy.
"""

from __future__ import annotations

import numpy as np


def binary_entropy(p) -> np.ndarray:
    """``h(p) = -p log p - (1-p) log(1-p)`` in nats, elementwise, with ``h(0) = h(1) = 0``."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log1p(-p), 0.0))
    return out


def unigram_entropy(counts) -> float:
    """Entropy (nats) of the distribution proportional to ``counts``."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        raise ValueError("unigram_entropy: no tokens counted")
    p = c[c > 0] / total
    return float(-(p * np.log(p)).sum())


def unigram_cross_entropy(train_counts, eval_counts) -> float:
    """Cross-entropy (nats) on tokens counted by ``eval_counts`` of the unigram model estimated
    from ``train_counts`` (add-0.5 smoothing, so an unseen token costs a finite amount): the
    loss a model without context gets on a held-out set."""
    tr = np.asarray(train_counts, dtype=np.float64)
    ev = np.asarray(eval_counts, dtype=np.float64)
    if tr.shape != ev.shape or tr.sum() <= 0 or ev.sum() <= 0:
        raise ValueError("unigram_cross_entropy: need two non-empty (V,) count vectors of one size")
    seen = (tr > 0) | (ev > 0)
    q = np.where(seen, tr + 0.5, 0.0)
    q = q / q.sum()
    keep = ev > 0
    return float(-(ev[keep] * np.log(q[keep])).sum() / ev.sum())


def _detector_parts(original_counts, replacement_dist, replaced_frac: float):
    o = np.asarray(original_counts, dtype=np.float64)
    s = np.asarray(replacement_dist, dtype=np.float64)
    if o.shape != s.shape or o.sum() <= 0 or s.sum() <= 0:
        raise ValueError("unigram_detector_loss: need two non-empty (V,) count vectors of one size")
    if not 0.0 <= replaced_frac <= 1.0:
        raise ValueError(f"unigram_detector_loss: replaced_frac must be in [0, 1], got {replaced_frac}")
    r = float(replaced_frac)
    return o, r * s / s.sum(), r  # originals, P(w, replaced), r


def unigram_detector_posterior(original_counts, replacement_dist, replaced_frac: float,
                               eval_original_counts=None) -> np.ndarray:
    """``P(replaced | w)`` for every token ``w`` of the vocabulary: the token-only detector of
    :func:`unigram_detector_loss`, clipped to [1e-12, 1 - 1e-12].  With ``eval_original_counts``,
    the originals get add-0.5 smoothing over the tokens seen in either set (the posterior a
    detector built on the training counts applies to held-out tokens)."""
    o, joint_fake, r = _detector_parts(original_counts, replacement_dist, replaced_frac)
    if eval_original_counts is not None:
        e = np.asarray(eval_original_counts, dtype=np.float64)
        if e.shape != o.shape or e.sum() <= 0:
            raise ValueError("unigram_detector_loss: eval_original_counts must be a non-empty (V,) vector")
        o = np.where((o > 0) | (e > 0), o + 0.5, 0.0)
    real = (1 - r) * o / o.sum()
    return np.clip(joint_fake / np.maximum(joint_fake + real, 1e-300), 1e-12, 1 - 1e-12)


def unigram_detector_loss(original_counts, replacement_dist, replaced_frac: float, eval_original_counts=None) -> float:
    """Loss (nats per real token) of the best replaced-token detector that sees only the token.

    ``original_counts``: (V,) counts of the tokens that stay original at real positions (special
    tokens included: they are never replaced).  ``replacement_dist``: (V,) distribution (or
    counts) of the tokens written at replaced positions.  ``replaced_frac``: ``r``.
    ``eval_original_counts``: when given, the detector built from ``original_counts`` is scored
    on a held-out set whose original tokens have these counts (a cross-entropy); otherwise its
    loss on its own distribution (the conditional entropy)."""
    o, joint_fake, r = _detector_parts(original_counts, replacement_dist, replaced_frac)
    if eval_original_counts is None:
        pw = joint_fake + (1 - r) * o / o.sum()
        keep = pw > 0
        return float((pw[keep] * binary_entropy(joint_fake[keep] / pw[keep])).sum())
    post = unigram_detector_posterior(o, replacement_dist, replaced_frac, eval_original_counts)
    e = np.asarray(eval_original_counts, dtype=np.float64)
    fake_part = joint_fake[joint_fake > 0] * -np.log(post[joint_fake > 0])
    real_w = (1 - r) * e / e.sum()
    real_part = real_w[real_w > 0] * -np.log1p(-post[real_w > 0])
    return float(fake_part.sum() + real_part.sum())


def detector_gaps(posterior, batches) -> list[float]:
    """Per held-out batch, the token-only detector's mean BCE minus the model's, in nats per real
    token (positive = the model is below the plateau).  ``batches``: ``(tokens, labels,
    model_bce)`` arrays of one batch's real positions (the tokens the detector sees, 1 where
    replaced, the model's per-token BCE).  The paired differences whose t-interval
    (:func:`discern.metrics.stats.mean_interval`) says whether a discriminator is clearly below
    its plateau."""
    post = np.asarray(posterior, dtype=np.float64)
    gaps = []
    for tokens, labels, model_bce in batches:
        t = np.asarray(tokens, dtype=np.int64)
        y = np.asarray(labels, dtype=bool)
        if t.size == 0:
            continue
        p = post[t]
        det = np.where(y, -np.log(p), -np.log1p(-p))
        gaps.append(float(det.mean() - np.asarray(model_bce, dtype=np.float64).mean()))
    return gaps


def nce_prior_loss(noised_frac: float, candidate_frac: float = 1.0) -> float:
    """Loss of the detector that knows only the noise rate ``rho`` (and the never-noised special
    tokens): ``candidate_frac * h(rho)``; ``h(0.15) = 0.423`` nats."""
    return float(candidate_frac * binary_entropy(noised_frac))


def unigram_references(counts, eval_counts, special_ids) -> dict:
    """The MLM plateaus of a corpus: the unigram entropy of the tokens that can be masked
    (special tokens excluded) and the held-out plateau, the cross-entropy of that unigram model
    on the held-out examples' maskable tokens (what a model without context reaches there)."""
    cand = np.array(counts, dtype=np.float64)
    ev = np.array(eval_counts, dtype=np.float64)
    special = [i for i in special_ids if 0 <= i < len(cand)]
    cand[special] = 0
    ev[special] = 0
    return {"unigram_entropy": unigram_entropy(cand), "unigram_held_out": unigram_cross_entropy(cand, ev)}


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def token_only_energy(tokens, offsets, labels, vocab_size: int, ridge: float = 1.0, iters: int = 30) -> np.ndarray:
    """The best energy that sees only the token, ``f[w]``, for an NCE logit ``f[x_t] + a_t``.

    Electric's logit of "noise" is ``E(x)_t + log q(x_t | context) + log(k / (n - k))``; with the
    offsets ``a_t`` (the last two terms, fixed by the noise model) and the labels ``y_t`` (1 =
    noise), this minimises ``sum_t BCE(f[x_t] + a_t, y_t)`` over one free value per token type:
    first a single constant, then each token's value by Newton steps with a ridge pull of
    ``ridge`` pseudo-positions towards that constant (rare tokens stay near it; a token seen only
    as data still gets a finite value).  Returns ``f`` (V,)."""
    t = np.asarray(tokens, dtype=np.int64)
    a = np.asarray(offsets, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if not (t.shape == a.shape == y.shape) or t.size == 0:
        raise ValueError("token_only_energy: need equal-length, non-empty tokens, offsets and labels")
    def sigmoid(x):
        return np.exp(-np.logaddexp(0.0, -x))

    b = 0.0
    for _ in range(iters):  # the constant: 1-D Newton, steps clipped (the loss is convex)
        p = sigmoid(b + a)
        b -= float(np.clip((p - y).sum() / max((p * (1 - p)).sum(), 1e-12), -5.0, 5.0))
    f = np.full(vocab_size, b)
    for _ in range(iters):
        p = sigmoid(f[t] + a)
        grad = np.bincount(t, p - y, vocab_size) + ridge * (f - b)
        hess = np.bincount(t, p * (1 - p), vocab_size) + ridge
        f -= np.clip(grad / hess, -5.0, 5.0)
    return f


def token_only_energy_gaps(batches, vocab_size: int, min_count: int = 20) -> tuple[float, list[float], float, float]:
    """Electric's no-context plateau on held-out batches, cross-fitted: the token-only energy of
    :func:`token_only_energy` is fitted on every other batch and scored on the rest (and the
    other way round), so it never sees the positions it is scored on.  Only positions whose
    token occurs at least ``min_count`` times in the fitting half are scored (by the plateau and
    by the model alike): there the fitted value is close to the best one, so the plateau is not
    made easy to beat by rare tokens the model knows from far more training data.

    ``batches``: ``(tokens, offsets, labels, model_bce)`` arrays of one batch's real positions.
    Returns the plateau's mean BCE (nats per scored token), per batch the plateau's BCE minus the
    model's (positive = the energy model uses context), the fraction of positions scored, and the
    model's mean BCE on the scored positions (the loss to read against the plateau)."""
    batches = [b for b in batches if len(b[0])]
    if len(batches) < 2:
        raise ValueError("token_only_energy_gaps: need at least two non-empty batches")
    fits, counts = {}, {}
    for half in (0, 1):
        train = [b for i, b in enumerate(batches) if i % 2 != half]
        tokens = np.concatenate([b[0] for b in train]).astype(np.int64)
        fits[half] = token_only_energy(tokens, np.concatenate([b[1] for b in train]),
                                       np.concatenate([b[2] for b in train]), vocab_size)
        counts[half] = np.bincount(tokens, minlength=vocab_size)
    gaps, total, model_total, n, seen = [], 0.0, 0.0, 0, 0
    for i, (tokens, offsets, labels, model_bce) in enumerate(batches):
        t = np.asarray(tokens, dtype=np.int64)
        keep = counts[i % 2][t] >= min_count
        seen += t.size
        if not keep.any():
            continue
        logit = fits[i % 2][t[keep]] + np.asarray(offsets, dtype=np.float64)[keep]
        y = np.asarray(labels, dtype=np.float64)[keep]
        bce = _softplus(logit) - y * logit
        model_kept = np.asarray(model_bce, dtype=np.float64)[keep]
        total += float(bce.sum())
        model_total += float(model_kept.sum())
        n += bce.size
        gaps.append(float(bce.mean() - model_kept.mean()))
    if not gaps:
        raise ValueError(f"token_only_energy_gaps: no token occurs {min_count} times in a fitting half")
    return total / n, gaps, n / seen, model_total / n
