import math

import pytest
import torch

from discern.train import ElectraAdam, layerwise_lr_scales, lr_multiplier, param_groups


@pytest.mark.parametrize("fused", [True, False])
def test_adam_without_bias_correction_matches_formula(fused):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    ref = p.detach().clone()
    m = torch.zeros(5)
    v = torch.zeros(5)
    opt = ElectraAdam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, fused=fused)
    for t in range(3):
        g = torch.randn(5)
        p.grad = g.clone()
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref = ref - 0.1 * (m / (v.sqrt() + 1e-6) + 0.01 * ref)
    assert torch.allclose(p.detach(), ref, atol=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_adam_with_bias_correction_equals_torch_adamw(fused):
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(7))
    b = torch.nn.Parameter(a.detach().clone())
    o1 = ElectraAdam([a], lr=0.01, eps=1e-6, weight_decay=0.1, bias_correction=True, fused=fused)
    o2 = torch.optim.AdamW([b], lr=0.01, eps=1e-6, weight_decay=0.1)
    for _ in range(5):
        g = torch.randn(7)
        a.grad, b.grad = g.clone(), g.clone()
        o1.step()
        o2.step()
    assert torch.allclose(a, b, atol=1e-6)


def _two_groups(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    w = [torch.nn.Parameter(torch.randn(4, 3, generator=g)), torch.nn.Parameter(torch.randn(6, generator=g))]
    b = [torch.nn.Parameter(torch.randn(3, generator=g))]
    return [{"params": w, "weight_decay": 0.01}, {"params": b, "weight_decay": 0.0}]


@pytest.mark.parametrize("bias_correction", [True, False])
def test_fused_adam_equals_foreach_path(bias_correction):
    """The fused kernel and the nine foreach passes give the same parameters and moments after
    several steps, on two groups (with and without weight decay) and a learning-rate change."""
    ga, gb = _two_groups(0), _two_groups(0)
    fused = ElectraAdam(ga, lr=0.05, eps=1e-6, bias_correction=bias_correction, fused=True)
    loop = ElectraAdam(gb, lr=0.05, eps=1e-6, bias_correction=bias_correction, fused=False)
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        for opt in (fused, loop):
            for group in opt.param_groups:
                group["lr"] = 0.05 * (step + 1) / 6
        for pa, pb in zip([p for x in ga for p in x["params"]], [p for x in gb for p in x["params"]]):
            grad = torch.randn(pa.shape, generator=g)
            pa.grad, pb.grad = grad.clone(), grad.clone()
        fused.step()
        loop.step()
    for pa, pb in zip([p for x in ga for p in x["params"]], [p for x in gb for p in x["params"]]):
        torch.testing.assert_close(pa.detach(), pb.detach(), rtol=1e-6, atol=1e-6)
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(fused.state[pa][key], loop.state[pb][key], rtol=1e-6, atol=1e-7)
        assert fused.state[pa]["step"] == loop.state[pb]["step"] == 6
    # the two paths keep the same state layout: a checkpoint of one resumes the other
    loop.load_state_dict(fused.state_dict())
    assert loop.state[[p for x in gb for p in x["params"]][0]]["step"] == 6


def test_fused_adam_falls_back_when_step_counts_differ():
    """A parameter without a gradient for a step gets a smaller step count; the group then takes
    the foreach path, whose per-parameter bias correction is the formula's."""
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
    opt = ElectraAdam([a, b], lr=0.1, eps=1e-6, bias_correction=True, fused=True)
    a.grad = torch.ones(3)
    opt.step()  # b has no gradient: only a moves
    ga, gb = torch.full((3,), 0.5), torch.full((3,), -2.0)
    before_a, before_b = a.detach().clone(), b.detach().clone()
    a.grad, b.grad = ga.clone(), gb.clone()
    opt.step()
    m_a = 0.9 * (0.1 * torch.ones(3)) + 0.1 * ga
    v_a = 0.999 * (0.001 * torch.ones(3)) + 0.001 * ga * ga
    exp_a = before_a - 0.1 * (m_a / (1 - 0.9**2)) / ((v_a / (1 - 0.999**2)).sqrt() + 1e-6)
    exp_b = before_b - 0.1 * ((0.1 * gb) / 0.1) / (((0.001 * gb * gb) / 0.001).sqrt() + 1e-6)
    torch.testing.assert_close(a.detach(), exp_a)
    torch.testing.assert_close(b.detach(), exp_b)
    assert opt.state[a]["step"] == 2 and opt.state[b]["step"] == 1


def test_schedule_is_warmup_times_decay():
    T, W = 100, 10
    for t in (0, 1, 5, 10, 50, 99):
        assert math.isclose(lr_multiplier(t, T, W, "electra"), (1 - t / T) * min(1, t / W))
    assert lr_multiplier(5, T, W, "sequential") == 0.5
    assert math.isclose(lr_multiplier(55, T, W, "sequential"), 45 / 90)


def test_layerwise_decay_exponents_with_and_without_compat():
    names = ["electra.embeddings.word_embeddings.weight", "electra.encoder.layer.0.attention.self.query.weight",
             "electra.encoder.layer.11.output.dense.weight", "classifier.weight"]
    s = layerwise_lr_scales(names, 12, 0.8, bug_compat=True)
    assert s[names[0]] == 0.8 ** 14 and s[names[1]] == 0.8 ** 13 and s[names[2]] == 0.8 ** 2 and s[names[3]] == 1
    s = layerwise_lr_scales(names, 12, 0.8, bug_compat=False)
    assert s[names[0]] == 0.8 ** 13 and s[names[2]] == 0.8 ** 1 and s[names[3]] == 1


def test_weight_decay_excludes_layernorm_and_bias():
    from transformers import BertConfig, BertModel

    m = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16))
    groups = param_groups(m, 0.01)
    for g in groups:
        for n in g["names"]:
            excluded = n.endswith("bias") or "LayerNorm" in n
            assert g["weight_decay"] == (0.0 if excluded else 0.01), n
