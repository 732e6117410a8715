"""MultiMedQA readers on the installed MMLU clinical and PubMedQA copies, and on a MedQA sample."""

import json

import pytest

from discern.core.errors import DataError
from discern.medqa.data import MMLU_CLINICAL, medqa, mmlu, pubmedqa


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
