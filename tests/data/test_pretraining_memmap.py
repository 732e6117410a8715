"""Pre-training corpora beyond RAM: streamed text documents, examples written to memmapped files
with the same rows as the in-memory builder, resume of a complete folder, tokenizer training
from a stream."""

from __future__ import annotations

import os
import pickle
import random
import re

import numpy as np
import pytest
import torch

from discern.core import DataError
from discern.data.pretraining import (MemmapPretrainingData, build_examples, iter_text_documents,
                                      split_sentences, text_documents, write_examples)
from discern.data.tokenizer import run_tokenizer, train_wordpiece

WORDS = ("the cat sat on a mat while dogs ran quickly through green parks and rivers "
         "unbelievably electrifying pretraining of small discriminators").split()


def _documents(seed: int = 5, n: int = 120) -> list[list[str]]:
    """Documents of 0-12 sentences of 1-40 words (some longer than an example), with an empty
    document and one whose sentences tokenise to nothing."""
    rng = random.Random(seed)
    docs = [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) + "."
             for _ in range(rng.randint(0, 12))] for _ in range(n)]
    docs[3] = []
    docs[7] = ["", "  "]
    return docs


@pytest.fixture(scope="module")
def docs() -> list[list[str]]:
    return _documents()


@pytest.fixture(scope="module")
def tok(docs):
    return train_wordpiece([s for d in docs for s in d], 90)


def _rows(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def arr(x):
        return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return arr(data.input_ids), arr(data.token_type_ids), arr(data.lengths)


@pytest.mark.parametrize("seed", [0, 3])
def test_written_rows_equal_build_examples(tmp_path, docs, tok, seed):
    mem = build_examples(docs, tok, 24, seed=seed)
    disk = write_examples(iter(docs), tok, 24, seed, tmp_path / "ex", chunk_sentences=7, chunk_rows=5)
    assert isinstance(disk, MemmapPretrainingData) and len(disk) == len(mem) > 100
    assert disk.pad_id == mem.pad_id == tok.pad_token_id
    for a, b in zip(_rows(disk), _rows(mem)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b)
    assert isinstance(disk.input_ids, np.memmap) and not disk.input_ids.flags.writeable
    # the same documents and seed always give the same rows; another seed gives other rows
    other = build_examples(docs, tok, 24, seed=seed + 1)
    assert len(other) != len(mem) or not torch.equal(other.input_ids, mem.input_ids)


def test_packing_rules_hold_on_disk(tmp_path, docs, tok):
    d = write_examples(docs, tok, 24, 0, tmp_path)
    ids, seg, lengths = _rows(d)
    cls_id, sep_id, pad_id = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    assert (ids[:, 0] == cls_id).all() and (lengths <= 24).all() and (lengths >= 3).all()
    for r in range(len(d)):
        n = lengths[r]
        assert ids[r, n - 1] == sep_id and (ids[r, n:] == pad_id).all() and (seg[r, n:] == 0).all()
        b = seg[r, :n].nonzero()[0]
        if len(b):  # B runs from just after A's [SEP] to the end, B's own [SEP] included
            assert ids[r, b[0] - 1] == sep_id and list(b) == list(range(b[0], n))


@pytest.mark.parametrize("positional_reads", [True, False])
def test_batch_equals_in_memory_batch(tmp_path, docs, tok, positional_reads):
    mem = build_examples(docs, tok, 24, seed=1)
    write_examples(docs, tok, 24, 1, tmp_path)
    disk = MemmapPretrainingData(tmp_path, positional_reads=positional_reads)
    g = torch.Generator().manual_seed(0)
    for size in (1, 8, 32):
        idx = torch.randint(len(mem), (size,), generator=g)
        a, b = disk.batch(idx), mem.batch(idx)
        assert a.keys() == b.keys() == {"input_ids", "attention_mask", "token_type_ids"}
        for k in a:
            assert a[k].dtype == b[k].dtype == torch.long and torch.equal(a[k], b[k])
    neg = torch.tensor([2, 0, -1, -len(mem)])
    for k, v in disk.batch(neg).items():
        assert torch.equal(v, mem.batch(neg)[k])
    assert torch.equal(disk.batch([2, 0])["input_ids"], mem.batch(torch.tensor([2, 0]))["input_ids"])
    with pytest.raises(IndexError, match=f"index {len(mem)} is out of bounds for {len(mem)} examples"):
        disk.batch(torch.tensor([0, len(mem)]))
    assert torch.equal(disk.lengths, mem.lengths)
    again = pickle.loads(pickle.dumps(disk))  # carries the folder, not the rows
    assert len(pickle.dumps(disk)) < 1000 and again.positional_reads == disk.positional_reads
    assert torch.equal(again.batch(idx)["input_ids"], b["input_ids"])


def _no_documents():
    raise AssertionError("a complete folder must be reopened without reading the corpus")
    yield


def test_complete_folder_is_reopened_not_rebuilt(tmp_path, docs, tok):
    folder = tmp_path / "ex"
    first = write_examples(docs, tok, 24, 2, folder, source="toy")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["input_ids.int32", "lengths.int64", "meta.json", "token_type_ids.int8"]
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = write_examples(_no_documents(), tok, 24, 2, folder, source="toy")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    assert len(again) == len(first) and np.array_equal(_rows(again)[0], _rows(first)[0])
    assert MemmapPretrainingData(folder).meta["examples"] == len(first)


@pytest.mark.parametrize("change", ["no-marker", "not-complete", "truncated", "seq_len", "seed", "source"])
def test_incomplete_or_different_folder_is_rebuilt(tmp_path, docs, tok, change):
    folder = tmp_path / "ex"
    write_examples(docs, tok, 24, 2, folder, source="toy")
    seq_len, seed, source = 24, 2, "toy"
    if change == "no-marker":
        (folder / "meta.json").unlink()
    elif change == "not-complete":
        text = (folder / "meta.json").read_text().replace('"complete": true', '"complete": false')
        (folder / "meta.json").write_text(text)
    elif change == "truncated":
        with open(folder / "input_ids.int32", "r+b") as f:
            f.truncate(100)
    elif change == "seq_len":
        seq_len = 16
    elif change == "seed":
        seed = 4
    else:
        source = "another corpus"
    if change in ("no-marker", "not-complete", "truncated"):
        with pytest.raises(DataError, match="not a complete set of pre-training examples"):
            MemmapPretrainingData(folder)
    read = []

    def spy():
        for d in docs:
            read.append(d)
            yield d

    rebuilt = write_examples(spy(), tok, seq_len, seed, folder, source=source)
    assert len(read) == len(docs)
    expect = build_examples(docs, tok, seq_len, seed=seed)
    for a, b in zip(_rows(rebuilt), _rows(expect)):
        assert np.array_equal(a, b)
    assert sorted(p.name for p in folder.iterdir()) == [
        "input_ids.int32", "lengths.int64", "meta.json", "token_type_ids.int8"]


def test_failed_build_leaves_no_complete_folder(tmp_path, docs, tok):
    folder = tmp_path / "ex"
    write_examples(docs, tok, 24, 2, folder)

    def broken():
        yield from docs[:50]
        raise DataError("corpus.txt:9: not UTF-8 text")

    with pytest.raises(DataError, match="corpus.txt:9"):
        write_examples(broken(), tok, 24, 5, folder)
    assert not (folder / "meta.json").exists() and not list(folder.glob(".*.partial"))
    with pytest.raises(DataError):
        MemmapPretrainingData(folder)


def test_slow_tokenizer_gives_the_same_rows(tmp_path, docs, tok):
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    vocab = tok.get_vocab()
    (tmp_path / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n", encoding="utf-8")
    slow = BertTokenizerLegacy(str(tmp_path / "vocab.txt"))
    assert not slow.is_fast
    disk = write_examples(docs, slow, 24, 0, tmp_path / "ex")
    for a, b in zip(_rows(disk), _rows(build_examples(docs, tok, 24, seed=0))):
        assert np.array_equal(a, b)


def test_empty_corpus(tmp_path, tok):
    d = write_examples([], tok, 24, 0, tmp_path)
    assert len(d) == 0 and d.input_ids.shape == (0, 24) and len(build_examples([], tok, 24)) == 0


# ---------------------------------------------------------------- streamed text files


def _regex_documents(text: str) -> list[list[str]]:
    """The whole-text rule: documents are split at blank lines by ``\\n\\s*\\n``."""
    return [s for s in (split_sentences(b) for b in re.split(r"\n\s*\n", text)) if s]


def test_iter_text_documents_reads_blank_line_separated_documents(tmp_path):
    text = ("Mr. Smith went home. He slept.\nAnd woke\nup!\n\n"
            "  \n\t\n Second doc here.\r\n\r\nThird \x0c one.\n \x0c\u2028\n\n\nFourth? Yes.")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text(text, encoding="utf-8")
    (tmp_path / "a.txt").write_text("\n\nÉté fin.\n", encoding="utf-8")
    (tmp_path / "skip.md").write_text("Not read.\n", encoding="utf-8")
    expect_b = [["Mr. Smith went home.", "He slept.", "And woke up!"], ["Second doc here."],
                ["Third one."], ["Fourth?", "Yes."]]
    assert list(iter_text_documents(tmp_path / "b" / "2.txt")) == expect_b == _regex_documents(text)
    assert list(iter_text_documents(tmp_path)) == [["Été fin."]] + expect_b == text_documents(tmp_path)


def test_iter_text_documents_matches_the_whole_text_rule(tmp_path):
    pieces = ["Hello world.", "Mr. Smith went. He", "ran", "", " ", "\t", "\r", "\x0c", "\u2028",
              "\x1c", "\x85", "A b c! D e?", "été fin."]
    seps = ["\n", "\r\n", " ", "\n\n", "\n \n", "\r", "\x0b"]
    rng = random.Random(0)
    f = tmp_path / "c.txt"
    for _ in range(300):
        text = "".join(rng.choice(pieces) + rng.choice(seps) for _ in range(rng.randint(0, 15)))
        f.write_text(text, encoding="utf-8")
        assert list(iter_text_documents(f)) == _regex_documents(text) == text_documents(f), repr(text)


def test_non_utf8_file_names_file_and_line_while_streaming(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"Good line.\n\nSecond \xc3\xa9 ok\nthird \xff bad\n")
    it = iter_text_documents(f)
    assert next(it) == ["Good line."]  # documents before the bad byte are already served
    with pytest.raises(DataError) as e:
        next(it)
    assert str(e.value) == f"{f}:4: not UTF-8 text (byte 0xff); pre-training corpora must be UTF-8"
    with pytest.raises(DataError, match=re.escape(f"{f}:4: not UTF-8 text (byte 0xff)")):
        text_documents(f)
    f.write_bytes(b"ok\n\xe2\x82")  # truncated sequence at the end of the file
    with pytest.raises(DataError, match=re.escape(f"{f}:2: not UTF-8 text (byte 0xe2)")):
        list(iter_text_documents(f))


def test_missing_corpus_is_one_line_error(tmp_path):
    with pytest.raises(DataError, match="no .txt files"):
        list(iter_text_documents(tmp_path))
    with pytest.raises(DataError, match="no such file"):
        list(iter_text_documents(tmp_path / "nope.txt"))


# ---------------------------------------------------------------- tokenizer from a stream


def test_run_tokenizer_trains_from_a_stream(tmp_path, docs, monkeypatch):
    from discern.data import tokenizer as tokenizer_module

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(d) for d in docs if d), encoding="utf-8")
    sentences = [s for d in text_documents(corpus) for s in d]
    seen = []
    real = tokenizer_module.train_wordpiece

    def spy(texts, vocab_size):
        assert not isinstance(texts, (list, tuple))  # the stream is passed on, not materialised
        seen.append(list(texts))
        return real(seen[-1], vocab_size)

    monkeypatch.setattr(tokenizer_module, "train_wordpiece", spy)
    streamed = run_tokenizer("train", 90, iter_text_documents(corpus))
    fresh = run_tokenizer("train", 90, lambda: iter_text_documents(corpus), saved=tmp_path / "tok")
    listed = run_tokenizer("train", 90, text_documents(corpus))
    assert seen == [sentences] * 3
    assert len(streamed) == len(fresh) == len(listed) == 90
    ids = streamed("unbelievably green rivers", add_special_tokens=False)["input_ids"]
    assert streamed.decode(ids) == "unbelievably green rivers"
    # resume: the saved copy is loaded and the corpus function is never called
    loaded = run_tokenizer("train", 90, lambda: pytest.fail("corpus read on resume"), saved=tmp_path / "tok")
    assert loaded.get_vocab() == fresh.get_vocab() and len(seen) == 3


def test_run_tokenizer_passes_a_corpus_error_through(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"Fine.\n\n\xff\n")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'bad.txt'}:3:")):
        run_tokenizer("train", 60, iter_text_documents(tmp_path / "bad.txt"))
    assert not os.path.exists(tmp_path / "tok")


def _content_tokens(data) -> int:
    """Tokens of a set of examples other than [CLS] and the [SEP] after each segment."""
    _, seg, lengths = _rows(data)
    return int(lengths.sum()) - 2 * len(lengths) - int((seg.sum(1) > 0).sum())


def test_split_long_keeps_every_token_of_a_sentence_longer_than_an_example(tmp_path, tok):
    """A document of one short sentence, one of 5.5 examples' worth of tokens and another short
    one: cut to its first example by the official rule, kept whole with ``split_long``."""
    enc = tok(["the cat sat .", " ".join(["unbelievably"] * 40), "dogs ran ."], add_special_tokens=False)["input_ids"]
    short, long_, last = (len(e) for e in enc)
    assert long_ > 4 * 22  # pieces of seq_len - 2 = 22 tokens
    docs = [["the cat sat .", " ".join(["unbelievably"] * 40), "dogs ran ."]]
    cut = write_examples(iter(docs), tok, 24, 0, tmp_path / "cut")
    kept = write_examples(iter(docs), tok, 24, 0, tmp_path / "kept", split_long=True)
    _, seg, lengths = _rows(kept)
    assert _content_tokens(kept) == short + long_ + last > _content_tokens(cut)
    # the short sentence alone, then the whole 22-token pieces (one segment each), then the rest
    assert lengths[0] == short + 2 and (lengths[1:1 + long_ // 22] == 24).all() and not seg[1:1 + long_ // 22].any()
    assert len(kept) == 1 + long_ // 22 + 1
    # the rows differ from the official packing only through such sentences, and a resumed folder
    # built the other way is rebuilt, not reused
    again = write_examples(iter(docs), tok, 24, 0, tmp_path / "cut", split_long=True)
    assert len(again) == len(kept) and again.meta["split_long"] is True
