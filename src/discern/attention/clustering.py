"""Distances between heads (paper section 6).

Each attention row is smoothed as 0.999 a + 0.001 / T; the distance between heads i and j is
the Jensen-Shannon divergence of their rows, summed over every query token of the corpus:

    D(H_i, H_j) = sum_tokens JS(H_i(token), H_j(token)),
    JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m) = 1/2 (sum p log p + sum q log q) - sum m log m,  m = (p + q) / 2.

Any number of layers and heads (the released code hard-codes 144).  The 2-D map uses
scikit-learn's metric MDS on the precomputed distances (n_init 5, max_iter 1000, eps 1e-10).

Shapes: N = layers x heads, T tokens of one sentence.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .extract import Example


def head_distances(examples: Sequence[Example], chunk: int = 16) -> np.ndarray:
    """(N, N) summed JS distances between all heads, N = layers x heads, in layer-major order."""
    if not examples:
        raise ValueError("head_distances: no examples")
    L, H = examples[0].maps.shape[:2]
    N = L * H
    D = np.zeros((N, N))
    for ex in examples:
        T = ex.maps.shape[-1]
        p = 0.999 * ex.maps.astype(np.float64).reshape(N, T, T) + 0.001 / T  # (N, T, T)
        neg_ent = (p * np.log(p)).sum((-1, -2))  # (N,): sum over the sentence's rows of sum p log p
        for s in range(0, N, chunk):
            m = 0.5 * (p[s:s + chunk, None] + p[None])  # (c, N, T, T)
            cross = (m * np.log(m)).sum((-1, -2))  # (c, N)
            D[s:s + chunk] += 0.5 * (neg_ent[s:s + chunk, None] + neg_ent[None]) - cross
    np.fill_diagonal(D, 0.0)
    return np.maximum(D, 0.0)  # tiny negative rounding -> 0


def mds_2d(distances: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, 2) coordinates of the heads from precomputed distances (metric MDS, as the paper)."""
    from sklearn.manifold import MDS

    import inspect

    kw = dict(n_components=2, n_init=5, max_iter=1000, eps=1e-10, random_state=seed)
    params = inspect.signature(MDS.__init__).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8 names the input kind `metric`
        kw.update(metric="precomputed", metric_mds=True, init="random")
    else:
        kw.update(dissimilarity="precomputed")
    return MDS(**kw).fit_transform(distances)
