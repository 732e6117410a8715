"""The four strategies over a scripted backend: prompts sent, sample counts, votes, ER's stage 2."""

import pytest

from discern.llm.generation import GenParams
from discern.medqa.prompts import Question, cot_prompt, few_shot_prompt, refinement_prompt
from discern.medqa.strategies import StrategyConfig, run_strategy

EX = [Question("What is 1+1?", ["1", "2", "3", "4"], "B", "One and one make two.")]
QS = [Question("Scurvy comes from a lack of vitamin?", ["A", "B12", "C", "D"], "C"),
      Question("Which organ pumps blood?", ["Liver", "Lung", "Heart", "Kidney"], "C")]


class _Scripted:
    """Answers from a script per (stage, sample index); records every call."""

    name = "scripted"

    def __init__(self, script):
        self.script, self.calls = script, []

    def generate(self, prompts, n, params: GenParams):
        self.calls.append((list(prompts), n, params))
        stage = "stage2" if "Students' reasonings:" in prompts[0] else "stage1"
        return [[self.script(stage, qi, i) for i in range(n)] for qi in range(len(prompts))]


def test_few_shot_and_cot_are_one_greedy_completion_each():
    be = _Scripted(lambda stage, q, i: " (C)" if stage == "stage1" else "")
    recs = run_strategy(be, "few_shot", QS, EX)
    (prompts, n, params), = be.calls
    assert prompts == [few_shot_prompt(EX, q) for q in QS] and n == 1 and params.temperature == 0.0
    assert [r["prediction"] for r in recs] == ["C", "C"] and all(r["correct"] for r in recs)
    be = _Scripted(lambda stage, q, i: "Vitamin C deficiency. Answer: (C)")
    recs = run_strategy(be, "cot", QS, EX)
    assert be.calls[0][0] == [cot_prompt(EX, q) for q in QS] and be.calls[0][1] == 1
    assert recs[0]["answers"] == ["C"]


def test_self_consistency_votes_over_k_samples():
    letters = "CCBBA" + "C" * 6  # 11 samples: C wins 8 to 2 to 1
    be = _Scripted(lambda stage, q, i: f"... Answer: ({letters[i]})" if q == 0 else "no idea")
    recs = run_strategy(be, "self_consistency", QS, EX, StrategyConfig(k=11, temperature=0.7))
    (_, n, params), = be.calls
    assert n == 11 and params.temperature == 0.7
    assert recs[0]["prediction"] == "C" and recs[0]["answers"][:5] == list("CCBBA")
    assert recs[1]["prediction"] is None and recs[1]["parse_failures"] == 11 and not recs[1]["correct"]


def test_ensemble_refinement_conditions_stage_two_on_stage_one():
    def script(stage, q, i):
        if stage == "stage1":
            return f"reasoning {q}.{i} Answer: ({'B' if i % 2 else 'C'})"
        return f"refined Answer: ({'C' if i < 20 else 'A'})"

    be = _Scripted(script)
    cfg = StrategyConfig(k1=11, k2=33)
    recs = run_strategy(be, "ensemble_refinement", QS, EX, cfg)
    (p1, n1, _), (p2, n2, params2) = be.calls
    assert (n1, n2) == (11, 33)
    stage1 = [[script("stage1", q, i) for i in range(11)] for q in range(2)]
    assert p2 == [refinement_prompt(EX, q, g) for q, g in zip(QS, stage1)]
    assert "11 reasoning: reasoning 0.10 Answer: (C)" in p2[0]
    assert params2.seed != be.calls[0][2].seed  # stage 2 draws its own samples
    assert recs[0]["prediction"] == "C" and len(recs[0]["answers"]) == 33
    assert recs[0]["stage1"]["answers"] == ["C", "B"] * 5 + ["C"]


def test_pubmedqa_answers_map_to_letters():
    be = _Scripted(lambda stage, q, i: "The evidence supports it. Answer: yes")
    q = Question("Does X cause Y?", ["Yes", "No", "Maybe"], "A", context="Abstract text.")
    (rec,) = run_strategy(be, "cot", [q], [], pubmedqa=True)
    assert rec["prediction"] == "A" and rec["correct"]


def test_few_shot_by_option_loglikelihood_picks_the_most_likely_letter():
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    from discern.llm import sequence_logprobs
    from discern.medqa.strategies import few_shot_loglik

    chars = ["<eos>"] + sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ()?:+\n.,'"))
    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(chars)}, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    hf = GPT2TokenizerFast(tokenizer_object=tok, eos_token="<eos>", bos_token="<eos>", unk_token="<eos>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(chars), n_positions=512, n_embd=16, n_layer=1, n_head=2))
    (rec,) = few_shot_loglik(model, hf, QS[:1], EX)
    by_hand = sequence_logprobs(model, hf, [" (A)", " (B)", " (C)", " (D)"], prefix=rec["prompt"])
    assert [rec["logprobs"][x] for x in "ABCD"] == pytest.approx([float(v) for v in by_hand], abs=1e-6)
    assert rec["prediction"] == "ABCD"[max(range(4), key=lambda i: float(by_hand[i]))]
