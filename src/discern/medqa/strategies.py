"""The four prompting strategies of Med-PaLM 2 (Singhal et al. 2023, section 3.3) over any
:class:`discern.llm.generation.Backend`, batched across questions.

- ``few_shot``: one greedy completion of the few-shot prompt.
- ``cot``: one greedy chain-of-thought completion.
- ``self_consistency``: ``k`` sampled CoT completions (11), plurality vote.
- ``ensemble_refinement``: ``k1`` sampled CoT completions (11, stage 1); ``k2`` sampled completions
  (33) of the stage-2 prompt that lists the stage-1 generations; plurality vote over stage 2.

Sampling temperature defaults to 0.7 (the paper does not state it).  Every result keeps its
prompts, generations and parsed answers, so a run can be audited sample by sample.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from discern.llm.generation import GenParams

from .answers import extract_choice, extract_pubmedqa, plurality
from .prompts import Question, cot_prompt, few_shot_prompt, refinement_prompt

STOP = ("\n\nQuestion:", "\nQuestion:")
# a chain of thought ends with its answer line ("Answer: (C)", "Answer: maybe"): generation stops there
ANSWER_LINE = r"(?im)^[ \t*]*answer[ \t*]*:[ \t*$]*\(?[ \t]*(?:[a-e]\b|yes\b|no\b|maybe\b)\)?"


@dataclass
class StrategyConfig:
    k: int = 11  # self-consistency samples
    k1: int = 11  # ensemble refinement, stage 1
    k2: int = 33  # ensemble refinement, stage 2
    temperature: float = 0.7
    max_tokens: int = 256
    seed: int = 0


def _parse(texts: list[str], q: Question, pubmedqa: bool) -> list[str | None]:
    if pubmedqa:
        letters = {"yes": "A", "no": "B", "maybe": "C"}
        return [letters.get(extract_pubmedqa(t)) for t in texts]
    return [extract_choice(t, len(q.options)) for t in texts]


def run_strategy(backend, strategy: str, questions: list[Question], exemplars: list[Question],
                 cfg: StrategyConfig = StrategyConfig(), pubmedqa: bool = False) -> list[dict]:
    """One record per question: prediction (a letter or None), the answers parsed from each
    generation, and the generations and prompts behind them."""
    greedy = GenParams(temperature=0.0, max_tokens=cfg.max_tokens, stop=STOP, seed=cfg.seed)
    sampled = replace(greedy, temperature=cfg.temperature, stop_pattern=ANSWER_LINE)
    if strategy == "few_shot":
        prompts = [few_shot_prompt(exemplars, q) for q in questions]
        gens = backend.generate(prompts, 1, replace(greedy, max_tokens=8))
        return [_record(q, p, g, _parse(["Answer:" + t for t in g], q, pubmedqa)) for q, p, g in
                zip(questions, prompts, gens)]
    # chain-of-thought exemplars need written explanations (the paper's are hand-written, appendix
    # Tables A.10-A.13); the datasets' dev items have none, so without them the CoT prompt is zero-shot
    exemplars = [e for e in exemplars if e.explanation]
    prompts = [cot_prompt(exemplars, q) for q in questions]
    if strategy == "cot":
        gens = backend.generate(prompts, 1, replace(greedy, stop_pattern=ANSWER_LINE))
        return [_record(q, p, g, _parse(g, q, pubmedqa)) for q, p, g in zip(questions, prompts, gens)]
    if strategy == "self_consistency":
        gens = backend.generate(prompts, cfg.k, sampled)
        return [_record(q, p, g, _parse(g, q, pubmedqa)) for q, p, g in zip(questions, prompts, gens)]
    if strategy == "ensemble_refinement":
        stage1 = backend.generate(prompts, cfg.k1, sampled)
        prompts2 = [refinement_prompt(exemplars, q, g) for q, g in zip(questions, stage1)]
        stage2 = backend.generate(prompts2, cfg.k2, replace(sampled, seed=cfg.seed + 1))
        out = []
        for q, p2, g1, g2 in zip(questions, prompts2, stage1, stage2):
            rec = _record(q, p2, g2, _parse(g2, q, pubmedqa))
            rec["stage1"] = {"generations": g1, "answers": _parse(g1, q, pubmedqa)}
            out.append(rec)
        return out
    raise ValueError(f"unknown strategy {strategy!r} (few_shot, cot, self_consistency, ensemble_refinement)")


def _record(q: Question, prompt: str, generations: list[str], answers: list[str | None]) -> dict:
    pred = plurality(answers)
    return {"question": q.question, "target": q.answer, "prediction": pred, "correct": pred == q.answer,
            "answers": answers, "parse_failures": sum(a is None for a in answers), "generations": generations,
            "prompt": prompt}


def few_shot_loglik(model, tokenizer, questions: list[Question], exemplars: list[Question],
                    batch_size: int = 16) -> list[dict]:
    """Few-shot by option log-likelihood (the lm-evaluation-harness way for base models): the option
    letter with the highest log p(" (X)" | few-shot prompt) is the prediction; no generation, no parsing.
    The prompt is run once and its key/value cache shared by the options (:func:`discern.llm.choice_logprobs`).
    ``batch_size`` is kept for callers; the options of one question are scored together."""
    from discern.llm import choice_logprobs

    out = []
    for q in questions:
        prompt = few_shot_prompt(exemplars, q)
        letters = [chr(65 + i) for i in range(len(q.options))]
        lp = choice_logprobs(model, tokenizer, prompt, [f" ({x})" for x in letters])
        lp = [float(v) for v in lp]
        pred = letters[max(range(len(letters)), key=lambda i: (lp[i], -i))]  # ties: the earlier letter
        out.append({"question": q.question, "target": q.answer, "prediction": pred, "correct": pred == q.answer,
                    "logprobs": dict(zip(letters, lp)), "prompt": prompt})
    return out
