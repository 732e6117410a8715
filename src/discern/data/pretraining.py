"""Pre-training examples as ELECTRA (and Electric) build them (``build_pretraining_dataset.py``, reference 1.11).

Sentences of a document are packed up to the target length, never across documents; 5% of
examples get a random target length in [5, L].  Each example is split into segment A and B:
10% of the time a single segment, otherwise A aims at ``(target - 3) // 2`` tokens, and a
sentence that would overflow A still goes into it half of the time.  No next-sentence label.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from discern.core import DataError, DiscernError, derive_seed

from .text import split_sentences as split_paragraph


@dataclass
class PretrainingData:
    input_ids: torch.Tensor  # (N, L) int32, padded with pad_id
    token_type_ids: torch.Tensor  # (N, L) int8
    lengths: torch.Tensor  # (N,)
    pad_id: int

    def __len__(self) -> int:
        return self.input_ids.size(0)

    def batch(self, idx: torch.Tensor) -> dict:
        """Rows ``idx``, trimmed to the longest real length in the batch."""
        L = int(self.lengths[idx].max())
        ids = self.input_ids[idx, :L].long()
        return {
            "input_ids": ids,
            "attention_mask": (torch.arange(L).unsqueeze(0) < self.lengths[idx].unsqueeze(1)).long(),
            "token_type_ids": self.token_type_ids[idx, :L].long(),
        }


def _split_segments(sentences: list[list[int]], target: int, rng: random.Random) -> tuple[list[int], list[int]]:
    first_target = 10**9 if rng.random() < 0.1 else (target - 3) // 2
    first: list[int] = []
    second: list[int] = []
    for sent in sentences:
        if (not first or len(first) + len(sent) < first_target
                or (not second and len(first) < first_target and rng.random() < 0.5)):
            first += sent
        else:
            second += sent
    return first, second


def build_examples(documents: list[list[str]], tokenizer, seq_len: int, seed: int = 0) -> PretrainingData:
    """Tokenise ``documents`` (each a list of sentences) and pack them into examples."""
    rng = random.Random(derive_seed(seed, "pretraining-examples"))
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    flat = [s for doc in documents for s in doc]
    enc = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
    rows: list[tuple[list[int], list[int]]] = []
    pos = 0

    def new_target() -> int:
        return rng.randint(5, seq_len) if rng.random() < 0.05 else seq_len

    for doc in documents:
        sents = [e for e in enc[pos:pos + len(doc)] if e]
        pos += len(doc)
        current: list[list[int]] = []
        length = 0
        target = new_target()
        for i, sent in enumerate(sents):
            current.append(sent)
            length += len(sent)
            if length >= target or i == len(sents) - 1:
                first, second = _split_segments(current, target, rng)
                first = first[: seq_len - 2]
                second = second[: max(0, seq_len - len(first) - 3)]
                rows.append((first, second))
                current, length, target = [], 0, new_target()
    N = len(rows)
    ids = torch.full((N, seq_len), pad_id, dtype=torch.int32)
    seg = torch.zeros((N, seq_len), dtype=torch.int8)
    lengths = torch.zeros(N, dtype=torch.long)
    for r, (a, b) in enumerate(rows):
        toks = [cls_id] + a + [sep_id] + (b + [sep_id] if b else [])
        ids[r, : len(toks)] = torch.tensor(toks, dtype=torch.int32)
        seg[r, len(a) + 2: len(toks)] = 1
        lengths[r] = len(toks)
    return PretrainingData(ids, seg, lengths, pad_id)


def split_sentences(text: str) -> list[str]:
    """Sentences of running prose: paragraph breaks, then the task suite's rule-based splitter."""
    return [s for para in re.split(r"\n\s*\n", text) for s in split_paragraph(para)]


def text_documents(path: Path) -> list[list[str]]:
    """Your own corpus: a UTF-8 ``.txt`` file or a folder of them (searched recursively);
    blank lines separate documents, and each document is split into sentences."""
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: no .txt files to pre-train on")
    docs: list[list[str]] = []
    for f in files:
        raw = f.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise DataError(f"{f}:{line}: not UTF-8 text (byte {raw[e.start]:#04x}); "
                            "pre-training corpora must be UTF-8") from None
        for block in re.split(r"\n\s*\n", text):
            sents = split_sentences(block)
            if sents:
                docs.append(sents)
    return docs


def corpus_documents(names: list[str], max_documents: int = 0) -> list[list[str]]:
    """Documents (lists of sentences) of the named corpora of the data registry."""
    from . import corpora

    docs: list[list[str]] = []
    for name in names:
        if name == "brown":
            docs += [[" ".join(s) for s in d.sentences] for d in corpora.brown()]
        elif name == "sotu":
            docs += [split_sentences(s.text) for s in corpora.sotu()]
        elif name == "austen":
            docs += austen_documents()
        elif name == "moby-dick":
            docs += [split_sentences(c.text) for c in corpora.moby_dick()]
        elif name == "wikitext-2":
            docs += [split_sentences(a) for a in corpora.wikitext2_valid().split("\n = ") if a.strip()]
        elif Path(name).exists():
            docs += text_documents(Path(name))
        else:
            raise DiscernError(f"data.corpora: unknown pre-training corpus '{name}' "
                               "(austen, brown, sotu, moby-dick, wikitext-2, or a .txt file or folder of them)")
    if max_documents:
        rng = random.Random(0)
        docs = rng.sample(docs, min(max_documents, len(docs)))
    return [d for d in docs if d]


_CHAPTER = re.compile(r"^\s*(CHAPTER|Chapter)\s+[IVXLC\d]+\.?\s*$")


def austen_documents(exclude: tuple[str, ...] = ()) -> list[list[str]]:
    """Austen's novels as documents of sentences, one document per chapter; ``exclude`` names
    novels to leave out by id (e.g. ``"sensesensibility"``, to hold a book out of training)."""
    from . import corpora

    docs: list[list[str]] = []
    for novel in corpora.austen():
        if novel.id in exclude:
            continue
        chapter: list[str] = []
        for line in novel.lines + ["CHAPTER 0"]:
            if _CHAPTER.match(line):
                sents = split_sentences("\n".join(chapter))
                if sents:
                    docs.append(sents)
                chapter = []
            else:
                chapter.append(line)
    return docs
