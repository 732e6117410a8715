"""The four prompting strategies of Med-PaLM 2 (Singhal et al. 2023, section 3.3) over any
:class:`discern.llm.generation.Backend`, batched across questions.

- ``few_shot``: one greedy completion of the few-shot prompt.
- ``cot``: one greedy chain-of-thought completion.
- ``self_consistency``: ``k`` sampled CoT completions (11), plurality vote.
- ``ensemble_refinement``: ``k1`` sampled CoT completions (11, stage 1); ``k2`` sampled completions
  (33) of the stage-2 prompt that lists the stage-1 generations; plurality vote over stage 2.

Sampling temperature defaults to 0.7 (the paper does not state it).  Every result keeps its
prompts, generations and parsed answers, so a run can be audited sample by sample: ``requests`` lists
each backend request made for the question (its prompt and :func:`gen_kwargs`), in order.
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


def gen_kwargs(params: GenParams, n: int) -> dict:
    """The generation settings of one request, named as lm-evaluation-harness logs them (``until``,
    ``do_sample``, ``temperature``, ``max_gen_toks``) plus ``top_p``, ``n`` (responses drawn for the prompt),
    ``seed`` and ``stop_pattern`` (the answer line that ends a chain of thought, or None)."""
    return {"until": list(params.stop), "do_sample": params.temperature > 0, "temperature": params.temperature,
            "top_p": params.top_p, "max_gen_toks": params.max_tokens, "n": n, "seed": params.seed,
            "stop_pattern": params.stop_pattern}


def prompt_exemplars(strategy: str, exemplars: list[Question]) -> list[Question]:
    """The exemplars a strategy's prompt holds: all for few-shot; for the chain-of-thought strategies only
    those with a written explanation (the paper's are hand-written, appendix Tables A.10-A.13; the datasets'
    dev items have none, so there the CoT prompt is zero-shot)."""
    return list(exemplars) if strategy == "few_shot" else [e for e in exemplars if e.explanation]


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
        params = replace(greedy, max_tokens=8)
        gens = backend.generate(prompts, 1, params)
        return [_record(q, p, g, _parse(["Answer:" + t for t in g], q, pubmedqa), gen_kwargs(params, 1))
                for q, p, g in zip(questions, prompts, gens)]
    exemplars = prompt_exemplars(strategy, exemplars)
    prompts = [cot_prompt(exemplars, q) for q in questions]
    if strategy == "cot":
        params = replace(greedy, stop_pattern=ANSWER_LINE)
        gens = backend.generate(prompts, 1, params)
        return [_record(q, p, g, _parse(g, q, pubmedqa), gen_kwargs(params, 1))
                for q, p, g in zip(questions, prompts, gens)]
    if strategy == "self_consistency":
        gens = backend.generate(prompts, cfg.k, sampled)
        return [_record(q, p, g, _parse(g, q, pubmedqa), gen_kwargs(sampled, cfg.k))
                for q, p, g in zip(questions, prompts, gens)]
    if strategy == "ensemble_refinement":
        stage1 = backend.generate(prompts, cfg.k1, sampled)
        prompts2 = [refinement_prompt(exemplars, q, g) for q, g in zip(questions, stage1)]
        params2 = replace(sampled, seed=cfg.seed + 1)
        stage2 = backend.generate(prompts2, cfg.k2, params2)
        out = []
        for q, p1, p2, g1, g2 in zip(questions, prompts, prompts2, stage1, stage2):
            a1 = _parse(g1, q, pubmedqa)
            rec = _record(q, p2, g2, _parse(g2, q, pubmedqa), gen_kwargs(params2, cfg.k2))
            rec["stage1"] = {"generations": g1, "answers": a1, "prediction": plurality(a1), "prompt": p1}
            rec["requests"].insert(0, {"prompt": p1, "gen_kwargs": gen_kwargs(sampled, cfg.k1)})
            out.append(rec)
        return out
    raise ValueError(f"unknown strategy {strategy!r} (few_shot, cot, self_consistency, ensemble_refinement)")


def _record(q: Question, prompt: str, generations: list[str], answers: list[str | None], kwargs: dict) -> dict:
    pred = plurality(answers)
    return {"question": q.question, "target": q.answer, "prediction": pred, "correct": pred == q.answer,
            "answers": answers, "parse_failures": sum(a is None for a in answers), "generations": generations,
            "prompt": prompt, "requests": [{"prompt": prompt, "gen_kwargs": kwargs}]}


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
