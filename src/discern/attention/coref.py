"""Coreference heads on GAP (paper section 4.3; GAP replaces CoNLL-2012 here).

A GAP example is a Wikipedia passage, a pronoun and two candidate names A and B, each marked
coreferent or not.  On examples where exactly one candidate is coreferent, a head "chooses" the
candidate whose head word (the last word of the name) receives more word-level attention from
the pronoun; its accuracy is how often that choice is the coreferent one.  Baselines: the
nearest candidate (smallest word distance to the pronoun), and string match (the candidate
whose head word occurs most often in the passage; ties go to the nearest).

Word maps carry the start token first and the end token last ([CLS] / [SEP] for BERT, <s> / </s>
for MPNet), so word i is column i + 1.  The functions take either a passage's full word maps
(L, H, W+2, W+2) or just the pronoun's rows (L, H, W+2), from :func:`pronoun_rows`, which keeps
long passages of a 144-head model small in memory.

Shapes: L layers, H heads, W words (+ special tokens) of one passage.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from discern.core import DataError
from discern.core.files import brief

_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass
class GapExample:
    id: str
    words: list[str]
    pronoun: int  # word index of the pronoun
    candidates: tuple[int, int]  # word index of A's and B's head word (last word of the name)
    answer: int  # 0 = A, 1 = B


def _word_at(spans: list[tuple[int, int]], offset: int) -> int | None:
    for i, (s, e) in enumerate(spans):
        if s <= offset < e:
            return i
    return None


def read_gap(path: str | Path, max_words: int = 0) -> list[GapExample]:
    """Examples with exactly one coreferent candidate (and, with ``max_words``, no position past it)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no GAP file (run: discern data fetch gap-coreference)")
    out: list[GapExample] = []
    lineno = 1
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            need = {"ID", "Text", "Pronoun-offset", "A", "A-offset", "A-coref", "B", "B-offset", "B-coref"}
            if not need <= set(reader.fieldnames or []):
                raise DataError(f"{p}:1: GAP header must have columns {sorted(need)}")
            for lineno, row in enumerate(reader, 2):
                if None in row or any(v is None for v in row.values()):  # more or fewer fields than the header
                    got = (len(reader.fieldnames) + len(row[None]) if None in row
                           else sum(v is not None for v in row.values()))
                    raise DataError(f"{p}:{lineno}: expected {len(reader.fieldnames)} tab-separated columns "
                                    f"like the header, got {got}")
                ex = _gap_example(p, lineno, row, max_words)
                if ex is not None:
                    out.append(ex)
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{p}:{lineno}: unreadable TSV ({brief(str(e), 100, quote=False)})") from None
    return out


def _gap_example(p: Path, lineno: int, row: dict, max_words: int) -> GapExample | None:
    coref = (row["A-coref"].upper() == "TRUE", row["B-coref"].upper() == "TRUE")
    if coref[0] == coref[1]:
        return None
    text = row["Text"]
    spans = [m.span() for m in _WORD.finditer(text)]
    try:
        pron = _word_at(spans, int(row["Pronoun-offset"]))
        heads = []
        for name in ("A", "B"):
            start = int(row[f"{name}-offset"])
            last = _word_at(spans, start + len(row[name].rstrip()) - 1)
            heads.append(last)
    except ValueError:
        raise DataError(f"{p}:{lineno}: offsets must be integers") from None
    if pron is None or None in heads:
        raise DataError(f"{p}:{lineno}: an offset does not fall on a word of the text")
    if max_words and max(pron, *heads) >= max_words:
        return None
    words = [text[s:e] for s, e in spans]
    return GapExample(row["ID"], words, pron, (heads[0], heads[1]), 0 if coref[0] else 1)


def pronoun_row(ex: GapExample, m: np.ndarray) -> np.ndarray:
    """(L, H, W+2) attention from the pronoun: ``m`` is the word maps (L, H, W+2, W+2) or already the row."""
    if m.ndim == 4:
        return m[..., ex.pronoun + 1, :]
    if m.ndim == 3:
        return m
    raise ValueError(f"expected word maps (L, H, W+2, W+2) or pronoun rows (L, H, W+2), got shape {m.shape}")


def pronoun_rows(examples: Sequence[GapExample], word_maps) -> list[np.ndarray]:
    """The pronoun's row of each passage's word maps (``word_maps`` may be a generator)."""
    return [np.array(pronoun_row(ex, m)) for ex, m in zip(examples, word_maps)]


def head_accuracy(examples: Sequence[GapExample], word_maps: Sequence[np.ndarray]) -> np.ndarray:
    """(L, H) accuracy of every head; ``word_maps[k]`` is (L, H, W+2, W+2) with the start token
    first, or the pronoun's rows (L, H, W+2)."""
    hits = None
    for ex, m in zip(examples, word_maps):
        row = pronoun_row(ex, m)  # (L, H, W+2): attention from the pronoun
        a, b = row[..., ex.candidates[0] + 1], row[..., ex.candidates[1] + 1]
        choice = (b > a).astype(int)  # ties go to A
        h = (choice == ex.answer).astype(float)
        hits = h if hits is None else hits + h
    if hits is None:
        raise ValueError("head_accuracy: no examples")
    return hits / len(examples)


def head_correct(examples: Sequence[GapExample], word_maps: Sequence[np.ndarray], layer: int, head: int) -> np.ndarray:
    """(N,) whether head ``(layer, head)`` chooses the coreferent candidate of each example (the
    per-example outcomes behind :func:`head_accuracy`, for paired tests against a baseline)."""
    out = []
    for ex, m in zip(examples, word_maps):
        row = pronoun_row(ex, m)[layer, head]  # (W+2,): attention from the pronoun
        choice = int(row[ex.candidates[1] + 1] > row[ex.candidates[0] + 1])  # ties go to A
        out.append(choice == ex.answer)
    return np.array(out, dtype=bool)


def baseline_correct(examples: Sequence[GapExample]) -> dict[str, np.ndarray]:
    """(N,) per example: whether the nearest candidate, and string match, choose the coreferent one."""
    nearest, string = [], []
    for ex in examples:
        dist = [abs(c - ex.pronoun) for c in ex.candidates]
        near = int(dist[1] < dist[0])
        nearest.append(near == ex.answer)
        counts = [sum(1 for w in ex.words if w == ex.words[c]) for c in ex.candidates]
        pick = near if counts[0] == counts[1] else int(counts[1] > counts[0])
        string.append(pick == ex.answer)
    return {"nearest": np.array(nearest, dtype=bool), "string_match": np.array(string, dtype=bool)}


def baselines(examples: Sequence[GapExample]) -> dict[str, float]:
    """Accuracy of the nearest-candidate and string-match baselines."""
    if not examples:
        raise ValueError("baselines: no examples")
    return {k: float(v.mean()) for k, v in baseline_correct(examples).items()}
