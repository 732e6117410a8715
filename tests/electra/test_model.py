import pytest
import torch
import torch.nn.functional as F

from discern.electra import ElectraPretrainer, MLMPretrainer, ModelConfig, load_pretrainer
from discern.electra import model as model_mod
from discern.electra.flops import electra_small, train_flops

V = 120
SPECIAL = [0, 1, 2, 3, 4]


def cfg(**kw):
    base = dict(layers=2, hidden=32, embedding=16, heads=2, ffn=64, max_len=32, generator_size=0.5,
                dropout=0.0, attention_dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)


def batch(B=4, L=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, L), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3
    attn = torch.ones(B, L, dtype=torch.long)
    attn[0, 16:] = 0
    ids[0, 16:] = 0
    ids[0, 15] = 3
    return {"input_ids": ids, "attention_mask": attn, "token_type_ids": torch.zeros(B, L, dtype=torch.long)}


def make(**kw):
    torch.manual_seed(0)
    return ElectraPretrainer(cfg(**kw), V, 0, SPECIAL, 4)


def spy_discriminator_input(monkeypatch, m) -> dict:
    """``seen["ids"]``: the ids the discriminator's encoder receives in the next forward."""
    seen = {}
    orig = model_mod.encode

    def spy(model, ids, *a, **kw):
        if model is m.discriminator.electra:
            seen["ids"] = ids.clone()
        return orig(model, ids, *a, **kw)

    monkeypatch.setattr(model_mod, "encode", spy)
    return seen


def test_embeddings_shared_and_generator_tied():
    m = make()
    d, g = m.discriminator, m.generator
    assert g.electra.embeddings is d.electra.embeddings  # token, position, segment and LayerNorm
    assert g.generator_lm_head.weight is d.electra.embeddings.word_embeddings.weight
    assert g.config.hidden_size == 16 and d.config.hidden_size == 32 and g.config.num_hidden_layers == 2


def test_loss_is_mlm_plus_50_disc_and_discriminator_never_sees_mask(monkeypatch):
    m = make()
    seen = spy_discriminator_input(monkeypatch, m)
    torch.manual_seed(5)
    loss, met = m(batch())
    assert torch.allclose(loss, met["mlm_loss"] + 50.0 * met["disc_loss"], atol=1e-5)
    assert not (seen["ids"] == 4).any()


def test_correct_samples_are_labelled_real(monkeypatch):
    """Force the generator to sample the original token: no position may be labelled replaced."""
    m = make()
    b = batch()
    captured = {}

    def always_original(logits, temperature=1.0, generator=None):
        return captured["targets"]

    real_mask = model_mod.mask_tokens

    def spy_mask(*a, **k):
        out = real_mask(*a, **k)
        captured["targets"] = out.targets
        return out

    monkeypatch.setattr(model_mod, "gumbel_sample", always_original)
    monkeypatch.setattr(model_mod, "mask_tokens", spy_mask)
    torch.manual_seed(0)
    _, met = m(b)
    assert float(met["replaced_frac"]) == 0.0
    # and the discriminator loss equals BCE against all-zero labels over real tokens
    d_logits = m.discriminator(b["input_ids"], attention_mask=b["attention_mask"]).logits
    w = b["attention_mask"].float()
    ref = (F.binary_cross_entropy_with_logits(d_logits, torch.zeros_like(d_logits), reduction="none") * w).sum() / w.sum()
    assert torch.allclose(met["disc_loss"], ref, atol=1e-5)


def test_labels_mark_exactly_the_changed_positions(monkeypatch):
    m = make()
    b = batch()
    got = {}
    real = F.binary_cross_entropy_with_logits

    def spy(logits, labels, **kw):
        got["labels"] = labels.clone()
        return real(logits, labels, **kw)

    monkeypatch.setattr(model_mod.F, "binary_cross_entropy_with_logits", spy)
    seen = spy_discriminator_input(monkeypatch, m)
    torch.manual_seed(3)
    m(b)
    assert torch.equal(got["labels"].bool(), seen["ids"] != b["input_ids"])


def test_discriminator_loss_sends_no_gradient_to_the_generator():
    m = make(gen_weight=0.0)
    torch.manual_seed(1)
    loss, _ = m(batch())
    loss.backward()
    gen_only = [(n, p) for n, p in m.generator.named_parameters() if not n.startswith("electra.embeddings")
                and p is not m.discriminator.electra.embeddings.word_embeddings.weight]
    assert gen_only
    for n, p in gen_only:
        assert p.grad is None or torch.count_nonzero(p.grad) == 0, n
    # the discriminator and the shared embeddings do get gradient
    assert torch.count_nonzero(m.discriminator.discriminator_predictions.dense.weight.grad) > 0
    assert torch.count_nonzero(m.discriminator.electra.embeddings.word_embeddings.weight.grad) > 0


def test_generator_loss_only_at_masked_slots_matches_full_logits():
    m = make()
    b = batch()
    torch.manual_seed(7)
    mk = m._mask(b["input_ids"], b["attention_mask"], V)
    h = m.generator.electra(mk.input_ids, attention_mask=b["attention_mask"]).last_hidden_state
    sparse = model_mod.masked_lm_logits(m.generator, h, mk.positions)  # (B, N, V)
    full = m.generator(mk.input_ids, attention_mask=b["attention_mask"]).logits  # (B, L, V)
    dense = full.gather(1, mk.positions.unsqueeze(-1).expand(-1, -1, V))
    assert torch.allclose(sparse, dense, atol=1e-5)


def test_hugging_face_round_trip(tmp_path):
    from transformers import AutoModel, ElectraForMaskedLM, ElectraForPreTraining

    m = make()
    m.eval()
    m.save_pretrained(tmp_path)
    d = ElectraForPreTraining.from_pretrained(tmp_path / "discriminator").eval()
    g = ElectraForMaskedLM.from_pretrained(tmp_path / "generator").eval()
    b = batch()
    with torch.no_grad():
        assert torch.allclose(d(b["input_ids"]).logits, m.discriminator(b["input_ids"]).logits, atol=1e-6)
        assert torch.allclose(g(b["input_ids"]).logits, m.generator(b["input_ids"]).logits, atol=1e-6)
        enc = AutoModel.from_pretrained(tmp_path / "discriminator").eval()
        ref = m.discriminator.electra(b["input_ids"]).last_hidden_state
        assert torch.allclose(enc(b["input_ids"]).last_hidden_state, ref, atol=1e-6)
    again = load_pretrainer(tmp_path, cfg(), SPECIAL, 4)
    assert again.generator.electra.embeddings is again.discriminator.electra.embeddings
    for (n1, p1), (n2, p2) in zip(m.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1


def test_mlm_baseline_round_trip(tmp_path):
    torch.manual_seed(0)
    m = MLMPretrainer(cfg(), V, 0, SPECIAL, 4)
    assert m.mlm.generator_lm_head.weight is m.mlm.electra.embeddings.word_embeddings.weight
    loss, met = m(batch())
    assert torch.allclose(loss, met["mlm_loss"])
    m.save_pretrained(tmp_path)
    again = load_pretrainer(tmp_path, cfg(), SPECIAL, 4)
    for (n1, p1), (n2, p2) in zip(m.state_dict().items(), again.state_dict().items()):
        assert torch.equal(p1, p2), n1


def test_flops_reproduce_electra_small_table_1():
    d, g = electra_small()
    total = train_flops(d, 128, 1_000_000, disc=True, generator=g)
    assert round(total / 1e17) == 14  # paper Table 1: 1.4e18
    assert total == pytest.approx(1.4245e18, rel=1e-3)


def test_eager_and_sdpa_attention_give_the_same_losses_and_gradients():
    """``model.attention`` picks a kernel, not a model: same weights, same draws, same numbers
    (a padded row included)."""
    out = {}
    for kind in ("eager", "sdpa"):
        m = make(attention=kind)
        assert m.discriminator.config._attn_implementation == kind
        torch.manual_seed(5)
        loss, met = m(batch())
        loss.backward()
        out[kind] = (met["mlm_loss"], met["disc_loss"], m.discriminator.electra.encoder.layer[0]
                     .attention.self.query.weight.grad.clone())
    for a, b in zip(out["eager"], out["sdpa"]):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_details_record_each_real_token_with_its_label_and_discriminator_bce():
    m = make().eval()
    b = batch()
    details: dict = {}
    torch.manual_seed(3)
    _, met = m(b, details)
    ((tokens, labels, bce),) = details["tokens"]
    real = b["attention_mask"].bool()
    assert tokens.shape == labels.shape == bce.shape == (int(real.sum()),)  # padding left out
    # the recorded BCE averages to the reported loss, and the labels count the replaced fraction
    assert float(bce.mean()) == pytest.approx(float(met["disc_loss"]), rel=1e-5)
    assert float(labels.mean()) == pytest.approx(float(met["replaced_frac"]), rel=1e-6)
    # the tokens are the discriminator's input: originals where not replaced
    orig = b["input_ids"][real].numpy()
    assert (tokens[~labels] == orig[~labels]).all() and (tokens[labels] != orig[labels]).all()


@pytest.mark.parametrize("on", [True, False])
def test_bf16_stream_option_reaches_every_encoder(on):
    """``model.bf16_stream``: the discriminator (and the embeddings it shares with the generator)
    and the MLM baseline get a bf16 residual stream under bf16 autocast, or none of them does."""
    m = make(embedding=32, bf16_stream=on)  # embedding = hidden: no projection, fp32 stream without it
    mlm = MLMPretrainer(cfg(embedding=32, bf16_stream=on), V, 0, SPECIAL, 4)
    for enc in (m.discriminator.electra, mlm.mlm.electra):
        seen = []
        h = enc.encoder.layer[0].register_forward_hook(lambda mod, a, o: seen.append(o[0].dtype))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            enc(batch()["input_ids"])
        h.remove()
        assert seen == [torch.bfloat16 if on else torch.float32]
    torch.manual_seed(5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = m(batch())
    loss.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in m.parameters())
    assert m.discriminator.electra.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
