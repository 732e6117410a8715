"""MultiMedQA readers on the installed MMLU clinical and PubMedQA copies and on hand-written MedQA and MedMCQA
samples; malformed rows and missing files give one-line errors naming the file and line."""

from __future__ import annotations

import json

import pytest

from discern.core.errors import DataError
from discern.medqa.data import MMLU_CLINICAL, medmcqa, medqa, mmlu, pubmedqa


def test_mmlu_clinical_splits_have_the_published_sizes():
    sizes = {s: len(mmlu(s, "val")) for s in MMLU_CLINICAL}
    assert sizes == {"anatomy": 14, "clinical_knowledge": 29, "college_biology": 16, "college_medicine": 22,
                     "medical_genetics": 11, "professional_medicine": 31}
    assert all(len(mmlu(s, "dev")) == 5 for s in MMLU_CLINICAL)  # the 5 few-shot exemplars
    q = mmlu("anatomy", "dev")[0]
    assert q.question == "What is the embryological origin of the hyoid bone?" and q.answer == "D"
    assert q.options[3] == "The second and third pharyngeal arches"
    with pytest.raises(DataError, match="unknown MMLU"):
        mmlu("astronomy")


def test_pubmedqa_pqal_dev():
    qs = pubmedqa()
    assert len(qs) == 500 and {q.answer for q in qs} == {"A", "B", "C"}
    assert all(q.options == ["Yes", "No", "Maybe"] and q.context for q in qs)


def test_medqa_jsonl(tmp_path):
    rows = [{"question": "A 23-year-old ...?", "options": {"A": "x", "B": "y", "C": "z", "D": "w"},
             "answer_idx": "C", "meta_info": "step1"}]
    (tmp_path / "phrases_no_exclude_test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (q,) = medqa("test", root=tmp_path)
    assert q.options == ["x", "y", "z", "w"] and q.answer == "C" and q.meta["meta_info"] == "step1"


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _mcqa(i, cop=3, **over):
    row = {"question": f"Question {i}?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": cop,
           "exp": f"Because {i}.", "subject_name": "Anatomy", "topic_name": "Head", "id": f"id-{i}",
           "choice_type": "single"}
    row.update(over)
    return row


def test_medmcqa_official_jsonl_numbers_the_correct_option_from_1(tmp_path):
    _jsonl(tmp_path / "dev.json", [_mcqa(0, cop=1), "", _mcqa(1, cop=4, exp=None, opd=5), _mcqa(2, exp="  ")])
    qs = medmcqa(root=tmp_path)
    assert [q.answer for q in qs] == ["A", "D", "C"]
    assert qs[0].question == "Question 0?" and qs[0].options == ["a", "b", "c", "d"]
    assert qs[0].explanation == "Because 0." and qs[1].explanation is None and qs[2].explanation is None
    assert qs[1].options[3] == "5"
    assert qs[0].meta == {"id": "id-0", "subject": "Anatomy", "topic": "Head", "choice_type": "single", "index": 0}
    assert [q.meta["index"] for q in qs] == [0, 1, 2]  # rows of the file, blank lines not counted
    assert [q.question for q in medmcqa(root=tmp_path, first=2)] == ["Question 0?", "Question 1?"]
    _jsonl(tmp_path / "test.json", [{k: v for k, v in _mcqa(7).items() if k != "cop"}])
    assert medmcqa("test", root=tmp_path)[0].answer is None  # the official test split has no answers


def test_load_dataset_medmcqa_takes_exemplars_from_train_or_else_from_dev(tmp_path, monkeypatch):
    from discern.medqa.evaluate import DATASETS, load_dataset

    assert "medmcqa" in DATASETS
    monkeypatch.setenv("DISCERN_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"^MedMCQA is not installed: discern data fetch medmcqa \[--from a folder "
                                        r"with the official dev.json and train.json, https://medmcqa.github.io\] "
                                        r"\(installs into .*medmcqa\)$"):
        load_dataset("medmcqa")
    folder = tmp_path / "medmcqa"
    folder.mkdir()
    _jsonl(folder / "dev.json", [_mcqa(i) for i in range(8)])
    qs, ex, pub = load_dataset("medmcqa")
    assert [q.question for q in ex] == [f"Question {i}?" for i in range(5)] and not pub
    assert [q.question for q in qs] == ["Question 5?", "Question 6?", "Question 7?"]
    _jsonl(folder / "train.json", [_mcqa(100 + i) for i in range(7)] + ["{broken"])  # only 5 lines are read
    qs, ex, _ = load_dataset("medmcqa", limit=4, seed=0)
    assert [q.question for q in ex] == [f"Question {100 + i}?" for i in range(5)]
    assert len(qs) == 4 and {q.question for q in qs} <= {f"Question {i}?" for i in range(8)}


@pytest.mark.parametrize(("line", "message"), [
    ('{"question": "Q?", "opa": ', "invalid JSON (Expecting value at column 27)"),
    ("[1, 2]", "expected a JSON object, got list"),
    (_mcqa(0, question=None), "missing 'question'"),
    (_mcqa(0, question=""), "'question' must be a non-empty string, got ''"),
    ({k: v for k, v in _mcqa(0).items() if k != "opc"}, "missing option 'opc'"),
    (_mcqa(0, opb=["x"]), "option 'opb' must be text, got ['x']"),
    (_mcqa(0, cop=5), "'cop' must be an integer 1-4, got 5"),
    (_mcqa(0, cop="2"), "'cop' must be an integer 1-4, got '2'"),
    (_mcqa(0, cop=0), "'cop' must be an integer 1-4, got 0 (0 means a 0-based export; the official files number "
                      "options 1-4)"),
    ({k: v for k, v in _mcqa(0).items() if k != "cop"}, r"missing 'cop' (the correct option, 1-4)"),
])
def test_medmcqa_malformed_rows_name_file_and_line(tmp_path, line, message):
    path = _jsonl(tmp_path / "dev.json", [_mcqa(0), "", line])
    with pytest.raises(DataError) as e:
        medmcqa(root=tmp_path)
    assert str(e.value) == f"{path}:3: {message}"


def test_medmcqa_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(DataError) as e:
        medmcqa(root=tmp_path)
    assert str(e.value) == (f"{tmp_path / 'dev.json'}: missing; MedMCQA is at https://medmcqa.github.io "
                            "(train.json, dev.json, test.json)")
    (tmp_path / "validation-00000-of-00001.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"dev.json: missing \(found validation-00000-of-00001.parquet, the Hugging "
                                        r"Face export: this reader needs the official JSON lines\); MedMCQA is at"):
        medmcqa(root=tmp_path)


def _medqa_row(**over):
    row = {"question": "Q?", "options": {"A": "x", "B": "y", "C": "z", "D": "w"}, "answer_idx": "B"}
    row.update(over)
    return row


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "invalid JSON (Expecting value at column 1)"),
    ('"a string"', "expected a JSON object, got str"),
    ({"options": {"A": "x"}, "answer_idx": "A"}, "missing 'question'"),
    (_medqa_row(options=None), "missing 'options'"),
    (_medqa_row(options=["x", "y"]), "'options' must be an object mapping letters to option texts"),
    (_medqa_row(options={"A": "x", "C": "z"}), "options must be lettered A, B, C, ... in order, got A, C"),
    ({"question": "Q?", "options": {"A": "x", "B": "y"}}, "missing 'answer_idx'"),
    (_medqa_row(answer_idx="E"), "'answer_idx' 'E' is not among the options A, B, C, D"),
])
def test_medqa_malformed_rows_name_file_and_line(tmp_path, line, message):
    path = _jsonl(tmp_path / "phrases_no_exclude_test.jsonl", [_medqa_row(), line])
    with pytest.raises(DataError) as e:
        medqa("test", root=tmp_path)
    assert str(e.value) == f"{path}:2: {message}"


def test_medqa_missing_file_and_bad_encoding(tmp_path):
    with pytest.raises(DataError) as e:
        medqa("dev", root=tmp_path)
    assert str(e.value) == (f"{tmp_path / 'phrases_no_exclude_dev.jsonl'}: missing; MedQA is at "
                            "https://github.com/jind11/MedQA (Google Drive link; data_clean/questions/US/4_options)")
    path = tmp_path / "phrases_no_exclude_dev.jsonl"
    path.write_bytes(json.dumps(_medqa_row()).encode() + b"\n\n" + b'{"question": "\xff"}\n')
    with pytest.raises(DataError) as e:
        medqa("dev", root=tmp_path)
    assert str(e.value) == f"{path}:3: not UTF-8 text (byte 14 of the line)"


def _pubmed(**over):
    d = {"QUESTION": "Does it?", "CONTEXTS": ["c1", "c2"], "final_decision": "yes", "LONG_ANSWER": "Yes."}
    d.update(over)
    return d


@pytest.mark.parametrize(("item", "message"), [
    ({k: v for k, v in _pubmed().items() if k != "QUESTION"}, "missing 'QUESTION'"),
    ({"LONG_ANSWER": "x"}, "missing 'QUESTION', 'CONTEXTS', 'final_decision'"),
    (_pubmed(final_decision="perhaps"), "'final_decision' must be yes, no or maybe, got 'perhaps'"),
    (_pubmed(CONTEXTS="c1"), "'CONTEXTS' must be a list of strings"),
    (_pubmed(QUESTION=" "), "'QUESTION' must be a non-empty string, got ' '"),
    ([1], "expected an object, got list"),
])
def test_pubmedqa_malformed_items_name_file_and_pmid(tmp_path, item, message):
    path = tmp_path / "pqal_dev.json"
    path.write_text(json.dumps({"111": _pubmed(), "222": item}, indent=1))
    with pytest.raises(DataError) as e:
        pubmedqa(root=tmp_path)
    assert str(e.value) == f"{path}: PMID 222: {message}"


def test_pubmedqa_invalid_json_and_missing_file(tmp_path):
    path = tmp_path / "pqal_dev.json"
    path.write_text('{\n "111": {\n  "QUESTION": "Q?",\n  "CONTEXTS": [],\n }\n}\n')
    with pytest.raises(DataError) as e:
        pubmedqa(root=tmp_path)
    assert str(e.value) == f"{path}: invalid JSON at line 5, column 2: Expecting property name enclosed in double quotes"
    path.write_text("[]")
    with pytest.raises(DataError, match=r"pqal_dev.json: expected a JSON object keyed by PMID, got list$"):
        pubmedqa(root=tmp_path)
    path.write_text(json.dumps({"9": _pubmed()}))
    (q,) = pubmedqa(root=tmp_path)
    assert q.context == "c1 c2" and q.answer == "A" and q.meta == {"pmid": "9", "long_answer": "Yes.", "index": 0}
    with pytest.raises(DataError) as e:
        pubmedqa(root=tmp_path, file="pqal_test.json")
    assert str(e.value) == (f"{tmp_path / 'pqal_test.json'}: missing; PubMedQA is at "
                            "https://github.com/pubmedqa/pubmedqa (data/ori_pqal.json)")


@pytest.mark.parametrize(("text", "line", "message"), [
    ('"Q1?",a,b,c,d,A\n"Q2?",a,b,c,d\n', 2, "expected 6 columns (question, 4 options, answer letter), got 5"),
    ('"Q1?",a,b,c,d,A\n"Q2?",a,b,c,d,AB\n', 2, "the answer must be one of A, B, C, D, got 'AB'"),
    ('"Q1?",a,b,c,d,A\n"Q2?",a,b,c,d,\n', 2, "the answer must be one of A, B, C, D, got ''"),
    ('"Q1\nwith two lines?",a,b,c,d,A\n"",a,b,c,d,B\n', 3, "empty question"),
])
def test_mmlu_malformed_rows_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "anatomy_val.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as e:
        mmlu("anatomy", root=tmp_path)
    assert str(e.value) == f"{path}:{line}: {message}"


def test_mmlu_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(DataError) as e:
        mmlu("anatomy", "test", root=tmp_path)
    assert str(e.value) == (f"{tmp_path / 'anatomy_test.csv'}: missing (splits: dev, val); MMLU is at "
                            "https://github.com/hendrycks/test (data/dev, data/val)")
