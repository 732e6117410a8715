"""Surface-level behaviour of every head (paper sections 3.1-3.3).

Per head, averaged over sentences: the attention of a query to itself, to the next and the
previous token, to [CLS], to [SEP] and to punctuation ("." and ","), all divided by the number
of queries T; from [SEP] to [SEP] (divided by the number of [SEP] queries) and from the other
tokens to [SEP] (divided by T minus that number).  Entropy: each row is smoothed as
0.9999 a + 1e-4 / T, then -sum a log a is averaged over the queries; the entropy of the [CLS]
row is reported separately.  Uniform attention has entropy log T.

"[CLS]" and "[SEP]" stand for the tokenizer's own start and separator tokens, found by name
(``Example.cls_token`` / ``sep_token``: ``<s>`` and ``</s>`` for MPNet and RoBERTa-style models);
punctuation pieces are found through their word (the word "." or ","), not by a piece's spelling,
so no subword marker is assumed.

Shapes: L layers, H heads, T tokens of one sentence.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .extract import Example

PUNCT = {".", ","}
SELECTORS = ("self", "next", "prev", "cls", "sep", "punct", "sep_sep", "rest_sep")


def _positions(ex: Example) -> tuple[list[int], list[int], list[int]]:
    """([CLS] positions, [SEP] positions, punctuation positions) of one example.

    Special tokens are told apart by the tokenizer's names; if neither name occurs (a tokenizer
    without them), the BERT layout decides: the first special token is [CLS], the others [SEP]."""
    special = [t for t, w in enumerate(ex.word_ids) if w is None]
    cls = [t for t in special if ex.tokens[t] == ex.cls_token][:1]
    sep = [t for t in special if ex.tokens[t] == ex.sep_token and t not in cls]
    if not cls and not sep:
        cls = [t for t in special if t == 0]
        sep = [t for t in special if t != 0]
    punct = [t for t, w in enumerate(ex.word_ids) if w is not None and ex.words[w] in PUNCT]
    return cls, sep, punct


def special_tokens(examples: Sequence[Example]) -> dict[str, str]:
    """The names the "cls" and "sep" selectors stand for: ``{"cls": "[CLS]", "sep": "[SEP]"}`` for
    BERT, ``{"cls": "<s>", "sep": "</s>"}`` for MPNet."""
    if not examples:
        raise ValueError("special_tokens: no examples")
    return {"cls": examples[0].cls_token, "sep": examples[0].sep_token}


def token_type_per_example(examples: Sequence[Example]) -> dict[str, np.ndarray]:
    """Attention of each head to each token type in each sentence: ``{selector: (N, L, H)}``.

    The sentence-level values behind :func:`token_type_attention`, so that intervals can be taken
    over sentences (the paper's Figure 2 averages them over its 1,000 segments)."""
    if not examples:
        raise ValueError("token_type_per_example: no examples")
    L, H = examples[0].maps.shape[:2]
    out = {k: np.zeros((len(examples), L, H)) for k in SELECTORS}
    for n, ex in enumerate(examples):
        a = ex.maps.astype(np.float32)  # (L, H, T, T)
        T = a.shape[-1]
        cls, sep, punct = _positions(ex)
        out["self"][n] = np.trace(a, axis1=-2, axis2=-1) / T
        out["next"][n] = np.trace(a, offset=1, axis1=-2, axis2=-1) / T
        out["prev"][n] = np.trace(a, offset=-1, axis1=-2, axis2=-1) / T
        out["cls"][n] = a[..., cls].sum((-1, -2)) / T
        out["sep"][n] = a[..., sep].sum((-1, -2)) / T
        out["punct"][n] = a[..., punct].sum((-1, -2)) / T
        rest = [t for t in range(T) if t not in sep]
        if sep:
            out["sep_sep"][n] = a[..., sep, :][..., sep].sum((-1, -2)) / len(sep)
            out["rest_sep"][n] = a[..., rest, :][..., sep].sum((-1, -2)) / max(1, len(rest))
    return out


def token_type_attention(examples: Sequence[Example]) -> dict[str, np.ndarray]:
    """Mean attention of each head to each token type over the sentences: ``{selector: (L, H)}``."""
    if not examples:
        raise ValueError("token_type_attention: no examples")
    return {k: v.mean(0) for k, v in token_type_per_example(examples).items()}


def uniform_share(examples: Sequence[Example], selector: str = "sep") -> np.ndarray:
    """(N,) the share of a query's attention that ``selector`` ("cls" or "sep") would get if the
    query attended uniformly over its sentence: (number of such tokens) / T."""
    idx = {"cls": 0, "sep": 1}[selector]
    return np.array([len(_positions(ex)[idx]) / len(ex.word_ids) for ex in examples])


def middle_layers(n_layers: int) -> tuple[int, int]:
    """0-based ``(first, last)`` layers of the paper's middle span, scaled to the model's depth.

    Section 3: "over half of the attention in layers 6-10 goes to [SEP]" for BERT-base's 12
    layers, i.e. 1-based layers L/2 ... 5L/6 (6-10 of 12, 3-5 of MiniLM's 6)."""
    if n_layers < 1:
        raise ValueError("middle_layers: need at least one layer")
    first = max(1, n_layers // 2)
    last = max(first, (5 * n_layers) // 6)
    return first - 1, last - 1


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
