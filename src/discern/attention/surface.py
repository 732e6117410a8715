"""Surface-level behaviour of every head (paper section 3, reference 2.2-2.3).

Per head, averaged over sentences: the attention of a query to itself, to the next and the
previous token, to [CLS], to [SEP] and to punctuation ("." and ","), all divided by the number
of queries T; from [SEP] to [SEP] (divided by the number of [SEP] queries) and from the other
tokens to [SEP] (divided by T minus that number).  Entropy: each row is smoothed as
0.9999 a + 1e-4 / T, then -sum a log a is averaged over the queries; the entropy of the [CLS]
row is reported separately.  Uniform attention has entropy log T.

Shapes: L layers, H heads, T tokens of one sentence.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .extract import Example

PUNCT = {".", ","}
SELECTORS = ("self", "next", "prev", "cls", "sep", "punct", "sep_sep", "rest_sep")


def _positions(ex: Example) -> tuple[list[int], list[int], list[int]]:
    """([CLS] positions, [SEP] positions, punctuation positions) of one example."""
    special = [t for t, w in enumerate(ex.word_ids) if w is None]
    cls = [t for t in special if t == 0]
    sep = [t for t in special if t != 0]
    punct = [t for t, tok in enumerate(ex.tokens) if tok in PUNCT]
    return cls, sep, punct


def token_type_attention(examples: Sequence[Example]) -> dict[str, np.ndarray]:
    """Mean attention of each head to each token type: ``{selector: (L, H)}``."""
    if not examples:
        raise ValueError("token_type_attention: no examples")
    L, H = examples[0].maps.shape[:2]
    acc = {k: np.zeros((L, H)) for k in SELECTORS}
    for ex in examples:
        a = ex.maps.astype(np.float32)  # (L, H, T, T)
        T = a.shape[-1]
        cls, sep, punct = _positions(ex)
        acc["self"] += np.trace(a, axis1=-2, axis2=-1) / T
        acc["next"] += np.trace(a, offset=1, axis1=-2, axis2=-1) / T
        acc["prev"] += np.trace(a, offset=-1, axis1=-2, axis2=-1) / T
        acc["cls"] += a[..., cls].sum((-1, -2)) / T
        acc["sep"] += a[..., sep].sum((-1, -2)) / T
        acc["punct"] += a[..., punct].sum((-1, -2)) / T
        rest = [t for t in range(T) if t not in sep]
        if sep:
            acc["sep_sep"] += a[..., sep, :][..., sep].sum((-1, -2)) / len(sep)
            acc["rest_sep"] += a[..., rest, :][..., sep].sum((-1, -2)) / max(1, len(rest))
    return {k: v / len(examples) for k, v in acc.items()}


def entropies(examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
    """(mean entropy over queries, entropy of the [CLS] row), each (L, H), averaged over sentences."""
    if not examples:
        raise ValueError("entropies: no examples")
    L, H = examples[0].maps.shape[:2]
    mean = np.zeros((L, H))
    cls = np.zeros((L, H))
    for ex in examples:
        a = ex.maps.astype(np.float64)
        T = a.shape[-1]
        a = 0.9999 * a + 1e-4 / T
        ent = -(a * np.log(a)).sum(-1)  # (L, H, T)
        mean += ent.mean(-1)
        cls += ent[..., 0]
    return mean / len(examples), cls / len(examples)
