"""Pre-training examples as ELECTRA (and Electric) build them (the official
``build_pretraining_dataset.py``).

Sentences of a document are packed up to the target length, never across documents; 5% of
examples get a random target length in [5, L].  Each example is split into segment A and B:
10% of the time a single segment, otherwise A aims at ``(target - 3) // 2`` tokens, and a
sentence that would overflow A still goes into it half of the time.  No next-sentence label.

:func:`build_examples` packs a corpus in memory; :func:`write_examples` streams one (e.g. from
:func:`iter_text_documents`) into memmapped files read by :class:`MemmapPretrainingData`, with
the same rows for the same documents and seed, so a corpus larger than RAM pre-trains too.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from discern.core import DataError, DiscernError, atomic_write_json, derive_seed

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


def _encode_documents(documents: Iterable[list[str]], encode: Callable[[list[str]], list[list[int]]],
                      chunk_sentences: int) -> Iterator[list[list[int]]]:
    """Token ids of each document's sentences, in order, tokenising whole documents in batches
    of at least ``chunk_sentences`` sentences (one document is never split across batches)."""
    pending: list[list[str]] = []
    count = 0

    def flush() -> Iterator[list[list[int]]]:
        flat = [s for doc in pending for s in doc]
        enc = encode(flat) if flat else []
        pos = 0
        for doc in pending:
            yield enc[pos:pos + len(doc)]
            pos += len(doc)

    for doc in documents:
        pending.append(doc)
        count += len(doc)
        if count >= chunk_sentences:
            yield from flush()
            pending, count = [], 0
    yield from flush()


def _pack(encoded: Iterable[list[list[int]]], seq_len: int, seed: int,
          split_long: bool = False) -> Iterator[tuple[list[int], list[int]]]:
    """Segments (A, B) of each example, packed as ELECTRA's build_pretraining_dataset.py does:
    a document's sentences accumulate until they reach the target length (or the document
    ends), never across documents; a new target is drawn after every example and at every
    document.  The one random sequence comes from ``seed``.  What overflows an example is cut,
    as there, which for a sentence longer than an example drops all but its start;
    ``split_long`` instead makes such a sentence's whole ``seq_len - 2``-token pieces examples
    of one segment each (after the sentences before it) and packs only its remainder, so a
    text without sentence ends (one line of a million words) keeps all of its tokens."""
    rng = random.Random(derive_seed(seed, "pretraining-examples"))
    piece = max(1, seq_len - 2)

    def new_target() -> int:
        return rng.randint(5, seq_len) if rng.random() < 0.05 else seq_len

    def example(sentences: list[list[int]], target: int) -> tuple[list[int], list[int]]:
        first, second = _split_segments(sentences, target, rng)
        first = first[: seq_len - 2]
        return first, second[: max(0, seq_len - len(first) - 3)]

    for doc in encoded:
        sents = [e for e in doc if e]
        current: list[list[int]] = []
        length = 0
        target = new_target()
        for i, sent in enumerate(sents):
            if split_long and len(sent) > piece:
                if current:
                    yield example(current, target)
                    current, length, target = [], 0, new_target()
                whole = len(sent) // piece * piece
                yield from ((sent[j:j + piece], []) for j in range(0, whole, piece))
                sent = sent[whole:]
                if not sent:
                    continue
            current.append(sent)
            length += len(sent)
            if length >= target or i == len(sents) - 1:
                yield example(current, target)
                current, length, target = [], 0, new_target()


def _rows_to_arrays(rows: list[tuple[list[int], list[int]]], seq_len: int, cls_id: int, sep_id: int,
                    pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[CLS] A [SEP] (B [SEP])`` per row: ids (n, L) int32 padded with ``pad_id``, segments
    (n, L) int8 (1 on B and its [SEP]) and lengths (n,) int64."""
    n = len(rows)
    len_a = np.fromiter((len(a) for a, _ in rows), dtype=np.int64, count=n)
    len_b = np.fromiter((len(b) for _, b in rows), dtype=np.int64, count=n)
    lengths = len_a + 2 + np.where(len_b > 0, len_b + 1, 0)
    flat = np.fromiter(itertools.chain.from_iterable(
        itertools.chain((cls_id,), a, (sep_id,), b, (sep_id,) if b else ()) for a, b in rows),
        dtype=np.int32, count=int(lengths.sum()))
    pos = np.arange(seq_len)[None, :]  # (1, L)
    real = pos < lengths[:, None]  # (n, L)
    ids = np.full((n, seq_len), pad_id, dtype=np.int32)
    ids[real] = flat  # row-major order: row r's tokens in its first lengths[r] slots
    seg = (real & (pos >= (len_a + 2)[:, None])).astype(np.int8)
    return ids, seg, lengths


def _special_ids(tokenizer) -> tuple[int, int, int]:
    ids = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    if any(i is None for i in ids):
        raise DataError(f"tokenizer {type(tokenizer).__name__}: pre-training examples need [CLS], [SEP] "
                        f"and [PAD] tokens (got cls={ids[0]}, sep={ids[1]}, pad={ids[2]})")
    return ids


def _encoder(tokenizer) -> Callable[[list[str]], list[list[int]]]:
    return lambda texts: tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                                   return_token_type_ids=False)["input_ids"]


def build_examples(documents: list[list[str]], tokenizer, seq_len: int, seed: int = 0) -> PretrainingData:
    """Tokenise ``documents`` (each a list of sentences) and pack them into examples in memory
    (see :func:`write_examples` for a corpus larger than RAM; both give the same rows)."""
    cls_id, sep_id, pad_id = _special_ids(tokenizer)
    rows = list(_pack(_encode_documents(documents, _encoder(tokenizer), 1000), seq_len, seed))
    ids, seg, lengths = _rows_to_arrays(rows, seq_len, cls_id, sep_id, pad_id)
    return PretrainingData(torch.from_numpy(ids), torch.from_numpy(seg), torch.from_numpy(lengths), pad_id)


# ---------------------------------------------------------------- examples on disk, beyond RAM

_FORMAT = 1
_FILES = {"input_ids": ("input_ids.int32", np.int32), "token_type_ids": ("token_type_ids.int8", np.int8),
          "lengths": ("lengths.int64", np.int64)}
_META = "meta.json"  # written last and atomically: its presence with "complete": true marks a finished set


class MemmapPretrainingData:
    """Pre-training examples in a folder written by :func:`write_examples`, kept on disk so
    memory stays bounded whatever the corpus size; same interface as :class:`PretrainingData`
    (``len``, ``pad_id``, ``batch(idx)``, ``lengths``).

    ``input_ids`` (N, L) int32 and ``token_type_ids`` (N, L) int8 are read-only
    ``numpy.memmap`` arrays; ``lengths`` (N,) is a torch int64 tensor over a copy-on-write map
    of the (read-only) file.  :meth:`batch` reads its rows with positional reads
    (``os.preadv``) by default: rows served through a memory map stay mapped, and the
    kernel's fault-around maps ~64 KiB of cached file around each, so a process's RSS grows
    towards the file size under random access (clean, reclaimable pages, but counted);
    ``positional_reads=False`` reads through the memmaps instead (same rows).  Pickling (e.g.
    to DataLoader workers) carries the folder, not the rows."""

    def __init__(self, folder: str | Path, positional_reads: bool = True):
        self.folder = Path(folder)
        meta = _complete_meta(self.folder)
        if meta is None:
            raise DataError(f"{self.folder}: not a complete set of pre-training examples "
                            f"(no {_META} with \"complete\": true, or files of the wrong size); "
                            "build it with discern.data.pretraining.write_examples")
        self.meta = meta
        self.pad_id: int = meta["pad_id"]
        self.seq_len: int = meta["seq_len"]
        self.positional_reads = positional_reads and hasattr(os, "preadv")
        n, L = meta["examples"], meta["seq_len"]
        self.input_ids = _open(self.folder, "input_ids", (n, L), "r")
        self.token_type_ids = _open(self.folder, "token_type_ids", (n, L), "r")
        self.lengths = torch.from_numpy(_open(self.folder, "lengths", (n,), "c"))
        self._files: dict = {}

    def __len__(self) -> int:
        return self.meta["examples"]

    def __getstate__(self) -> dict:
        return {"folder": str(self.folder), "positional_reads": self.positional_reads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["folder"], state.get("positional_reads", True))

    def _read(self, name: str, rows: np.ndarray, width: int) -> np.ndarray:
        """Rows ``rows`` (non-negative) of file ``name``, each ``width`` items, by ``os.preadv``."""
        file, dtype = _FILES[name]
        if name not in self._files:
            self._files[name] = open(self.folder / file, "rb", buffering=0)
        fd = self._files[name].fileno()
        out = np.empty((len(rows), width), dtype=dtype)
        nbytes = width * out.itemsize
        for r, k in enumerate(rows.tolist()):
            if os.preadv(fd, [out[r]], k * nbytes) != nbytes:
                raise DataError(f"{self.folder / file}: shorter than {_META} says (row {k}); rebuild it")
        return out

    def batch(self, idx) -> dict:
        """Rows ``idx`` (a tensor, array or list of indices) as long tensors, trimmed to the
        longest real length in the batch; equal to :meth:`PretrainingData.batch`."""
        i = np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx, dtype=np.int64).reshape(-1)
        n = len(self)
        if ((i < -n) | (i >= n)).any():
            raise IndexError(f"index {int(i[(i < -n) | (i >= n)][0])} is out of bounds for {n} examples")
        i = np.where(i < 0, i + n, i)
        if self.positional_reads:
            lengths = torch.from_numpy(self._read("lengths", i, 1)[:, 0])
            L = int(lengths.max())
            ids = self._read("input_ids", i, self.seq_len)[:, :L]
            seg = self._read("token_type_ids", i, self.seq_len)[:, :L]
        else:
            lengths = torch.from_numpy(np.asarray(self.lengths.numpy()[i]))
            L = int(lengths.max())
            ids, seg = self.input_ids[i, :L], self.token_type_ids[i, :L]
        return {
            "input_ids": torch.from_numpy(np.ascontiguousarray(ids)).long(),
            "attention_mask": (torch.arange(L).unsqueeze(0) < lengths.unsqueeze(1)).long(),
            "token_type_ids": torch.from_numpy(np.ascontiguousarray(seg)).long(),
        }


def _open(folder: Path, name: str, shape: tuple, mode: str) -> np.ndarray:
    file, dtype = _FILES[name]
    if shape[0] == 0:  # an empty file cannot be mapped
        return np.zeros(shape, dtype=dtype)
    return np.memmap(folder / file, dtype=dtype, mode=mode, shape=shape)


def _complete_meta(folder: Path) -> dict | None:
    """``meta.json`` of a finished set whose files have the sizes it records, else None."""
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        n, L = int(meta["examples"]), int(meta["seq_len"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if meta.get("complete") is not True or meta.get("format") != _FORMAT:
        return None
    for name, (file, dtype) in _FILES.items():
        want = n * (1 if name == "lengths" else L) * np.dtype(dtype).itemsize
        try:
            if (folder / file).stat().st_size != want:
                return None
        except OSError:
            return None
    return meta


def _vocab_sha256(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: (kv[1], kv[0]))
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()


def fast_tokenizer(tokenizer):
    """``tokenizer`` itself when it is a fast (Rust ``tokenizers``) one, else a
    ``PreTrainedTokenizerFast`` converted from it by transformers' slow-to-fast converter; a
    tokenizer with no converter is returned unchanged (slower, same ids)."""
    if getattr(tokenizer, "is_fast", False):
        return tokenizer
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import SLOW_TO_FAST_CONVERTERS

    name = type(tokenizer).__name__
    converter = SLOW_TO_FAST_CONVERTERS.get(name) or SLOW_TO_FAST_CONVERTERS.get(name.removesuffix("Legacy"))
    if converter is None:
        return tokenizer
    return PreTrainedTokenizerFast(tokenizer_object=converter(tokenizer).converted(),
                                   **{k: str(v) for k, v in tokenizer.special_tokens_map.items()
                                      if isinstance(v, str)})


def write_examples(documents: Iterable[list[str]], tokenizer, seq_len: int, seed: int, folder: str | Path,
                   *, source: str = "", chunk_sentences: int = 1000, chunk_rows: int = 2048,
                   progress: Callable[[int], None] | None = None, split_long: bool = False) -> MemmapPretrainingData:
    """Stream ``documents`` (an iterable of lists of sentences, read once), tokenise them
    ``chunk_sentences`` at a time with a fast tokenizer, pack them exactly as
    :func:`build_examples` does (same rows for the same documents and seed) and append the rows
    to raw files in ``folder``: ``input_ids.int32`` (N, L), ``token_type_ids.int8`` (N, L),
    ``lengths.int64`` (N,), then ``meta.json`` last and atomically as the completion marker.

    A folder that already holds a complete set built with the same ``seq_len``, ``seed``,
    special ids, vocabulary and ``source`` (a free-form description of the corpus, e.g. its
    paths) is reopened without reading ``documents`` (resume); anything else there is rebuilt.
    Call it from one process and let the others open :class:`MemmapPretrainingData`.
    ``progress(examples_so_far)`` is called after every chunk written.  ``split_long``: a sentence
    longer than an example becomes several pieces instead of being cut (see ``_pack``; the rows
    then differ from :func:`build_examples`'s for such sentences)."""
    folder = Path(folder)
    cls_id, sep_id, pad_id = _special_ids(tokenizer)
    want = {"format": _FORMAT, "seq_len": seq_len, "seed": seed, "cls_id": cls_id, "sep_id": sep_id,
            "pad_id": pad_id, "vocab_size": len(tokenizer), "vocab_sha256": _vocab_sha256(tokenizer),
            "source": source, "split_long": split_long}
    meta = _complete_meta(folder)
    if meta is not None and all(meta.get(k) == v for k, v in want.items()):
        return MemmapPretrainingData(folder)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / _META).unlink(missing_ok=True)  # from here on the folder is incomplete
    encode = _encoder(fast_tokenizer(tokenizer))
    rows_iter = _pack(_encode_documents(documents, encode, chunk_sentences), seq_len, seed, split_long)
    parts = {name: folder / f".{file}.partial" for name, (file, _) in _FILES.items()}
    n = 0
    try:
        with contextlib.ExitStack() as stack:
            out = {name: stack.enter_context(open(p, "wb")) for name, p in parts.items()}
            while rows := list(itertools.islice(rows_iter, chunk_rows)):
                ids, seg, lengths = _rows_to_arrays(rows, seq_len, cls_id, sep_id, pad_id)
                out["input_ids"].write(ids.tobytes())
                out["token_type_ids"].write(seg.tobytes())
                out["lengths"].write(lengths.tobytes())
                n += len(rows)
                if progress is not None:
                    progress(n)
            for f in out.values():
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        for p in parts.values():
            p.unlink(missing_ok=True)
        raise
    for name, p in parts.items():
        os.replace(p, folder / _FILES[name][0])
    atomic_write_json(folder / _META, {**want, "examples": n, "complete": True,
                                       "dtypes": {name: np.dtype(d).name for name, (_, d) in _FILES.items()},
                                       "files": {name: file for name, (file, _) in _FILES.items()}})
    return MemmapPretrainingData(folder)


# ---------------------------------------------------------------- your own text


def split_sentences(text: str) -> list[str]:
    """Sentences of running prose: paragraph breaks, then the task suite's rule-based splitter."""
    return [s for para in re.split(r"\n\s*\n", text) for s in split_paragraph(para)]


def iter_text_documents(path: str | Path) -> Iterator[list[str]]:
    """Documents (lists of sentences) of a UTF-8 ``.txt`` file or a folder of them (searched
    recursively, in sorted order), read line by line: a blank (whitespace-only) line ends a
    document, whose lines are then split into sentences.  Yields exactly what
    :func:`text_documents` returns; a byte that is not UTF-8 is a one-line error naming file:line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder to pre-train on")
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: no .txt files to pre-train on")
    for f in files:
        block: list[str] = []
        with open(f, "rb") as fh:  # binary: lines end at b"\n" only, as the blank-line rule reads them
            for lineno, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{f}:{lineno}: not UTF-8 text (byte {raw[e.start]:#04x}); "
                                    "pre-training corpora must be UTF-8") from None
                if line.strip():
                    block.append(line)
                elif block:
                    if sents := split_sentences("".join(block)):
                        yield sents
                    block = []
        if block and (sents := split_sentences("".join(block))):
            yield sents


def text_documents(path: Path) -> list[list[str]]:
    """Your own corpus: a UTF-8 ``.txt`` file or a folder of them (searched recursively);
    blank lines separate documents, and each document is split into sentences."""
    return list(iter_text_documents(path))


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
