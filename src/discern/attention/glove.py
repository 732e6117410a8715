"""GloVe word vectors for the attention-and-words probe (paper section 5, Table 3: "Attn + GloVe").

The paper feeds frozen 100-d GloVe vectors of the candidate head and the dependent to the probe;
the offline package here is GloVe 6B **50d** (Stanford, 400,000 lower-cased words, Wikipedia 2014
+ Gigaword 5): ``glove_6B_50d_emb.npy`` (400000 x 50 float32, row 0 = "the") and
``glove_6B_index.parquet`` (column ``index``: the word of each row).

Lookup lower-cases the word (GloVe 6B is uncased); a word that is not in the vocabulary gets the
zero vector and is counted, so every run can report its out-of-vocabulary rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from discern.core import DataError

VECTORS = "glove_6B_50d_emb.npy"
INDEX = "glove_6B_index.parquet"


def glove_dir() -> Path:
    """The installed GloVe 6B 50d folder (a one-line :class:`DataError` with the install command if absent)."""
    from discern.data.models import model_path

    return Path(model_path("glove-6b-50d"))


@dataclass
class Glove:
    vectors: np.ndarray  # (V, D) float32
    index: dict[str, int]  # lower-cased word -> row
    words: int = field(default=0)  # words looked up so far
    oov: int = field(default=0)  # of which not in the vocabulary

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def oov_rate(self) -> float:
        """Share of looked-up words (tokens, not types) that were not in the vocabulary."""
        return self.oov / self.words if self.words else 0.0

    def row(self, word: str) -> int | None:
        return self.index.get(word.lower())

    def lookup(self, words: Sequence[str]) -> np.ndarray:
        """(W, D) vectors of ``words``; the zero vector (counted as OOV) for an unknown word."""
        out = np.zeros((len(words), self.dim), dtype=np.float32)
        for k, w in enumerate(words):
            r = self.row(w)
            if r is None:
                self.oov += 1
            else:
                out[k] = self.vectors[r]
        self.words += len(words)
        return out

    def embed(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """One (W, D) array per sentence."""
        return [self.lookup(list(s)) for s in sentences]

    def stats(self) -> dict:
        return {"vectors": f"GloVe 6B {self.dim}d", "vocabulary": len(self.index), "words": self.words,
                "oov": self.oov, "oov_rate": self.oov_rate}


def load_glove(folder: str | Path | None = None) -> Glove:
    """GloVe from ``folder`` (default: the installed ``glove-6b-50d``); the vectors are memory-mapped."""
    p = Path(folder) if folder is not None else glove_dir()
    vec, idx = p / VECTORS, p / INDEX
    for f in (vec, idx):
        if not f.is_file():
            raise DataError(f"{p}: no {f.name} (not a GloVe 6B 50d folder)")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"reading {INDEX} needs pyarrow; run: pip install pyarrow") from None
    try:
        table = pq.read_table(idx)
    except Exception as e:  # pyarrow raises its own ArrowInvalid / OSError family
        raise DataError(f"{idx}: unreadable parquet ({str(e).splitlines()[0][:120]})") from None
    if "index" not in table.column_names:
        raise DataError(f"{idx}: no column 'index' (has: {', '.join(table.column_names)})")
    words = table.column("index").to_pylist()
    try:
        vectors = np.load(vec, mmap_mode="r")
    except ValueError as e:
        raise DataError(f"{vec}: not a .npy array ({str(e)[:120]})") from None
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise DataError(f"{vec}: shape {vectors.shape} does not match the {len(words)} words of {INDEX}")
    index: dict[str, int] = {}
    for r, w in enumerate(words):
        if isinstance(w, str):
            index.setdefault(w.lower(), r)  # the first row wins if lower-casing merges two words
    return Glove(vectors, index)
