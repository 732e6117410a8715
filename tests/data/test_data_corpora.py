"""Corpus readers: exact counts on the installed data, and clear errors on malformed files.

The real-data tests read the default data root (``$DISCERN_DATA``, prepared by
``make setup``); ``fetch`` is called first and returns at once when installed.
"""

from __future__ import annotations

import collections
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from discern.core.errors import DataError
from discern.data import corpora, registry


@pytest.fixture(scope="module")
def brown_docs():
    registry.fetch("brown")
    return corpora.brown()


@pytest.fixture(scope="module")
def emails():
    registry.fetch("spam-assassin")
    return corpora.spam_assassin()


# ----------------------------------------------------------------------------- real data

def test_brown_counts(brown_docs):
    assert len(brown_docs) == 500
    assert sum(len(d.sentences) for d in brown_docs) == 57_340
    assert sum(len(s) for d in brown_docs for s in d.sentences) == 1_161_192
    cats = collections.Counter(d.category for d in brown_docs)
    assert cats == {"learned": 80, "belles_lettres": 75, "lore": 48, "news": 44, "hobbies": 36,
                    "government": 30, "adventure": 29, "fiction": 29, "romance": 29, "editorial": 27,
                    "mystery": 24, "religion": 17, "reviews": 17, "humor": 9, "science_fiction": 6}
    assert len({d.id for d in brown_docs}) == 500


def test_brown_tokens_and_tags(brown_docs):
    d = brown_docs[0]
    assert (d.id, d.category) == ("ca01", "news")
    assert d.sentences[0][:4] == ["The", "Fulton", "County", "Grand"]
    assert d.tagged_sentences[0][:2] == [("The", "at"), ("Fulton", "np-tl")]
    assert all(len(w) == len(t) for doc in brown_docs for w, t in zip(doc.sentences, doc.tags))
    words = {w for doc in brown_docs for s in doc.sentences for w in s}
    assert "1-1/2" in words  # split at the last '/', so fractions survive


def test_sotu_counts():
    registry.fetch("sotu")
    speeches = corpora.sotu()
    assert len(speeches) == 233
    assert (speeches[0].id, speeches[0].president, speeches[0].year) == (
        "1790_george_washington_n", "George Washington", 1790)
    assert speeches[-1].year == 2021 and speeches[-1].party == "Democratic"
    assert sum(len(s.text.split()) for s in speeches) == 1_794_884
    parties = collections.Counter(s.party for s in speeches)
    assert parties["Republican"] == 92 and parties["Democratic"] == 90 and parties["none"] == 7
    assert len({s.id for s in speeches}) == 233


def test_spam_assassin_counts(emails):
    assert len(emails) == 6046
    assert sum(e.is_spam for e in emails) == 1896
    assert collections.Counter(e.group for e in emails) == {
        "easy-ham-1": 2500, "easy-ham-2": 1400, "hard-ham-1": 250, "spam-1": 500, "spam-2": 1396}
    assert len({e.id for e in emails}) == 6046
    assert emails[0].id == "easy-ham-1/00001.7c53336b37003a9286aba55d2945844c"
    assert emails[0].subject == "Re: New Sequences Window"
    assert "Return-Path" not in emails[0].text and "Received:" not in emails[0].text
    # headers are dropped; one spam repeats its headers after a blank line, i.e. in its body
    assert [e.id for e in emails if e.text.startswith(("Return-Path:", "Received:"))] == [
        "spam-2/00403.90a79abcb32065d5381a74a84da2e6bd"]
    assert sum(1 for e in emails if not e.text) == 14  # image-only HTML spam, kept with its subject


def test_moby_dick_sections():
    registry.fetch("moby-dick")
    ch = corpora.moby_dick()
    assert len(ch) == 139
    assert [c.id for c in ch[:4]] == ["contents", "etymology", "extracts", "chapter_1"]
    assert ch[3].title == "Loomings." and ch[-1].id == "epilogue"
    assert sum(len(c.text.split()) for c in ch) == 212_008


def test_wikitext2_valid(tmp_path):
    text = corpora.wikitext2_valid(_installed_or_skip("wikitext-2"))
    assert len(text.split()) == 213_886 and len(text.splitlines()) == 3_760


def test_austen_novels():
    registry.fetch("austen")
    novels = corpora.austen()
    assert [n.title for n in novels] == ["Sense & Sensibility", "Pride & Prejudice", "Mansfield Park",
                                         "Emma", "Northanger Abbey", "Persuasion"]
    assert sum(len(n.lines) for n in novels) == 73_422
    assert sum(len(line.split()) for n in novels for line in n.lines) == 717_537
    assert novels[1].lines[0] == "PRIDE AND PREJUDICE"


def test_fashion_mnist():
    registry.fetch("fashion-mnist")
    x, y = corpora.fashion_mnist("train")
    assert x.shape == (60_000, 28, 28) and x.dtype == np.uint8 and y.shape == (60_000,)
    assert np.bincount(y).tolist() == [6000] * 10
    x, y = corpora.fashion_mnist("test")
    assert x.shape == (10_000, 28, 28) and np.bincount(y).tolist() == [1000] * 10


def _installed_or_skip(name: str) -> Path:
    """Local-copy datasets are installed by ``make setup`` (``--from ../shared/data``)."""
    if not registry.is_installed(name):
        pytest.skip(f"{name} not installed (run: {registry.install_hint(name)})")
    return registry.path(name)


# ----------------------------------------------------------------------------- malformed input

def _brown_copy(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "brown"
    d.mkdir()
    (d / "cats.txt").write_text("ca01 news\n")
    (d / "ca01").write_text(body)
    return d


def test_brown_token_without_tag_names_file_and_line(tmp_path):
    d = _brown_copy(tmp_path, "\n\n\tThe/at jury/nn\n\n\tsaid/vbd Friday ./.\n")
    with pytest.raises(DataError) as e:
        corpora.brown(d)
    assert str(e.value) == f"{d / 'ca01'}:5: token 'Friday' is not WORD/TAG"


def test_brown_empty_tag_and_bad_cats(tmp_path):
    d = _brown_copy(tmp_path, "\tThe/at jury/\n")
    with pytest.raises(DataError, match=r"ca01:1: token 'jury/' is not WORD/TAG"):
        corpora.brown(d)
    (d / "cats.txt").write_text("ca01 news\nca02\n")
    with pytest.raises(DataError, match=r"cats.txt:2: expected 'FILEID CATEGORY'"):
        corpora.brown(d)
    (d / "cats.txt").write_text("")
    with pytest.raises(DataError, match="ca01: corpus file not listed in"):
        corpora.brown(d)
    (d / "ca01").write_text("\tThe/at jury/nn\n")
    (d / "cats.txt").write_text("ca01 news\nca02 news\n")
    with pytest.raises(DataError, match="ca02: file is missing"):
        corpora.brown(d)


def test_brown_reads_a_small_copy(tmp_path):
    d = _brown_copy(tmp_path, "\n\n\tThe/at 1-1/2/cd jury/nn\n\n\n\tsaid/vbd ./.\n")
    [doc] = corpora.brown(d)
    assert doc.sentences == [["The", "1-1/2", "jury"], ["said", "."]]
    assert doc.tags == [["at", "cd", "nn"], ["vbd", "."]]


def test_sotu_malformed(tmp_path):
    d = tmp_path / "sotu" / "data"
    d.mkdir(parents=True)
    p = d / "1790_x_n.json"
    p.write_text(json.dumps({"year": 1790, "name": "X", "text": "t"}))
    with pytest.raises(DataError) as e:
        corpora.sotu(d.parent)
    assert str(e.value) == f"{p}: missing field 'party' (expected year, name, party, text)"
    p.write_text('{"year": 1790,\n "name": "X",\n "party": }')
    with pytest.raises(DataError, match=r"1790_x_n.json:3: invalid JSON"):
        corpora.sotu(d.parent)
    p.write_text(json.dumps({"year": "1790", "name": "X", "party": "n", "text": "t"}))
    with pytest.raises(DataError, match="field 'year' should be int, got str"):
        corpora.sotu(d.parent)
    p.write_text(json.dumps({"year": 1790, "name": "X", "party": "n", "text": "t"}))
    assert corpora.sotu(d.parent)[0].id == "1790_x_n"


def test_moby_dick_missing_section(tmp_path):
    d = tmp_path / "moby" / "data"
    d.mkdir(parents=True)
    (d / "file_list.json").write_text(json.dumps(["chapter_1.txt"]))
    with pytest.raises(DataError, match=r"chapter_1.json: file is missing"):
        corpora.moby_dick(d.parent)


def _spam_copy(tmp_path: Path, rel: str, raw: bytes) -> Path:
    d = tmp_path / "spam" / "data"
    (d / rel).parent.mkdir(parents=True)
    (d / rel).write_bytes(raw)
    (d / "file_list.json").write_text(json.dumps([rel]))
    return d.parent


def test_spam_body_decoding(tmp_path):
    raw = (b"From x@y  Thu Aug 22 2002\nReceived: from a\nSubject: =?iso-8859-1?q?Caf=E9?=\n"
           b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"B\"\n\n"
           b"--B\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
           b"Caf=E9 au lait\n--B\nContent-Type: text/html\n\n<p>ignored</p>\n--B--\n")
    [e] = corpora.spam_assassin(_spam_copy(tmp_path, "spam-1/00001.abc.txt", raw))
    assert (e.id, e.group, e.is_spam, e.subject, e.text) == ("spam-1/00001.abc", "spam-1", True, "Café", "Café au lait")


def test_spam_html_only_and_errors(tmp_path):
    raw = b"Subject: hi\nContent-Type: text/html\n\n<html><style>x{}</style><b>Buy</b>&nbsp;now &amp; save</html>\n"
    [e] = corpora.spam_assassin(_spam_copy(tmp_path, "hard-ham-1/00002.def.txt", raw))
    assert not e.is_spam and e.text.split() == ["Buy", "now", "&", "save"]
    root = _spam_copy(tmp_path / "bad", "ham/00001.txt", b"x")
    with pytest.raises(DataError, match="unknown group 'ham'"):
        corpora.spam_assassin(root)
    (root / "data" / "file_list.json").write_text(json.dumps(["spam-1/00009.txt"]))
    with pytest.raises(DataError, match=r"spam-1/00009.txt: listed in .*file_list.json but missing"):
        corpora.spam_assassin(root)


def test_austen_truncated_database(tmp_path):
    src = registry.fetch("austen") / "data"
    d = tmp_path / "austen" / "data"
    shutil.copytree(src, d)
    rdb = d / "Rdata.rdb"
    rdb.write_bytes(rdb.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"Rdata.rdb \(object '\w+' at byte \d+\): cannot decompress"):
        corpora.austen(d.parent)


def test_fashion_mnist_bad_header(tmp_path):
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (tmp_path / f).write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0" * 8))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: bad IDX header"):
        corpora.fashion_mnist("train", tmp_path)
    with pytest.raises(DataError, match="split must be 'train' or 'test'"):
        corpora.fashion_mnist("val", tmp_path)
