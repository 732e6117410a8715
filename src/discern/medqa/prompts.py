"""Prompt assembly for the Med-PaLM 2 strategies (Singhal et al. 2023, section 3.3; the formats of
the arXiv appendix, Tables A.10-A.17, in structure; the wording is ours).

- Few-shot: the instruction-free exemplar blocks "Question: ... (A) ... Answer: (X)".
- Chain of thought: an instruction (multiple-choice medical questions, solve step by step starting
  by summarising the available information, output one option), exemplars with an
  "Explanation:" and a closing "Answer: (X)" line, then the question and "Explanation:".
- Ensemble refinement, stage 2: the CoT instruction extended with the note on students'
  reasonings, the same exemplars, the question, the header "Students' reasonings:", one line
  "k reasoning: <stage-1 text>" per stage-1 sample (k = 1..n), and "Explanation:".
"""

from __future__ import annotations

from dataclasses import dataclass, field

COT_INSTRUCTION = ("The following are multiple choice questions about medical knowledge. Solve them in a "
                   "step-by-step fashion, starting by summarizing the available information. Output a single "
                   "option from the given options as the final answer.")
ER_NOTE = ("You are given several student reasonings for the last question. Some of them may be correct and some "
           "incorrect. Use the best correct arguments to give your own explanation and answer, beware of wrong "
           "reasoning and do not repeat it.")


@dataclass
class Question:
    question: str
    options: list[str]  # option texts, lettered A, B, C, ...
    answer: str | None = None  # the correct letter
    explanation: str | None = None  # for chain-of-thought exemplars
    context: str | None = None  # PubMedQA abstract
    meta: dict = field(default_factory=dict)


def format_options(options: list[str]) -> str:
    return "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(options))


def question_block(q: Question) -> str:
    head = f"Context: {q.context}\n" if q.context else ""
    return f"{head}Question: {q.question}\n{format_options(q.options)}"


def few_shot_prompt(exemplars: list[Question], q: Question) -> str:
    blocks = [f"{question_block(e)}\nAnswer: ({e.answer})" for e in exemplars]
    return "\n\n".join(blocks + [f"{question_block(q)}\nAnswer:"])


def _cot_exemplar(e: Question) -> str:
    if not e.explanation or not e.answer:
        raise ValueError("a chain-of-thought exemplar needs an explanation and an answer")
    return f"{question_block(e)}\nExplanation: {e.explanation}\nAnswer: ({e.answer})"


def cot_prompt(exemplars: list[Question], q: Question, instruction: str = COT_INSTRUCTION) -> str:
    blocks = [instruction] + [_cot_exemplar(e) for e in exemplars]
    return "\n\n".join(blocks + [f"{question_block(q)}\nExplanation:"])


def refinement_prompt(exemplars: list[Question], q: Question, reasonings: list[str],
                      instruction: str = COT_INSTRUCTION) -> str:
    """Ensemble refinement's stage-2 prompt, conditioned on the stage-1 generations."""
    if not reasonings:
        raise ValueError("ensemble refinement needs at least one stage-1 reasoning")
    students = "\n".join(f"{k} reasoning: {' '.join(r.split())}" for k, r in enumerate(reasonings, 1))
    blocks = [f"{instruction} {ER_NOTE}"] + [_cot_exemplar(e) for e in exemplars]
    return "\n\n".join(blocks + [f"{question_block(q)}\nStudents' reasonings:\n{students}\nExplanation:"])
