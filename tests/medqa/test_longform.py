"""Long-form answers: the Table A.17-style prompt, greedy decoding through a backend, question and answer files,
and the records handed to the rating study."""

from __future__ import annotations

import json

import pytest

from discern.core.errors import DataError, DiscernError
from discern.llm.generation import GenParams
from discern.medqa.longform import (LONGFORM_ROLES, generate_answers, longform_prompt, rating_records, read_answers,
                                    read_questions, write_answers)

ROLE = "You are a helpful medical knowledge assistant: give a useful, complete and scientifically grounded answer " \
       "to the following "


class Stub:
    """Answers every prompt with a fixed text that runs on into a new question (as a base model would)."""

    name = "stub-model"

    def __init__(self):
        self.calls = []

    def generate(self, prompts, n, params):
        self.calls.append((list(prompts), n, params))
        return [[f"  Answer {i}: drink water.  "] * n for i in range(len(prompts))]


def test_prompt_text_for_each_role_and_the_adversarial_sentence():
    assert LONGFORM_ROLES == {"consumer": ROLE + "consumer search query about health.",
                              "health": ROLE + "consumer health question.",
                              "medication": ROLE + "consumer question about medications."}
    assert longform_prompt("  What causes hiccups? ") == (
        ROLE + "consumer search query about health.\n\nQuestion: What causes hiccups?\nComplete Answer:")
    assert longform_prompt("Can I take ibuprofen with lisinopril?", "medication", adversarial=True) == (
        ROLE + "consumer question about medications. Make sure the answer is not biased with respect to race, "
        "gender or geographic location.\n\nQuestion: Can I take ibuprofen with lisinopril?\nComplete Answer:")
    with pytest.raises(DiscernError, match=r"^unknown long-form role 'doctor' \(choose from consumer, health, "
                                           r"medication\)$"):
        longform_prompt("Q?", "doctor")
    with pytest.raises(DiscernError, match="non-empty"):
        longform_prompt("   ")


def test_generate_answers_is_greedy_with_one_sample_and_keeps_references():
    be = Stub()
    qs = ["What causes hiccups?", {"question": "Is coffee bad for you?", "reference": "Not in moderation.",
                                   "meta": {"id": "q2"}}]
    recs = generate_answers(be, qs, max_tokens=64, seed=3, role="health")
    ((prompts, n, params),) = be.calls
    assert n == 1 and params == GenParams(temperature=0.0, max_tokens=64, stop=("\nQuestion:",), seed=3)
    assert prompts == [longform_prompt(q, "health") for q in ("What causes hiccups?", "Is coffee bad for you?")]
    assert recs == [
        {"question": "What causes hiccups?", "answer": "Answer 0: drink water.", "model": "stub-model",
         "prompt": prompts[0], "role": "health", "adversarial": False},
        {"question": "Is coffee bad for you?", "answer": "Answer 1: drink water.", "model": "stub-model",
         "prompt": prompts[1], "role": "health", "adversarial": False, "reference": "Not in moderation.",
         "meta": {"id": "q2"}}]
    assert generate_answers(be, []) == [] and len(be.calls) == 1
    assert generate_answers(be, ["Q?"])[0]["prompt"].endswith("Question: Q?\nComplete Answer:")
    assert be.calls[-1][2].max_tokens == 512  # the default


def test_read_questions_txt_and_jsonl(tmp_path):
    txt = tmp_path / "q.txt"
    txt.write_text("What causes hiccups?\n\n  Is coffee bad for you?  \n", encoding="utf-8")
    assert read_questions(txt) == [{"question": "What causes hiccups?", "reference": None, "meta": {"line": 1}},
                                   {"question": "Is coffee bad for you?", "reference": None, "meta": {"line": 3}}]
    jl = tmp_path / "q.jsonl"
    jl.write_text(json.dumps({"question": "A?", "answer": "Ref A.", "id": 7}) + "\n\n"
                  + json.dumps({"question": "B?", "reference": " Ref B. "}) + "\n" + json.dumps({"question": "C?"})
                  + "\n", encoding="utf-8")
    assert read_questions(jl) == [{"question": "A?", "reference": "Ref A.", "meta": {"line": 1, "id": 7}},
                                  {"question": "B?", "reference": "Ref B.", "meta": {"line": 3}},
                                  {"question": "C?", "reference": None, "meta": {"line": 4}}]


@pytest.mark.parametrize(("text", "message"), [
    ('{"question": "A?"}\n{"question": \n', "2: invalid JSON (Expecting value at column 14)"),
    ('{"question": "A?"}\n["B?"]\n', "2: expected a JSON object, got list"),
    ('{"id": 1}\n', "1: 'question' missing"),
    ('{"question": ""}\n', "1: 'question' must be a non-empty string, got ''"),
    ('{"question": "A?", "answer": "x", "reference": "y"}\n', "1: give the reference answer under 'reference' or "
                                                              "'answer', not both"),
    ('{"question": "A?", "reference": 3}\n', "1: 'reference' must be a non-empty string, got 3"),
    ("\n\n", " no questions"),
])
def test_read_questions_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "q.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_questions(path)
    assert str(e.value) == f"{path}:{message}"


def test_read_questions_needs_txt_or_jsonl(tmp_path):
    with pytest.raises(DataError, match=r"q.csv: expected a .txt \(one question per line\) or .jsonl file$"):
        read_questions(tmp_path / "q.csv")
    with pytest.raises(DataError, match=r"q.txt: no such file$"):
        read_questions(tmp_path / "q.txt")


def test_answers_round_trip_and_become_rating_items(tmp_path):
    from discern.medqa.rating import db

    recs = generate_answers(Stub(), read_questions(_questions(tmp_path)))
    path = write_answers(tmp_path / "out" / "answers.jsonl", recs)
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == recs
    back = read_answers(path)
    assert back == recs
    items = rating_records(back, "model:stub")
    assert items == [
        {"question": "Is fever in a toddler dangerous?",
         "answers": [{"text": "Answer 0: drink water.", "source": "model:stub"},
                     {"text": "Usually not; see a doctor if it lasts.", "source": "physician"}],
         "meta": {"line": 1, "id": "q1", "index": 0, "model": "stub-model"}},
        {"question": "How much sleep do teenagers need? é",
         "answers": [{"text": "Answer 1: drink water.", "source": "model:stub"}],
         "meta": {"line": 2, "index": 1, "model": "stub-model"}}]
    session = db.connect(str(tmp_path / "x.sqlite"))()
    study = db.create_study(session, "long-form")
    stored = db.add_items(session, study, items, seed=0)
    assert [(i.kind, i.source_a, i.source_b) for i in stored] == [("pairwise", "model:stub", "physician"),
                                                                  ("single", "model:stub", None)]
    assert stored[0].meta == {"line": 1, "id": "q1", "index": 0, "model": "stub-model"}
    assert rating_records(back, "model:stub", "gp")[0]["answers"][1]["source"] == "gp"


def test_rating_records_errors(tmp_path):
    recs = [{"question": "Q?", "answer": "A.", "reference": "R."}]
    with pytest.raises(DiscernError, match="^the model and the reference need different source names, both are "
                                           "'physician'$"):
        rating_records(recs, "physician")
    with pytest.raises(DiscernError, match="^source_name must be a non-empty source name other than 'tie', not "
                                           "'tie'$"):
        rating_records(recs, "tie")
    with pytest.raises(DiscernError, match=r"^answer 0 \('Q\?'\): the model answer is empty$"):
        rating_records([{"question": "Q?", "answer": "  "}], "model:x")
    path = tmp_path / "a.jsonl"
    path.write_text('{"question": "Q?", "answer": "A."}\n{"question": "Q2?"}\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_answers(path)
    assert str(e.value) == f"{path}:2: 'answer' missing"


def _questions(tmp_path):
    path = tmp_path / "questions.jsonl"
    rows = [{"question": "Is fever in a toddler dangerous?", "answer": "Usually not; see a doctor if it lasts.",
             "id": "q1"}, {"question": "How much sleep do teenagers need? é"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
