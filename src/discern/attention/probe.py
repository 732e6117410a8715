"""Attention-based probing classifiers (paper section 5).

For word j the probe scores every other word i as its head, and ROOT:

* attention only:  s(j -> i) = sum_k w_k a^k_ji + u_k a^k_ij  over all N = layers x heads maps,
  s(j -> ROOT) = sum_k r_k a^k_j,[CLS] + t_k a^k_j,[SEP];
* attention + word vectors ("Attn + GloVe"): the weights depend on the pair,
  w_k = W_k (v_i (+) v_j) and u_k = U_k (v_i (+) v_j), with v frozen word vectors:
  GloVe 6B 50d (``vectors="glove"``, the paper's setting but 50-d where it used 100-d; see
  :mod:`.glove`), or the model's own input embeddings of each word's first piece
  (``vectors="model"``);

trained with softmax cross-entropy over the candidates, Adam (LR 0.002), one sentence per step,
one epoch; scored by UAS (unlabelled attachment, punctuation ignored) on held-out sentences.
The random-init baseline runs the same probe on the maps of a randomly initialised model of the
same architecture.

Shapes: N maps, W words of one sentence (maps are (N, W+2, W+2) with the start token first and
the end token last: [CLS] / [SEP] for BERT, <s> / </s> for MPNet).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .syntax import Sentence


class AttentionProbe(nn.Module):
    def __init__(self, n_maps: int, emb_dim: int = 0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb_dim = emb_dim
        if emb_dim:
            self.pair_w = nn.Linear(2 * emb_dim, n_maps)
            self.pair_u = nn.Linear(2 * emb_dim, n_maps)
            for lin in (self.pair_w, self.pair_u):
                nn.init.normal_(lin.weight, std=0.01, generator=g)
                nn.init.zeros_(lin.bias)
        else:
            self.w = nn.Parameter(torch.randn(n_maps, generator=g) * 0.01)
            self.u = nn.Parameter(torch.randn(n_maps, generator=g) * 0.01)
        self.root_cls = nn.Parameter(torch.zeros(n_maps))
        self.root_sep = nn.Parameter(torch.zeros(n_maps))

    def forward(self, maps: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """maps (N, W+2, W+2) -> scores (W, W+1): column 0 is ROOT, column i is word i (1-based)."""
        a = maps[:, 1:-1, 1:-1]  # (N, W, W) word-to-word
        W = a.shape[-1]
        at = a.transpose(1, 2)  # a^k_ij seen from j
        if self.emb_dim:
            vi = emb.unsqueeze(0).expand(W, W, -1)  # (j, i, E): candidate head i
            vj = emb.unsqueeze(1).expand(W, W, -1)  # (j, i, E): dependent j
            pair = torch.cat([vi, vj], -1)  # (W, W, 2E)
            w = self.pair_w(pair).permute(2, 0, 1)  # (N, W, W)
            u = self.pair_u(pair).permute(2, 0, 1)
            words = (w * a + u * at).sum(0)  # (W, W)
        else:
            words = torch.einsum("k,kji->ji", self.w, a) + torch.einsum("k,kji->ji", self.u, at)
        words = words.masked_fill(torch.eye(W, dtype=torch.bool), -1e9)  # a word is not its own head
        # ROOT_start / ROOT_end: attention to the start token ([CLS], <s>) and the end token ([SEP], </s>)
        root = maps[:, 1:-1, 0].T @ self.root_cls + maps[:, 1:-1, -1].T @ self.root_sep  # (W,)
        return torch.cat([root.unsqueeze(1), words], 1)


def _tensors(sent: Sentence, maps: np.ndarray, emb: np.ndarray | None):
    m = torch.from_numpy(maps.reshape(-1, *maps.shape[-2:]).astype(np.float32))
    e = torch.from_numpy(emb.astype(np.float32)) if emb is not None else None
    return m, e, torch.tensor(sent.heads)


def train_probe(sentences: Sequence[Sentence], maps: Sequence[np.ndarray], embeddings: Sequence[np.ndarray] | None = None,
                lr: float = 0.002, epochs: int = 1, seed: int = 0) -> AttentionProbe:
    """One sentence per Adam step; ``maps[k]`` (L, H, W+2, W+2), ``embeddings[k]`` (W, E) or None."""
    n = int(np.prod(maps[0].shape[:2]))
    emb_dim = embeddings[0].shape[-1] if embeddings is not None else 0
    probe = AttentionProbe(n, emb_dim, seed)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    order = np.random.default_rng(seed).permutation(len(sentences))
    for _ in range(epochs):
        for k in order:
            m, e, gold = _tensors(sentences[k], maps[k], embeddings[k] if embeddings is not None else None)
            loss = nn.functional.cross_entropy(probe(m, e), gold)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return probe


@torch.no_grad()
def uas_counts(probe: AttentionProbe, sentences: Sequence[Sentence], maps: Sequence[np.ndarray],
               embeddings: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per sentence: (correctly attached words, scored words), punctuation dependents not scored."""
    right, scored = [], []
    for k, s in enumerate(sentences):
        m, e, gold = _tensors(s, maps[k], embeddings[k] if embeddings is not None else None)
        pred = probe(m, e).argmax(-1)
        keep = torch.tensor([r != "punct" for r in s.relations])
        right.append(int(((pred == gold) & keep).sum()))
        scored.append(int(keep.sum()))
    return np.array(right), np.array(scored)


def uas(probe: AttentionProbe, sentences: Sequence[Sentence], maps: Sequence[np.ndarray],
        embeddings: Sequence[np.ndarray] | None = None) -> float:
    """Unlabelled attachment score (%), punctuation dependents ignored."""
    right, scored = uas_counts(probe, sentences, maps, embeddings)
    return 100.0 * right.sum() / max(1, scored.sum())


def uas_difference(right_a, right_b, scored, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0) -> dict:
    """UAS(a) - UAS(b) in points on the same sentences, with a paired bootstrap interval over
    sentences: each resample draws sentences with replacement and recomputes both word-level UAS on
    them (``scipy.stats.bootstrap``, paired, BCa; percentile where BCa is undefined).  ``p_value``
    is the share of resamples at or below 0 (one-sided: is ``a`` better?)."""
    import warnings

    from scipy import stats as sps

    ra, rb, n = (np.asarray(v, dtype=np.float64) for v in (right_a, right_b, scored))
    if not (ra.shape == rb.shape == n.shape) or ra.ndim != 1 or ra.size == 0:
        raise ValueError("uas_difference: need three 1-D arrays of the same non-zero length")
    if n.sum() <= 0:
        raise ValueError("uas_difference: no scored words")

    def diff(a, b, t, axis=-1):
        return 100.0 * (a.sum(axis) - b.sum(axis)) / np.maximum(t.sum(axis), 1)

    est = float(diff(ra, rb, n))
    if ra.size < 2 or np.array_equal(ra, rb):
        return {"mean": est, "ci": [est, est], "p_value": 1.0 if est <= 0 else 0.0, "n": int(ra.size),
                "test": f"paired bootstrap over {ra.size} sentences (identical attachments: zero-width interval)"}
    method = "BCa"
    with warnings.catch_warnings():  # a degenerate BCa gives nan; the percentile interval follows
        warnings.simplefilter("ignore")
        res = sps.bootstrap((ra, rb, n), diff, paired=True, vectorized=True, n_resamples=n_resamples,
                            confidence_level=level, method=method, rng=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        method = "percentile"
        res = sps.bootstrap((ra, rb, n), diff, paired=True, vectorized=True, n_resamples=n_resamples,
                            confidence_level=level, method=method, rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    p = float((res.bootstrap_distribution <= 0).mean())
    return {"mean": est, "ci": [lo, hi], "p_value": p, "n": int(ra.size),
            "test": f"paired bootstrap over {ra.size} sentences of the UAS difference ({method} "
                    f"{int(round(level * 100))}%, {n_resamples} resamples)"}


def word_embeddings(model, tokenizer, words_list: Sequence[Sequence[str]], word_ids_list) -> list[np.ndarray]:
    """The model's own input embedding of each word's first piece: (W, E) per sentence."""
    table = model.get_input_embeddings().weight.detach().float().cpu().numpy()
    out = []
    for words, word_ids in zip(words_list, word_ids_list):
        enc = tokenizer(list(words), is_split_into_words=True, add_special_tokens=True)
        first: dict[int, int] = {}
        for t, w in enumerate(word_ids):
            if w is not None and w not in first:
                first[w] = enc["input_ids"][t]
        out.append(table[[first[i] for i in range(len(words))]])
    return out


VECTORS = ("glove", "model")


def probe_vectors(kind: str, words_list: Sequence[Sequence[str]], model=None, tokenizer=None, word_ids_list=None,
                  glove_folder=None) -> tuple[list[np.ndarray], dict]:
    """Word vectors for the attention + words probe and a record of what was used.

    ``kind="glove"``: GloVe 6B 50d (OOV words get the zero vector; the record has the OOV rate);
    when GloVe is not installed the model's input embeddings stand in, and the record says so
    (``used``, ``note``).  ``kind="model"``: the model's input embeddings of each word's first piece."""
    import warnings

    from discern.core import DataError, DiscernError

    if kind not in VECTORS:
        raise DiscernError(f"probe vectors must be one of {', '.join(VECTORS)}, got {kind!r}")
    note = None
    if kind == "glove":
        from .glove import load_glove

        try:
            g = load_glove(glove_folder)
        except DataError as e:
            note = f"GloVe unavailable ({e}); the model's input embeddings stand in"
            warnings.warn(note, stacklevel=2)
        else:
            vecs = g.embed(words_list)
            return vecs, {"requested": kind, "used": "glove", "label": f"GloVe 6B {g.dim}d", **g.stats()}
    if model is None or tokenizer is None or word_ids_list is None:
        raise DiscernError("the model's input embeddings need the model, its tokenizer and the word ids")
    vecs = word_embeddings(model, tokenizer, words_list, word_ids_list)
    info = {"requested": kind, "used": "model", "label": "the model's input embeddings",
            "dim": int(vecs[0].shape[-1]) if vecs else 0}
    if note:
        info["note"] = note
    return vecs, info
