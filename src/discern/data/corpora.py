"""Readers for the registered text corpora and images, returning plain Python objects.

Every record carries a stable id (derived from the released file names), so the same
example keeps the same id across runs and machines.  Malformed input is a
:class:`~discern.core.errors.DataError` naming the file and line; nothing is skipped silently.
Each reader takes an optional ``root`` (a dataset folder) and otherwise reads the installed
dataset (``discern data fetch NAME``).
"""

from __future__ import annotations

import email
import email.errors
import email.header
import gzip
import html
import json
import re
import struct
import zlib
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from discern.core.errors import DataError

from . import registry

__all__ = [
    "BrownDoc", "Chapter", "Email", "Novel", "Speech",
    "austen", "brown", "fashion_mnist", "moby_dick", "sotu", "spam_assassin", "wikitext2_valid",
]


def _folder(name: str, root: str | Path | None) -> Path:
    return Path(root) if root is not None else registry.path(name)


def _read_text(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{p}: file is missing") from None
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(f"{p}:{line}: not valid UTF-8 ({e.reason})") from None


def _read_json(p: Path):
    text = _read_text(p)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None


# ----------------------------------------------------------------------------- Brown

@dataclass
class BrownDoc:
    """One Brown corpus file: ``sentences[i][j]`` is a word, ``tags[i][j]`` its Brown POS tag."""

    id: str  # file id, e.g. "ca01"
    category: str  # one of the 15 genres of cats.txt, e.g. "news"
    sentences: list[list[str]]
    tags: list[list[str]]

    @property
    def tagged_sentences(self) -> list[list[tuple[str, str]]]:
        return [list(zip(ws, ts)) for ws, ts in zip(self.sentences, self.tags)]


_BROWN_FILE = re.compile(r"c[a-r]\d\d")


def brown(root: str | Path | None = None) -> list[BrownDoc]:
    """The Brown corpus: 500 documents in cats.txt order; tokens split at their last '/'."""
    folder = _folder("brown", root)
    cats_path = folder / "cats.txt"
    cats: list[tuple[str, str]] = []
    for n, line in enumerate(_read_text(cats_path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{cats_path}:{n}: expected 'FILEID CATEGORY', got {line.strip()!r}")
        cats.append((parts[0], parts[1]))
    listed = {f for f, _ in cats}
    if len(listed) != len(cats):
        dup = next(f for f in listed if sum(1 for g, _ in cats if g == f) > 1)
        raise DataError(f"{cats_path}: file id '{dup}' is listed twice")
    unlisted = sorted(p.name for p in folder.iterdir() if _BROWN_FILE.fullmatch(p.name) and p.name not in listed)
    if unlisted:
        raise DataError(f"{folder / unlisted[0]}: corpus file not listed in {cats_path}")
    docs = []
    for fid, cat in cats:
        p = folder / fid
        sents: list[list[str]] = []
        tags: list[list[str]] = []
        for n, line in enumerate(_read_text(p).splitlines(), 1):
            toks = line.split()
            if not toks:
                continue
            ws, ts = [], []
            for tok in toks:
                w, sep, t = tok.rpartition("/")
                if not sep or not w or not t:
                    raise DataError(f"{p}:{n}: token {tok!r} is not WORD/TAG")
                ws.append(w)
                ts.append(t)
            sents.append(ws)
            tags.append(ts)
        docs.append(BrownDoc(fid, cat, sents, tags))
    return docs


# ----------------------------------------------------------------------------- State of the Union

@dataclass
class Speech:
    id: str  # file stem, e.g. "1790_george_washington_n"
    president: str
    party: str  # as released, e.g. "Republican", "Democratic-Republican", "none"
    year: int
    text: str


def sotu(root: str | Path | None = None) -> list[Speech]:
    """State of the Union addresses (233), ordered by file name (year first)."""
    folder = _folder("sotu", root) / "data"
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"{folder}: no speech .json files")
    out = []
    for p in files:
        d = _read_json(p)
        if not isinstance(d, dict):
            raise DataError(f"{p}:1: expected a JSON object with year, name, party, text")
        for key, typ in (("year", int), ("name", str), ("party", str), ("text", str)):
            if key not in d:
                raise DataError(f"{p}: missing field '{key}' (expected year, name, party, text)")
            if not isinstance(d[key], typ) or isinstance(d[key], bool):
                raise DataError(f"{p}: field '{key}' should be {typ.__name__}, got {type(d[key]).__name__}")
        out.append(Speech(p.stem, d["name"], d["party"], d["year"], d["text"]))
    return out


# ----------------------------------------------------------------------------- SpamAssassin

@dataclass
class Email:
    id: str  # "<group>/<file stem>", e.g. "spam-1/00001.7848dde101aa985090474a91ec93fcf0"
    group: str  # easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2
    is_spam: bool
    text: str  # decoded body: text/plain parts, else text/html parts with tags removed
    subject: str = ""


_SPAM_GROUPS = {"easy-ham-1": False, "easy-ham-2": False, "hard-ham-1": False, "spam-1": True, "spam-2": True}
_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n\s*\n+")


def _html_to_text(s: str) -> str:
    s = _SCRIPT.sub(" ", s)
    s = re.sub(r"<(br|p|div|tr|li|h\d)\b[^>]*>", "\n", s, flags=re.I)
    s = html.unescape(_TAG.sub(" ", s))
    s = _SPACES.sub(" ", s)
    return _BLANKS.sub("\n\n", s)


def _decode_part(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "latin-1"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("latin-1")


def _header(msg: Message, key: str) -> str:
    v = msg.get(key)
    if v is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(v)))).strip()
    except (LookupError, UnicodeError, email.errors.HeaderParseError):
        return str(v).strip()


def _email_body(raw: bytes) -> tuple[str, str]:
    """(subject, body text) of one raw email: headers dropped, transfer encodings undone.

    The body is the inline text/plain parts; failing that the text/html parts with tags
    removed; failing that text attachments (.txt/.htm files); failing that the raw payload of
    a message whose MIME structure is broken.  Image-only mail gives an empty body.
    """
    msg = email.message_from_bytes(raw)
    plain, htmls, attached = [], [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        fname = (part.get_filename() or "").lower()
        is_html = "html" in ctype or fname.endswith((".htm", ".html"))
        if not (ctype.startswith("text/") or fname.endswith((".htm", ".html", ".txt"))):
            if not (ctype.startswith("multipart/") and isinstance(part.get_payload(), str)):
                continue  # images, binaries
            is_html = "<html" in part.get_payload().lower()
        text = _decode_part(part)
        text = (_html_to_text(text) if is_html else text).strip()
        if not text:
            continue
        if fname or part.get("Content-Disposition", "").lower().startswith("attachment"):
            attached.append(text)
        elif is_html:
            htmls.append(text)
        else:
            plain.append(text)
    chosen = plain or htmls or attached
    return _header(msg, "Subject"), "\n".join(chosen).strip()


def _file_list(name: str, root: str | Path | None) -> tuple[Path, Path, list]:
    """``data/file_list.json`` of an @stdlib dataset: (data folder, list path, entries)."""
    folder = _folder(name, root) / "data"
    list_path = folder / "file_list.json"
    files = _read_json(list_path)
    if not isinstance(files, list):
        raise DataError(f"{list_path}:1: expected a JSON list of file names")
    return folder, list_path, files


def spam_assassin(root: str | Path | None = None) -> list[Email]:
    """SpamAssassin public corpus (6,046 emails) in the order of ``data/file_list.json``."""
    folder, list_path, files = _file_list("spam-assassin", root)
    out = []
    for k, rel in enumerate(files):
        if not isinstance(rel, str) or rel.count("/") != 1:
            raise DataError(f"{list_path}: entry {k} {rel!r} is not '<group>/<file>'")
        group, fname = rel.split("/")
        if group not in _SPAM_GROUPS:
            raise DataError(f"{list_path}: entry {k} has unknown group '{group}' "
                            f"(expected one of {', '.join(_SPAM_GROUPS)})")
        p = folder / rel
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise DataError(f"{p}: listed in {list_path} but missing") from None
        subject, body = _email_body(raw)
        stem = fname[:-4] if fname.endswith(".txt") else fname
        out.append(Email(f"{group}/{stem}", group, _SPAM_GROUPS[group], body, subject))
    return out


# ----------------------------------------------------------------------------- Moby Dick

@dataclass
class Chapter:
    id: str  # file stem: "contents", "etymology", "extracts", "chapter_1" ... "chapter_135", "epilogue"
    title: str
    text: str


def moby_dick(root: str | Path | None = None) -> list[Chapter]:
    """Moby Dick by section, in book order (``data/file_list.json``)."""
    folder, list_path, files = _file_list("moby-dick", root)
    out = []
    for k, rel in enumerate(files):
        if not isinstance(rel, str) or not rel.endswith(".txt"):
            raise DataError(f"{list_path}: entry {k} {rel!r} is not a .txt file name")
        p = folder / (rel[:-4] + ".json")
        d = _read_json(p)
        for key in ("title", "text"):
            if not isinstance(d, dict) or not isinstance(d.get(key), str):
                raise DataError(f"{p}: missing string field '{key}' (expected chapter, title, text)")
        out.append(Chapter(rel[:-4], d["title"], d["text"]))
    return out


# ----------------------------------------------------------------------------- WikiText-2

def wikitext2_valid(root: str | Path | None = None) -> str:
    """The tokenised WikiText-2 validation text, exactly as released."""
    return _read_text(_folder("wikitext-2", root) / "valid.txt")


# ----------------------------------------------------------------------------- Fashion-MNIST

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


def _idx(p: Path, magic: int):
    import numpy as np

    try:
        data = gzip.decompress(p.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{p}: file is missing") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{p}: not a readable gzip file ({e})") from None
    if len(data) < 8 or struct.unpack(">I", data[:4])[0] != magic:
        raise DataError(f"{p}: bad IDX header (expected magic {magic})")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{p}: IDX body has {body.size} bytes, header says {dims}")
    return body.reshape(dims)


def fashion_mnist(split: str = "train", root: str | Path | None = None):
    """``(images, labels)``: uint8 arrays of shape (N, 28, 28) and (N,); split "train" or "test"."""
    if split not in ("train", "test"):
        raise DataError(f"fashion_mnist split must be 'train' or 'test', got {split!r}")
    folder = _folder("fashion-mnist", root)
    stem = "train" if split == "train" else "t10k"
    images = _idx(folder / f"{stem}-images-idx3-ubyte.gz", 0x803)
    labels = _idx(folder / f"{stem}-labels-idx1-ubyte.gz", 0x801)
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    return images, labels


# ----------------------------------------------------------------------------- Jane Austen

@dataclass
class Novel:
    id: str  # R object name, e.g. "prideprejudice"
    title: str
    lines: list[str]  # the novel's lines as in janeaustenr (blank lines kept as "")


_AUSTEN_TITLES = {  # janeaustenr::austen_books() order
    "sensesensibility": "Sense & Sensibility",
    "prideprejudice": "Pride & Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}


class _RData:
    """A minimal reader of R's XDR serialisation (enough for vectors, lists and attributes)."""

    def __init__(self, data: bytes, where: str):
        if data[:2] != b"X\n":
            raise DataError(f"{where}: not an XDR R serialisation (starts {data[:2]!r})")
        self.b, self.i, self.where = data, 2, where
        self.refs: list = []
        version = self.int()
        self.int(), self.int()
        if version == 3:
            n = self.int()  # length of the native encoding name, then the name
            self.i += n

    def int(self) -> int:
        if self.i + 4 > len(self.b):
            raise DataError(f"{self.where}: truncated R data at byte {self.i}")
        v = struct.unpack_from(">i", self.b, self.i)[0]
        self.i += 4
        return v

    def length(self) -> int:
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def item(self):
        flags = self.int()
        t, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if t in (254, 242, 241, 253, 252, 251, 250):  # NULL, environments, markers
            return None
        if t == 255:  # reference
            idx = flags >> 8 or self.int()
            return self.refs[idx - 1]
        if t == 1:  # symbol
            sym = ("symbol", self.item())
            self.refs.append(sym)
            return sym
        if t in (2, 6, 17):  # pairlist / call / dots: list of (tag, value)
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            out = [(tag[1] if isinstance(tag, tuple) else None, car)]
            if isinstance(cdr, _Pairs):
                out.extend(cdr)
            del attr
            return _Pairs(out)
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.b[self.i: self.i + n]
            self.i += n
            return s.decode("latin-1" if flags & (1 << 14) else "utf-8", errors="replace")
        if t in (10, 13):  # logical, integer
            n = self.length()
            v = list(struct.unpack_from(f">{n}i", self.b, self.i))
            self.i += 4 * n
        elif t == 14:  # double
            n = self.length()
            v = list(struct.unpack_from(f">{n}d", self.b, self.i))
            self.i += 8 * n
        elif t in (16, 19, 20):  # character vector, list, expression
            n = self.length()
            v = [self.item() for _ in range(n)]
        else:
            raise DataError(f"{self.where}: unsupported R object type {t} at byte {self.i - 4}")
        if has_attr:
            attrs = self.item()
            names = dict(attrs).get("names") if isinstance(attrs, _Pairs) else None
            if names is not None and t == 19:
                return dict(zip(names, v))
        return v


class _Pairs(list):
    pass


def _unserialize(data: bytes, where: str):
    return _RData(data, where).item()


def austen(root: str | Path | None = None) -> list[Novel]:
    """Jane Austen's six novels from janeaustenr's lazy-load database (pure Python, no R)."""
    folder = _folder("austen", root) / "data"
    rdx, rdb = folder / "Rdata.rdx", folder / "Rdata.rdb"
    try:
        index = _unserialize(gzip.decompress(rdx.read_bytes()), str(rdx))
        blob = rdb.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"{e.filename}: file is missing") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{rdx}: not a readable gzip file ({e})") from None
    if not isinstance(index, dict) or not isinstance(index.get("variables"), dict):
        raise DataError(f"{rdx}: expected an index with 'variables'")
    compressed = index.get("compressed", [True])
    kind = compressed[0] if isinstance(compressed, list) and compressed else 1
    out = []
    for name, title in _AUSTEN_TITLES.items():
        loc = index["variables"].get(name)
        if not loc or len(loc) != 2:
            raise DataError(f"{rdx}: no entry for '{name}'")
        off, n = int(loc[0]), int(loc[1])
        chunk = blob[off: off + n]
        where = f"{rdb} (object '{name}' at byte {off})"
        try:
            if kind in (1, True):
                data = zlib.decompress(chunk[4:])
            elif kind == 2:
                import bz2
                data = bz2.decompress(chunk[5:])
            elif kind == 3:
                import lzma
                data = lzma.decompress(chunk[5:])
            else:
                data = chunk
        except (zlib.error, OSError, EOFError, ValueError) as e:
            raise DataError(f"{where}: cannot decompress ({e})") from None
        lines = _unserialize(data, where)
        if not isinstance(lines, list) or not all(isinstance(s, str) or s is None for s in lines):
            raise DataError(f"{where}: expected a character vector")
        out.append(Novel(name, title, ["" if s is None else s for s in lines]))
    return out
