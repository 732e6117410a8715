"""discern.nn.encoder.encode against Hugging Face's own ElectraModel forward: the same outputs and
the same gradients, bit for bit, for every encoder shape pre-training uses."""

import pytest
import torch
from transformers import ElectraConfig, ElectraModel

from discern.nn import attention_kernel, bf16_stream, fp32_narrow_layer_norms
from discern.nn.encoder import causal_bias, encode, fast_path


def _model(hidden=32, embedding=32, heads=2, layers=2, decoder=False, dropout=0.0, attention="fused", seed=0):
    torch.manual_seed(seed)
    cfg = ElectraConfig(vocab_size=50, embedding_size=embedding, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=16,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, is_decoder=decoder,
                        use_cache=False, attn_implementation=attention_kernel(attention, cuda=False,
                                                                             model_type="electra"))
    return ElectraModel(cfg).train()


def _batch(padding="right", B=4, L=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 50, (B, L), generator=g)
    keep = torch.ones(B, L, dtype=torch.long)
    if padding == "right":
        keep[1, 7:] = 0
        keep[3, 3:] = 0
    elif padding == "left":
        keep[2, :4] = 0
    ids[keep == 0] = 0
    seg = torch.zeros(B, L, dtype=torch.long)
    seg[:, L // 2:] = 1
    return ids, keep, seg


def _run(model, batch, fast: bool, autocast: bool):
    """Hidden states and every parameter's gradient of a fixed linear read-out of all positions."""
    ids, keep, seg = batch
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        if fast:
            h = encode(model, ids, keep, seg)
        else:
            h = model(ids, attention_mask=keep, token_type_ids=seg, use_cache=False).last_hidden_state
    w = torch.linspace(-1, 1, h.size(-1))
    (h.float() * w).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return h.detach(), grads


def _assert_same(model, batch, autocast):
    h_ref, g_ref = _run(model, batch, False, autocast)
    h, g = _run(model, batch, True, autocast)
    assert h.dtype == h_ref.dtype
    assert torch.equal(h, h_ref)
    assert sorted(g) == sorted(g_ref) == sorted(n for n, _ in model.named_parameters())
    for n in g_ref:
        assert torch.equal(g[n], g_ref[n]), n


@pytest.mark.parametrize("padding", ["none", "right", "left"])
@pytest.mark.parametrize("autocast", [False, True])
def test_bidirectional_encoder_matches_the_library_bit_for_bit(padding, autocast):
    model = _model()
    assert fast_path(model)
    if autocast:
        bf16_stream(model.embeddings)
    _assert_same(model, _batch(padding), autocast)


@pytest.mark.parametrize("padding", ["none", "right", "left"])
@pytest.mark.parametrize("autocast", [False, True])
def test_causal_tower_matches_the_library_bit_for_bit(padding, autocast):
    """Electric's noise towers: width 8 with one head, a projection from the 32-wide embeddings,
    fp32 LayerNorms under autocast as the quick preset has them."""
    model = _model(hidden=8, embedding=32, heads=1, layers=1, decoder=True)
    assert fast_path(model)
    if autocast:
        bf16_stream(model.embeddings)
        assert fp32_narrow_layer_norms(model) == 2
    _assert_same(model, _batch(padding), autocast)


def test_causal_mask_is_one_cached_triangle_without_padding():
    from discern.nn.encoder import attention_bias

    model = _model(decoder=True)
    bias = attention_bias(model, torch.ones(4, 12, dtype=torch.long), 4, 12, torch.float32, "cpu")
    assert bias.shape == (1, 1, 12, 12) and bias is causal_bias(12, torch.float32, "cpu")
    assert torch.equal(bias[0, 0] == 0, torch.ones(12, 12).tril().bool())
    keep = _batch("right")[1]
    padded = attention_bias(model, keep, 4, 12, torch.float32, "cpu")
    assert padded.shape == (4, 1, 12, 12)
    allowed = torch.ones(12, 12).tril().bool()[None] & keep.bool()[:, None, :]
    assert torch.equal(padded[:, 0] == 0, allowed)
    assert torch.equal(padded[:, 0][~allowed], torch.full((int((~allowed).sum()),), torch.finfo(torch.float32).min))


def test_bidirectional_mask_is_a_key_padding_row_or_nothing():
    from discern.nn.encoder import attention_bias

    model = _model()
    assert attention_bias(model, torch.ones(4, 12, dtype=torch.long), 4, 12, torch.float32, "cpu") is None
    row = attention_bias(model, _batch("right")[1], 4, 12, torch.float32, "cpu")
    assert row.shape == (4, 1, 1, 12)
    assert torch.equal(row[:, 0, 0] == 0, _batch("right")[1].bool())


def test_active_dropout_and_other_kernels_take_the_library_forward():
    """Dropout in training, or an attention kernel other than the fused one: ``encode`` calls
    the model itself (the same draws for the same seed); in eval mode dropout is off and the
    direct path applies again."""
    model = _model(dropout=0.1)
    assert not fast_path(model)
    ids, keep, seg = _batch("right")
    torch.manual_seed(3)
    a = encode(model, ids, keep, seg)
    torch.manual_seed(3)
    b = model(ids, attention_mask=keep, token_type_ids=seg).last_hidden_state
    assert torch.equal(a, b)
    assert fast_path(model.eval())
    with torch.no_grad():
        torch.testing.assert_close(encode(model, ids, keep, seg), model(ids, attention_mask=keep,
                                   token_type_ids=seg).last_hidden_state, rtol=0, atol=0)
    assert not fast_path(_model(attention="eager"))
    assert not fast_path(torch.nn.Linear(2, 2))


def test_a_hook_on_a_module_it_does_not_call_takes_the_library_forward():
    """Hooks on the linear layers and LayerNorms run either way; a hook on the model, a layer or
    a block whose forward the direct path skips sends the model down the library's path, so it runs."""
    model = _model()
    ids, keep, seg = _batch("right")
    calls = []
    model.encoder.layer[0].attention.self.query.register_forward_hook(lambda *a: calls.append("query"))
    encode(model, ids, keep, seg)
    assert fast_path(model) and calls == ["query"]
    for where in (model, model.encoder.layer[1], model.encoder.layer[0].intermediate):
        handle = where.register_forward_hook(lambda *a: calls.append("block"))
        assert not fast_path(model)
        calls.clear()
        encode(model, ids, keep, seg)
        assert calls == ["query", "block"]
        handle.remove()
    assert fast_path(model)
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        assert not fast_path(model)
    finally:
        handle.remove()


def test_no_mask_and_no_segments_default_as_in_the_library():
    model = _model()
    ids = _batch("none")[0]
    with torch.no_grad():
        assert torch.equal(encode(model, ids), model(ids).last_hidden_state)
