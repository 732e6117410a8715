import math

import torch

from discern.fwl.dynamic import evaluate, segment_nll


def _lm():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=30, n_positions=64, n_embd=16, n_layer=2, n_head=2))


def test_dynamic_evaluation_adapts_after_scoring_and_leaves_the_model_alone():
    model = _lm()
    before = [p.detach().clone() for p in model.parameters()]
    ids = torch.tensor([[3, 7, 11, 5] * 24])  # a repeated pattern: adaptation must help
    static = evaluate(model, ids, segment_len=16)
    dyn = evaluate(model, ids, segment_len=16, dynamic=True, lr=0.5)
    assert static["tokens"] == dyn["tokens"] == 95
    # per segment, in order: five of 16 predicted tokens and a last one of 15
    assert static["segment_tokens"] == dyn["segment_tokens"] == [16, 16, 16, 16, 16, 15]
    assert math.isclose(sum(static["segment_nll"]), static["nll"], rel_tol=1e-12)
    assert dyn["segment_nll"][0] == static["segment_nll"][0]  # nothing adapted before the first segment
    assert sum(dyn["segment_nll"][1:]) < sum(static["segment_nll"][1:])
    assert dyn["ppl"] < static["ppl"]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # the first segment is scored before any update: identical in both
    with torch.no_grad():
        first, n = segment_nll(model, ids[:, :17])
    one_seg = evaluate(model, ids[:, :17], segment_len=16, dynamic=True, lr=0.5)
    assert math.isclose(one_seg["nll"], float(first), rel_tol=1e-6) and n == 16
