"""Med-PaLM 2 on the real Qwen2.5-Coder-0.5B-Instruct (the registry's ``qwen2.5-0.5b``, bf16 by default): a
known answer through the chat template and exact option log-likelihoods, ``medqa eval`` on two MedQA-USMLE questions, and a long-form
answer for the rating app through the chat template.  The model is loaded once (``load_causal_lm`` caches it per
process, keyed by name and dtype)."""

from __future__ import annotations

import json

import pytest
import torch

from discern.cli import main
from discern.medqa.prompts import Question


@pytest.fixture(scope="module")
def qwen():
    from discern.llm import load_causal_lm

    return load_causal_lm("qwen2.5-0.5b", dtype=torch.bfloat16)


def test_qwen_is_loaded_right_a_known_answer_and_option_logliks(qwen):
    """The dequantised GGUF answers a known question (a broken load gives garbage); the option
    log-likelihoods are the exact scores of the letters.  This 0.5B file is near chance on medical letter
    questions (README), so no accuracy is asserted here: the method's exactness is tested in
    tests/llm/test_likelihood.py."""
    from discern.llm.generation import GenParams, TransformersBackend
    from discern.llm.likelihood import sequence_logprobs
    from discern.medqa.prompts import few_shot_prompt
    from discern.medqa.strategies import few_shot_loglik

    model, tok = qwen
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.dtype == torch.bfloat16
    assert model.config.num_hidden_layers == 24 and model.config.hidden_size == 896
    backend = TransformersBackend(model, tok, "qwen2.5-0.5b", chat=True)
    [[reply]] = backend.generate(["What is the capital of France? Answer with one word."], 1,
                                 GenParams(temperature=0.0, max_tokens=4))
    assert reply.strip().rstrip(".").lower() == "paris"
    ex = [Question("Which organ pumps blood through the body?", ["Lung", "Heart", "Liver", "Kidney"], "B")]
    q = Question("Which vitamin deficiency causes scurvy?", ["Vitamin C", "Vitamin A", "Vitamin K", "Vitamin D"], "A")
    [rec] = few_shot_loglik(model, tok, [q], ex)
    model32 = model.float()  # exactness in float32: shared-prefix scores equal full-sequence scores
    try:
        [rec32] = few_shot_loglik(model32, tok, [q], ex)
        full = sequence_logprobs(model32, tok, [f" ({x})" for x in "ABCD"], prefix=few_shot_prompt(ex, q))
    finally:
        model.to(torch.bfloat16)
    assert [rec32["logprobs"][x] for x in "ABCD"] == pytest.approx(full, abs=2e-3)
    assert rec["prediction"] == max("ABCD", key=lambda x: (rec["logprobs"][x], -ord(x)))
    assert rec["correct"] == (rec["prediction"] == "A")


def test_medqa_eval_on_medqa_usmle_with_qwen(qwen, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["medqa", "eval", "--backend", "qwen2.5-0.5b", "--datasets", "medqa-usmle", "--strategies", "few_shot",
            "--limit", "2", "--max-tokens", "8", "--out", str(out)]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["backend_calls"] == 2  # one prompt per question
    res = json.loads((out / "results.json").read_text())["accuracy"]["medqa-usmle"]["few_shot"]
    rows = [json.loads(x) for x in (out / "samples_medqa-usmle_few_shot.jsonl").read_text().splitlines()]
    assert len(rows) == res["n"] == 2 and res["acc"] == sum(r["acc"] for r in rows) / 2
    assert all(r["target"] in "ABCD" for r in rows)


def test_long_form_answer_for_the_rating_app_with_qwen(qwen, tmp_path, capsys):
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text(json.dumps({"id": "q1", "question": "What are common symptoms of the flu?"}) + "\n")
    out = tmp_path / "answers.jsonl"
    assert main(["medqa", "answer", "--backend", "qwen2.5-0.5b", "--questions", str(qfile), "--out", str(out),
                 "--max-tokens", "24"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["answers"] == 1 and printed["empty"] == 0
    [rec] = [json.loads(x) for x in out.read_text().splitlines()]
    assert rec["meta"]["id"] == "q1" and rec["model"].startswith("qwen2.5-0.5b")
    assert len(rec["answer"].split()) >= 5  # 24 tokens of an answer, not an empty completion
