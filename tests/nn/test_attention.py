"""The fused eager attention (discern.nn.attention) against Hugging Face's eager formula."""

import json

import pytest
import torch

from discern.nn import attention_kernel
from transformers.models.bert.modeling_bert import eager_attention_forward

from discern.nn.attention import NAME, fused_attention, key_padding_mask, register


class _Module(torch.nn.Module):
    pass


def _qkv(B=3, h=2, L=7, d=8, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    # (B, L, h, d) projections viewed as (B, h, L, d), as Hugging Face passes them (not contiguous)
    return [torch.randn(B, L, h, d, generator=g, dtype=dtype).transpose(1, 2).requires_grad_() for _ in range(3)]


def _reference(q, k, v, mask, scale):
    """softmax(q k^T * scale + mask) v, written out (Vaswani et al. 2017, eq. 1)."""
    s = torch.einsum("bhqd,bhkd->bhqk", q, k) * scale
    if mask is not None:
        s = s + mask
    return torch.einsum("bhqk,bhkd->bqhd", torch.softmax(s, -1), v)


def _masks(B=3, L=7, dtype=torch.float64):
    keep = torch.ones(B, L, dtype=torch.bool)
    keep[1, 4:] = False
    keep[2, 6:] = False
    row = torch.zeros(B, 1, 1, L, dtype=dtype).masked_fill(~keep[:, None, None, :], torch.finfo(dtype).min)
    causal = torch.zeros(1, 1, L, L, dtype=dtype).masked_fill(torch.ones(L, L).triu(1).bool(), torch.finfo(dtype).min)
    return {"none": None, "key padding": row, "causal square": causal.expand(B, 1, L, L), "causal, one for all": causal}


@pytest.mark.parametrize("kind", ["none", "key padding", "causal square", "causal, one for all"])
def test_fused_attention_equals_the_formula_in_values_and_gradients(kind):
    mask = _masks()[kind]
    q, k, v = _qkv()
    out, weights = fused_attention(_Module(), q, k, v, mask, scaling=0.3)
    assert weights is None and out.shape == (3, 7, 2, 8)
    ref = _reference(q, k, v, mask, 0.3)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    got = torch.autograd.grad(out, (q, k, v), g)
    want = torch.autograd.grad(ref, (q, k, v), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    if kind == "key padding":  # padded keys get no weight: their values get no gradient
        assert torch.count_nonzero(got[2][1, :, 4:]) == 0 and torch.count_nonzero(got[1][1, :, 4:]) == 0


def test_default_scale_is_one_over_root_d_and_the_mask_gets_no_gradient():
    q, k, v = _qkv(d=16)
    mask = _masks()["key padding"].clone().requires_grad_()
    out, _ = fused_attention(_Module(), q, k, v, mask)
    torch.testing.assert_close(out, _reference(q, k, v, mask, 0.25), rtol=0, atol=1e-12)
    out.sum().backward()
    assert mask.grad is None and all(x.grad is not None for x in (q, k, v))


def test_bf16_autocast_gives_bf16_and_the_eager_values():
    """Under bf16 autocast the fused path computes in bf16 as eager does; with 64-wide heads the
    scale is a power of two and the outputs are bitwise those of the eager formula."""
    q, k, v = (x.detach().float() for x in _qkv(B=4, h=2, L=32, d=64, dtype=torch.float32))
    mask = _masks(B=4, L=32, dtype=torch.bfloat16)["key padding"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = fused_attention(_Module(), q, k, v, mask)
        ref, _ = eager_attention_forward(_Module().eval(), q, k, v, mask, scaling=64 ** -0.5)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out.contiguous(), ref)


def test_dropout_in_training_takes_the_eager_formula():
    q, k, v = _qkv()
    m = _Module().train()
    torch.manual_seed(4)
    out, _ = fused_attention(m, q, k, v, None, scaling=0.5, dropout=0.5)
    torch.manual_seed(4)
    ref, _ = eager_attention_forward(m, q, k, v, None, scaling=0.5, dropout=0.5)
    assert torch.equal(out, ref)
    m.eval()  # no dropout at evaluation, whatever the rate
    torch.testing.assert_close(fused_attention(m, q, k, v, None, scaling=0.5, dropout=0.5)[0],
                               _reference(q, k, v, None, 0.5), rtol=0, atol=1e-12)


def test_key_padding_mask_is_a_row_none_without_padding_and_eager_for_other_patterns():
    from transformers.masking_utils import bidirectional_mask_function, causal_mask_function, eager_mask

    keep = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]).bool()  # as create_bidirectional_mask passes it
    row = key_padding_mask(2, 4, 4, mask_function=bidirectional_mask_function, attention_mask=keep,
                           dtype=torch.bfloat16, allow_is_bidirectional_skip=True)
    lo = torch.finfo(torch.bfloat16).min
    assert row.shape == (2, 1, 1, 4) and row.dtype == torch.bfloat16
    assert row[0, 0, 0].tolist() == [0.0, 0.0, 0.0, lo] and row[1, 0, 0].tolist() == [0.0] * 4
    full = torch.ones(2, 4, dtype=torch.bool)
    assert key_padding_mask(2, 4, 4, mask_function=bidirectional_mask_function, attention_mask=full,
                            allow_is_bidirectional_skip=True) is None
    kept = key_padding_mask(2, 4, 4, mask_function=bidirectional_mask_function, attention_mask=full)
    assert kept.shape == (2, 1, 1, 4) and torch.count_nonzero(kept) == 0  # no skip allowed: a zero row
    assert key_padding_mask(2, 4, 4, mask_function=bidirectional_mask_function, attention_mask=None) is None
    causal = key_padding_mask(2, 4, 4, mask_function=causal_mask_function, attention_mask=keep)
    assert torch.equal(causal, eager_mask(2, 4, 4, mask_function=causal_mask_function, attention_mask=keep))
    assert causal.shape == (2, 1, 4, 4)


def _encoder(impl, kind="electra", decoder=False):
    import transformers

    kw = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, is_decoder=decoder, attn_implementation=impl)
    torch.manual_seed(0)
    if kind == "electra":
        return transformers.ElectraForPreTraining(transformers.ElectraConfig(embedding_size=16, **kw)).double()
    return transformers.BertForMaskedLM(transformers.BertConfig(**kw)).double()


@pytest.mark.parametrize("kind,decoder", [("electra", False), ("electra", True), ("bert", False)])
def test_the_listed_encoders_train_the_same_with_the_fused_kernel(kind, decoder, tmp_path):
    """ELECTRA's discriminator and BERT (bidirectional, padded batch) and a causal tower: the same
    logits and the same gradient for every parameter as with Hugging Face's eager attention."""
    from discern.nn.kernels import FUSED_MODEL_TYPES

    assert kind in FUSED_MODEL_TYPES
    eager = _encoder("eager", kind, decoder)
    fused = _encoder(attention_kernel("auto", cuda=False, model_type=kind), kind, decoder)
    fused.load_state_dict(eager.state_dict())
    assert fused.config._attn_implementation == NAME
    ids = torch.randint(5, 40, (4, 9), generator=torch.Generator().manual_seed(2))
    attn = torch.ones(4, 9, dtype=torch.long)
    attn[1, 5:] = 0
    attn[3, 8:] = 0
    kw = {"use_cache": False} if decoder else {}
    outs = [m(ids, attention_mask=attn, **kw).logits for m in (eager, fused)]
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-12)
    for m, o in zip((eager, fused), outs):
        (o * (attn if o.dim() == 2 else attn.unsqueeze(-1))).sum().backward()
    grads = {n: p.grad for n, p in eager.named_parameters()}
    for n, p in fused.named_parameters():
        assert (p.grad is None) == (grads[n] is None), n
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[n], rtol=0, atol=1e-10, msg=n)
    # the kernel is a choice of this process: a saved checkpoint loads with the library's default
    fused.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert not [k for k in saved if "attn" in k]


def test_register_is_idempotent_and_names_the_kernel():
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    assert register() == register() == NAME
    assert AttentionInterface._global_mapping[NAME] is fused_attention
    assert AttentionMaskInterface._global_mapping[NAME] is key_padding_mask
