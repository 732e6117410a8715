"""Answer extraction on awkward outputs, deterministic votes, exact prompt assembly."""

import pytest

from discern.medqa.answers import extract_choice, extract_pubmedqa, plurality
from discern.medqa.prompts import (COT_INSTRUCTION, ER_NOTE, Question, cot_prompt, few_shot_prompt,
                                   refinement_prompt)


@pytest.mark.parametrize("text, expect", [
    ("Explanation: ... so the nerve is the ulnar nerve.\nAnswer: (C)", "C"),
    ("Answer: B", "B"),
    ("answer:$D$", "D"),
    ("The answer is (A).", "A"),
    ("**Answer:** B", "B"),
    ("Option (A) looks tempting but (B) is wrong. Answer: (D)", "D"),
    ("Answer: (A) ... on reflection, Answer: (C)", "C"),  # the last statement wins
    ("I am not sure.", None),
    ("Answer: (E)", None),  # not an option of a 4-option question
    ("Answer: Because the patient ...", None),  # "B" of "Because" is no answer
])
def test_choice_extraction(text, expect):
    assert extract_choice(text) == expect


def test_five_option_and_pubmedqa_extraction():
    assert extract_choice("Answer: (E)", n_options=5) == "E"
    assert extract_pubmedqa("the evidence is weak. Answer: maybe") == "maybe"
    assert extract_pubmedqa("The answer is (B) No") == "no"
    assert extract_pubmedqa("Answer: (A)") == "yes"
    assert extract_pubmedqa("Answer: YES.") == "yes"
    assert extract_pubmedqa("no conclusion") is None


def test_plurality_breaks_ties_by_first_occurrence():
    assert plurality(["B", "A", "A", "B", "C"]) == "B"  # A and B tie at 2: B appeared first
    assert plurality(["A", None, "C", "C"]) == "C"
    assert plurality([None, "D"]) == "D"
    assert plurality([None, None]) is None
    assert plurality([]) is None


EX = [Question("What is 1+1?", ["1", "2", "3", "4"], "B", "One and one make two."),
      Question("Which organ pumps blood?", ["Liver", "Lung", "Heart", "Kidney"], "C", "The heart pumps blood.")]
Q = Question("Which vitamin deficiency causes scurvy?", ["A", "B12", "C", "D"])


def test_few_shot_prompt_is_exact():
    assert few_shot_prompt(EX[:1], Q) == (
        "Question: What is 1+1?\n(A) 1\n(B) 2\n(C) 3\n(D) 4\nAnswer: (B)\n\n"
        "Question: Which vitamin deficiency causes scurvy?\n(A) A\n(B) B12\n(C) C\n(D) D\nAnswer:")


def test_cot_prompt_is_exact():
    assert cot_prompt(EX, Q) == (
        f"{COT_INSTRUCTION}\n\n"
        "Question: What is 1+1?\n(A) 1\n(B) 2\n(C) 3\n(D) 4\nExplanation: One and one make two.\nAnswer: (B)\n\n"
        "Question: Which organ pumps blood?\n(A) Liver\n(B) Lung\n(C) Heart\n(D) Kidney\n"
        "Explanation: The heart pumps blood.\nAnswer: (C)\n\n"
        "Question: Which vitamin deficiency causes scurvy?\n(A) A\n(B) B12\n(C) C\n(D) D\nExplanation:")
    with pytest.raises(ValueError, match="explanation"):
        cot_prompt([Question("q", ["a", "b"], "A")], Q)


def test_refinement_prompt_lists_every_stage_one_reasoning():
    p = refinement_prompt(EX[:1], Q, ["Scurvy is vitamin C.\nAnswer: (C)", "Maybe B12. Answer: (B)"])
    assert p == (
        f"{COT_INSTRUCTION} {ER_NOTE}\n\n"
        "Question: What is 1+1?\n(A) 1\n(B) 2\n(C) 3\n(D) 4\nExplanation: One and one make two.\nAnswer: (B)\n\n"
        "Question: Which vitamin deficiency causes scurvy?\n(A) A\n(B) B12\n(C) C\n(D) D\n"
        "Students' reasonings:\n1 reasoning: Scurvy is vitamin C. Answer: (C)\n2 reasoning: Maybe B12. Answer: (B)\n"
        "Explanation:")
    with pytest.raises(ValueError, match="stage-1"):
        refinement_prompt(EX, Q, [])
