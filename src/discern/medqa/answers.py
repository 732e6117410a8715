"""Answer extraction and voting for multiple-choice medical QA (Singhal et al. 2023, section 3.3).

Extraction accepts the forms models actually write: "Answer: (C)", "Answer: C", "answer:$C$",
"The answer is (B)", "**Answer:** D", and, for PubMedQA, "Answer: yes/no/maybe" or "(A) Yes".
The *last* answer statement wins (an explanation may quote options before concluding); a generation
with none is a parse failure (``None``), counted by the caller, never guessed.

Votes are pluralities over the parsed answers (self-consistency, Wang et al. 2022; ensemble
refinement's stage 2).  Ties are broken deterministically by the first occurrence among the tied
answers in generation order; with no parsed answer at all the vote is ``None``.
"""

from __future__ import annotations

import re
from collections import Counter

LETTERS = "ABCDE"
PUBMEDQA = ("yes", "no", "maybe")

_ANSWER = re.compile(
    r"(?:answer\s*(?:is|:)|answer\s*\*\*\s*:|\*\*answer:\*\*)\s*[\*\$\s]*\(?\s*([A-Ea-e])\s*\)?(?![A-Za-z])",
    re.IGNORECASE)
_WORD = re.compile(r"answer\s*(?:is|:)\s*[\*\$\s]*\(?\s*(?:[A-C]\)\s*)?(yes|no|maybe)\b", re.IGNORECASE)


def extract_choice(text: str, n_options: int = 4) -> str | None:
    """The letter of the last answer statement, among the first ``n_options`` letters."""
    valid = LETTERS[:n_options]
    found = [m.group(1).upper() for m in _ANSWER.finditer(text)]
    found = [f for f in found if f in valid]
    return found[-1] if found else None


def extract_pubmedqa(text: str) -> str | None:
    """yes / no / maybe from "Answer: yes", "The answer is (B) No", or the letters (A) (B) (C)."""
    words = [m.group(1).lower() for m in _WORD.finditer(text)]
    if words:
        return words[-1]
    letter = extract_choice(text, 3)
    return PUBMEDQA["ABC".index(letter)] if letter else None


def plurality(answers: list[str | None]) -> str | None:
    """The most frequent parsed answer; ties go to the tied answer that appeared first."""
    parsed = [a for a in answers if a is not None]
    if not parsed:
        return None
    counts = Counter(parsed)
    top = max(counts.values())
    return next(a for a in parsed if counts[a] == top)
