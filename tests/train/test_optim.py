import math

import torch

from discern.train import ElectraAdam, layerwise_lr_scales, lr_multiplier, param_groups


def test_adam_without_bias_correction_matches_formula():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    ref = p.detach().clone()
    m = torch.zeros(5)
    v = torch.zeros(5)
    opt = ElectraAdam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
    for t in range(3):
        g = torch.randn(5)
        p.grad = g.clone()
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref = ref - 0.1 * (m / (v.sqrt() + 1e-6) + 0.01 * ref)
    assert torch.allclose(p.detach(), ref, atol=1e-6)


def test_adam_with_bias_correction_equals_torch_adamw():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(7))
    b = torch.nn.Parameter(a.detach().clone())
    o1 = ElectraAdam([a], lr=0.01, eps=1e-6, weight_decay=0.1, bias_correction=True)
    o2 = torch.optim.AdamW([b], lr=0.01, eps=1e-6, weight_decay=0.1)
    for _ in range(5):
        g = torch.randn(7)
        a.grad, b.grad = g.clone(), g.clone()
        o1.step()
        o2.step()
    assert torch.allclose(a, b, atol=1e-6)


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
