import json
from dataclasses import dataclass

import pytest

from discern.core import DataError, DiscernError
from discern.tasks import SPLITS, TASKS, Task, build_task, get_task, load_task_dir, split_of
from discern.tasks import suite


@dataclass
class Doc:  # the shape of discern.data.corpora.BrownDoc
    id: str
    category: str
    sentences: list


@dataclass
class Speech:
    id: str
    president: str
    party: str
    year: int
    text: str


@dataclass
class Email:
    id: str
    group: str
    is_spam: bool
    text: str
    subject: str = ""


CATS = list(suite.BROWN_COARSE)


def brown_docs(n=60):
    docs = []
    for d in range(n):
        cat = CATS[d % len(CATS)]
        sents = [[f"w{d}", "said", "that", "the", f"thing{j}", "was", cat, "."] for j in range(20)]
        docs.append(Doc(f"c{d:03d}", cat, sents))
    return docs


def _doc_of(ex_id):
    return ex_id.split("/")[1]


def test_split_of_is_stable_and_roughly_80_10_10():
    assert split_of("brown", "ca01") == split_of("brown", "ca01")
    counts = {s: 0 for s in SPLITS}
    for i in range(4000):
        counts[split_of("x", f"d{i}")] += 1
    assert 3050 < counts["train"] < 3350 and 300 < counts["dev"] < 500 and 300 < counts["test"] < 500


@pytest.mark.parametrize("name", ["brown-genre", "brown-genre-fine", "same-doc"])
def test_brown_tasks_deterministic_and_document_disjoint(name):
    a = build_task(name, brown_docs(), max_train=300, max_dev=60, max_test=60)
    b = build_task(name, list(reversed(brown_docs())), max_train=300, max_dev=60, max_test=60)
    for s in SPLITS:
        assert [ex.id for ex in a.split(s)] == [ex.id for ex in b.split(s)]
        assert a.split(s) == b.split(s)
    docs = {s: {_doc_of(ex.id) for ex in a.split(s)} for s in SPLITS}
    assert not (docs["train"] & docs["dev"]) and not (docs["train"] & docs["test"]) \
        and not (docs["dev"] & docs["test"])
    for s in SPLITS:  # every document sits in the split its hash names
        assert all(split_of("brown", d) == s for d in docs[s])
    ids = [ex.id for s in SPLITS for ex in a.split(s)]
    assert len(ids) == len(set(ids))


def test_caps_are_nested_and_deterministic():
    small = build_task("brown-genre", brown_docs(), max_train=50, max_dev=10, max_test=10)
    big = build_task("brown-genre", brown_docs(), max_train=200, max_dev=40, max_test=40)
    assert len(small.train) == 50 and len(big.train) == 200
    assert {ex.id for ex in small.train} <= {ex.id for ex in big.train}
    full = build_task("brown-genre", brown_docs(), max_train=0, max_dev=0, max_test=0)
    assert len(full.train) > 200


def test_brown_genre_passages_and_labels():
    t = build_task("brown-genre", brown_docs(), max_train=0, max_dev=0, max_test=0)
    ex = t.train[0]
    assert ex.id.startswith("brown-genre/c") and ex.text_b is None
    assert ex.text.count(" .") == 0 and ex.text.count(".") in (2, 3)  # 2-3 sentences, detokenised
    for e in t.train:
        cat = e.text.split()[6].rstrip(".")
        assert t.labels[e.label] == suite.BROWN_COARSE[cat]
    assert t.labels == ("press", "general", "learned", "fiction")


def test_same_doc_balanced_pairs_from_right_documents():
    docs = brown_docs()
    text_doc = {}
    for d in docs:
        for s in d.sentences:
            text_doc[suite.detokenize(s)] = d.id
    t = build_task("same-doc", docs, max_train=300, max_dev=50, max_test=50)
    for s in SPLITS:
        exs = t.split(s)
        pos = sum(ex.label == 1 for ex in exs)
        assert pos * 2 == len(exs) and len(exs) > 0  # exactly balanced
        for ex in exs:
            da, db = text_doc[ex.text], text_doc[ex.text_b]
            assert (da == db) == (ex.label == 1)
            assert ex.text != ex.text_b
            assert split_of("brown", da) == s and split_of("brown", db) == s
    assert t.labels[1] == "same"


def test_spam_ids_dedup_and_text():
    emails = [Email(f"{g}/{i:05d}.abc{i}", g, g.startswith("spam"), f"{g} body {i} words here",
                    subject=f"subj {i}") for g in ("easy-ham-1", "spam-2") for i in range(1, 40)]
    emails.append(Email("spam-2/00999.dup", "spam-2", True, "easy-ham-1  BODY 3 words here", "subj 3"))
    emails.append(Email("spam-2/00998.empty", "spam-2", True, "", ""))
    t = build_task("spam", emails, max_train=0, max_dev=0, max_test=0)
    all_ex = [ex for s in SPLITS for ex in t.split(s)]
    ids = {ex.id for ex in all_ex}
    assert "spam/easy_ham_1/00003" in ids and "spam/spam_2/00999" not in ids  # duplicate of 00003
    assert "spam/spam_2/00998" not in ids  # empty
    ex = next(e for e in all_ex if e.id == "spam/spam_2/00005")
    assert ex.text == "Subject: subj 5\nspam-2 body 5 words here" and ex.label == 1
    long = suite.email_text("s", " ".join(["w"] * 500), max_words=200)
    assert len(long.split()) == 1 + 1 + 200


def test_sotu_tasks():
    text = ("Mr. Smith went to Washington. He met Gen. Lee on Jan. 5. It was the U.S. Capitol! "
            "Then J. Q. Adams spoke at length about the many things that mattered then. ") * 4
    speeches = [Speech(f"{1790 + 7 * i}_p{i}_{'dr'[i % 2]}", f"P{i}",
                       ["Democratic", "Republican", "Whig"][i % 3], 1790 + 7 * i, text)
                for i in range(30)]
    assert suite.split_sentences(text)[:4] == [
        "Mr. Smith went to Washington.", "He met Gen. Lee on Jan. 5.", "It was the U.S. Capitol!",
        "Then J. Q. Adams spoke at length about the many things that mattered then."]
    party = build_task("sotu-party", speeches, max_train=0, max_dev=0, max_test=0)
    year = build_task("sotu-year", speeches, max_train=0, max_dev=0, max_test=0)
    assert all("Whig" not in ex.id for s in SPLITS for ex in party.split(s))
    assert {party.labels[ex.label] for ex in party.train} == {"Democratic", "Republican"}
    for s in SPLITS:  # both tasks put each speech in the same split
        assert {_doc_of(e.id) for e in party.split(s)} <= {_doc_of(e.id) for e in year.split(s)}
    ex = year.train[0]
    y = int(_doc_of(ex.id)[:4])
    assert ex.label == (y - 1790) / (2021 - 1790)
    assert year.unscale(ex.label) == pytest.approx(y)
    assert year.kind == "regression" and year.scale == {"min": 1790, "max": 2021}


def test_get_task_caches_and_rebuilds_on_new_caps(tmp_path, monkeypatch):
    calls = []

    def reader(name):
        def read():
            calls.append(name)
            return brown_docs()
        return read

    monkeypatch.setattr(suite, "_corpus", reader)
    t1 = get_task("brown-genre", root=tmp_path, max_train=100)
    folder = tmp_path / "tasks" / "brown-genre"
    assert sorted(p.name for p in folder.iterdir()) == ["dev.jsonl", "task.json", "test.jsonl",
                                                        "train.jsonl"]
    t2 = get_task("brown-genre", root=tmp_path, max_train=100)
    assert calls == ["brown"]  # second load read the cache
    for s in SPLITS:
        assert t1.split(s) == t2.split(s)
    get_task("brown-genre", root=tmp_path, max_train=50)
    assert calls == ["brown", "brown"]
    meta = json.loads((folder / "task.json").read_text())
    assert meta["sizes"]["train"] == 50 and meta["kind"] == "classification"


def _write(folder, meta, files):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.json").write_text(json.dumps(meta))
    for name, lines in files.items():
        (folder / f"{name}.jsonl").write_text("".join(
            (x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


GOOD = {"train": [{"id": "a", "text": "yes it is", "label": "pos"},
                  {"id": "b", "text": "no", "text_b": "second", "label": "neg"}],
        "dev": [{"id": "c", "text": "maybe", "label": "pos"}]}


def test_load_task_dir_ok(tmp_path):
    _write(tmp_path / "mine", {"kind": "classification", "labels": ["neg", "pos"]}, GOOD)
    t = get_task(str(tmp_path / "mine"))
    assert t.name == "mine" and t.metrics == ("accuracy", "f1", "mcc") and t.primary == "accuracy"
    assert [ex.label for ex in t.train] == [1, 0] and t.train[1].text_b == "second"
    assert t.test == []
    assert t.evaluate({"c": 1}) == {"accuracy": 1.0, "f1": 1.0, "mcc": 0.0}
    with pytest.raises(DataError, match="no prediction"):
        t.evaluate({}, "train")
    # a loaded task round-trips through write_task_dir
    suite.write_task_dir(t, tmp_path / "copy")
    assert load_task_dir(tmp_path / "copy").splits == t.splits


@pytest.mark.parametrize("line,what", [
    ("{not json", "invalid JSON"),
    ('{"id": "x", "text": "t"}', 'missing "label"'),
    ('{"id": "x", "text": "t", "label": "maybe"}', "label 'maybe' is not one of"),
    ('{"id": "x", "text": "", "label": "pos"}', '"text" must be a non-empty string'),
    ('{"id": "a", "text": "dup", "label": "pos"}', "duplicate id 'a'"),
    ('{"id": "x", "text": "t", "label": "pos", "lable": 1}', "unknown key"),
    ('[1, 2]', "expected a JSON object"),
])
def test_malformed_line_names_file_and_line(tmp_path, line, what):
    files = {k: list(v) for k, v in GOOD.items()}
    files["dev"] = files["dev"] + ["", line]  # blank line 2 is skipped; the bad one is line 3
    _write(tmp_path / "bad", {"kind": "classification", "labels": ["neg", "pos"]}, files)
    with pytest.raises(DataError) as e:
        load_task_dir(tmp_path / "bad")
    msg = str(e.value)
    assert f"{tmp_path / 'bad' / 'dev.jsonl'}:3:" in msg and what in msg


def test_bad_task_json_and_regression_labels(tmp_path):
    _write(tmp_path / "a", {"kind": "ranking"}, GOOD)
    with pytest.raises(DataError, match=r"task\.json.*kind"):
        load_task_dir(tmp_path / "a")
    _write(tmp_path / "b", {"kind": "classification", "labels": ["x"]}, GOOD)
    with pytest.raises(DataError, match="at least 2"):
        load_task_dir(tmp_path / "b")
    reg = {"train": [{"id": "a", "text": "t", "label": 0.5}], "dev": [{"id": "b", "text": "t", "label": "hi"}]}
    _write(tmp_path / "c", {"kind": "regression"}, reg)
    with pytest.raises(DataError, match=r"dev\.jsonl:1: label must be a finite number"):
        load_task_dir(tmp_path / "c")
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match=r"task\.json: missing"):
        load_task_dir(tmp_path / "d")
    with pytest.raises(DiscernError, match="unknown task"):
        get_task("no-such-task")


def test_registry_has_the_five_required_tasks():
    assert {"brown-genre", "spam", "sotu-party", "same-doc", "sotu-year"} <= set(TASKS)
    assert TASKS["sotu-year"].kind == "regression"
    assert TASKS["spam"].metrics == ("f1", "accuracy")
    assert all(isinstance(t, Task) and not t.splits for t in TASKS.values())


def _corpora_installed():
    try:
        from discern.data import is_installed
    except ImportError:
        return False
    return all(is_installed(n) for n in ("brown", "sotu", "spam-assassin"))


@pytest.mark.skipif(not _corpora_installed(), reason="corpora not installed (discern data fetch)")
def test_real_corpora_suite(tmp_path):
    """Every built-in task from the real corpora: sizes, disjoint documents, stable ids."""
    for name in TASKS:
        t = get_task(name, root=tmp_path, max_train=300, max_dev=100, max_test=100)
        assert [len(t.split(s)) for s in SPLITS] == [300, 100, 100], name
        docs = {s: {_doc_of(ex.id) if not name == "spam" else ex.id for ex in t.split(s)}
                for s in SPLITS}
        assert not (docs["train"] & docs["dev"]) and not (docs["dev"] & docs["test"])
        again = get_task(name, root=tmp_path, max_train=300, max_dev=100, max_test=100)
        assert [ex.id for ex in again.dev] == [ex.id for ex in t.dev]
