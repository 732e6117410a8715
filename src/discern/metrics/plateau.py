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


def unigram_detector_loss(original_counts, replacement_dist, replaced_frac: float, eval_original_counts=None) -> float:
    """Loss (nats per real token) of the best replaced-token detector that sees only the token.

    ``original_counts``: (V,) counts of the tokens that stay original at real positions (special
    tokens included: they are never replaced).  ``replacement_dist``: (V,) distribution (or
    counts) of the tokens written at replaced positions.  ``replaced_frac``: ``r``.
    ``eval_original_counts``: when given, the detector built from ``original_counts`` is scored
    on a held-out set whose original tokens have these counts (a cross-entropy); otherwise its
    loss on its own distribution (the conditional entropy)."""
    o = np.asarray(original_counts, dtype=np.float64)
    s = np.asarray(replacement_dist, dtype=np.float64)
    if o.shape != s.shape or o.sum() <= 0 or s.sum() <= 0:
        raise ValueError("unigram_detector_loss: need two non-empty (V,) count vectors of one size")
    if not 0.0 <= replaced_frac <= 1.0:
        raise ValueError(f"unigram_detector_loss: replaced_frac must be in [0, 1], got {replaced_frac}")
    r = float(replaced_frac)
    joint_fake = r * s / s.sum()  # P(w, replaced)
    joint_real = (1 - r) * o / o.sum()  # P(w, original)
    pw = joint_fake + joint_real
    if eval_original_counts is None:
        keep = pw > 0
        return float((pw[keep] * binary_entropy(joint_fake[keep] / pw[keep])).sum())
    e = np.asarray(eval_original_counts, dtype=np.float64)
    if e.shape != o.shape or e.sum() <= 0:
        raise ValueError("unigram_detector_loss: eval_original_counts must be a non-empty (V,) vector")
    # the detector's posterior, from the training distribution (add-0.5 on originals for unseen tokens)
    o_s = np.where((o > 0) | (e > 0), o + 0.5, 0.0)
    real_s = (1 - r) * o_s / o_s.sum()
    post = np.clip(joint_fake / np.maximum(joint_fake + real_s, 1e-300), 1e-12, 1 - 1e-12)
    fake_part = joint_fake[joint_fake > 0] * -np.log(post[joint_fake > 0])
    real_w = (1 - r) * e / e.sum()
    real_part = real_w[real_w > 0] * -np.log1p(-post[real_w > 0])
    return float(fake_part.sum() + real_part.sum())


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
