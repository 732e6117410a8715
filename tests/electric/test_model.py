import math

import pytest
import torch
import torch.nn.functional as F

from discern.electric.config import tiny
from discern.electric.model import (ElectricPretrainer, choose_noise_positions, load_pretrainer, nce_logits,
                                    reverse_within_length)
from discern.electric.pll import ElectricScorer, TwoTowerScorer

SPECIAL = [0, 1, 2, 3, 4]  # pad, unk, cls, sep, mask


def _model(seed=0, **overrides):
    cfg = tiny().model
    cfg.dropout = cfg.attention_dropout = 0.0
    for k, v in overrides.items():
        setattr(cfg, k, v)
    torch.manual_seed(seed)
    return ElectricPretrainer(cfg, 60, 0, SPECIAL).eval()


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 60, (3, 14), generator=g)
    attn = torch.ones_like(ids)
    ids[:, 0] = 2
    ids[0, 13] = 3
    ids[1, 9] = 3
    ids[1, 10:] = 0
    attn[1, 10:] = 0
    ids[2, 13] = 3
    return {"input_ids": ids, "attention_mask": attn}


def test_nce_logit_and_loss_match_hand_computed_values():
    # D = n p / (n p + k q) with p = exp(-E); the "noise" logit is log(1 - D) - log D = E + log q + log(k / n').
    energy = torch.tensor([[0.5, -1.0, 2.0]])
    log_q = torch.log(torch.tensor([[0.2, 0.05, 0.5]]))
    logits = nce_logits(energy, log_q, 0.15)
    expected = [0.5 + math.log(0.2) + math.log(0.15 / 0.85), -1.0 + math.log(0.05) + math.log(0.15 / 0.85),
                2.0 + math.log(0.5) + math.log(0.15 / 0.85)]
    assert torch.allclose(logits, torch.tensor([expected]), atol=1e-6)
    labels = torch.tensor([[0.0, 1.0, 1.0]])
    # -log D for data positions, -log(1 - D) for noise positions, D = 1 / (1 + exp(logit))
    by_hand = []
    for x, y in zip(expected, [0, 1, 1]):
        d = 1.0 / (1.0 + math.exp(x))
        by_hand.append(-math.log(d) if y == 0 else -math.log(1.0 - d))
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    assert torch.allclose(bce, torch.tensor([by_hand]), atol=1e-6)


def test_noise_log_prob_is_under_stop_gradient():
    energy = torch.zeros(1, 3, requires_grad=True)
    log_q = torch.log(torch.full((1, 3), 0.1)).requires_grad_()
    nce_logits(energy, log_q, 0.15).sum().backward()
    assert log_q.grad is None
    assert torch.equal(energy.grad, torch.ones(1, 3))


def test_noise_positions_unique_ceil_fraction_and_candidates_only():
    cand = torch.zeros(4, 30, dtype=torch.bool)
    for b, n in enumerate([1, 7, 20, 28]):
        cand[b, 1:1 + n] = True
    for seed in range(5):
        chosen = choose_noise_positions(cand, 0.15, torch.Generator().manual_seed(seed))
        assert chosen.sum(-1).tolist() == [math.ceil(0.15 * n) for n in [1, 7, 20, 28]]  # 1, 2, 3, 5
        assert not (chosen & ~cand).any()


def test_towers_never_see_the_token_they_predict():
    m = _model()
    b = _batch()
    ids, attn = b["input_ids"], b["attention_mask"]
    with torch.no_grad():
        base = m.noise(ids, attn).log_softmax(-1)
        for row, length in ((0, 14), (1, 10)):
            for t in range(1, length - 1):
                changed = ids.clone()
                changed[row, t] = 5 + (int(ids[row, t]) - 5 + 17) % 55
                out = m.noise(changed, attn).log_softmax(-1)
                assert torch.equal(out[row, t], base[row, t]), (row, t)
                # and the neighbours do see it (through LTR state t and RTL state t)
                assert not torch.allclose(out[row, t + 1], base[row, t + 1])
                assert not torch.allclose(out[row, t - 1], base[row, t - 1])


def test_reverse_within_length_is_an_involution_that_keeps_padding():
    x = torch.arange(12).view(2, 6)
    lengths = torch.tensor([6, 4])
    r = reverse_within_length(x, lengths)
    assert r.tolist() == [[5, 4, 3, 2, 1, 0], [9, 8, 7, 6, 10, 11]]
    assert torch.equal(reverse_within_length(r, lengths), x)


def test_every_sampled_position_is_labelled_noise_even_when_sample_equals_original(monkeypatch):
    import discern.electric.model as mod

    m = _model()
    b = _batch()
    captured = {}

    def original_tokens(logits, temperature=1.0, generator=None):  # the noise model "samples" the original
        return captured["targets"]

    real_choose = mod.choose_noise_positions

    def choose(cand, p, g=None):
        noised = real_choose(cand, p, g)
        captured["targets"] = b["input_ids"][noised]
        captured["noised"] = noised
        return noised

    seen = {}
    real_bce = F.binary_cross_entropy_with_logits

    def bce(logits, labels, **kw):
        seen["labels"] = labels
        return real_bce(logits, labels, **kw)

    monkeypatch.setattr(mod, "gumbel_sample", original_tokens)
    monkeypatch.setattr(mod, "choose_noise_positions", choose)
    monkeypatch.setattr(mod.F, "binary_cross_entropy_with_logits", bce)
    _, met = m(b)
    assert torch.equal(seen["labels"], captured["noised"].float())
    assert seen["labels"].sum() > 0
    assert float(met["sample_is_original"]) == 1.0


def test_loss_is_weighted_sum_and_gradients_reach_both_models():
    m = _model()
    m.train()
    loss, met = m(_batch(), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(loss, 50.0 * met["nce_loss"] + met["cloze_loss"], atol=1e-5)
    loss.backward()
    head = m.energy_model.discriminator_predictions.dense_prediction.weight
    assert head.grad is not None and head.grad.abs().sum() > 0
    assert m.noise.dense.weight.grad.abs().sum() > 0
    assert m.noise.ltr.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert m.noise.rtl.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    # the towers learn only from the cloze loss (log q is under stop-gradient in the NCE logit)
    m2 = _model()
    m2.cfg.gen_weight = 0.0
    loss2, _ = m2(_batch(), generator=torch.Generator().manual_seed(0))
    loss2.backward()
    assert m2.noise.ltr.encoder.layer[0].attention.self.query.weight.grad.abs().sum() == 0
    assert m2.noise.dense.weight.grad.abs().sum() == 0


def test_cloze_head_rows_padded_to_a_multiple_change_nothing_but_the_shape(monkeypatch):
    """The cloze head's C candidate rows go through the head padded to a multiple of HEAD_ROWS
    (bounded shapes for oneDNN's kernel cache); the padded rows' losses are dropped, so the loss,
    the metrics, the samples and every gradient are those of the head on the C rows alone."""
    from discern.electric import model as em

    shapes = []
    run = {}
    for rows in (1, 64):
        monkeypatch.setattr(em, "HEAD_ROWS", rows)
        m = _model(seed=3).train()
        seen = []
        m.noise.dense.register_forward_hook(lambda mod, args, out: seen.append(tuple(args[0].shape)))
        loss, met = m(_batch(), generator=torch.Generator().manual_seed(5))
        loss.backward()
        shapes.append(seen[-1])
        run[rows] = (loss.detach(), met, {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    C = int((_batch()["attention_mask"].bool() & (_batch()["input_ids"] > 4)).sum())
    assert shapes == [(C, shapes[0][1]), (64, shapes[0][1])] and C < 64
    (l1, m1, g1), (l64, m64, g64) = run[1], run[64]
    torch.testing.assert_close(l64, l1, rtol=1e-6, atol=1e-6)
    assert m1.keys() == m64.keys()
    for k in m1:
        torch.testing.assert_close(m64[k], m1[k], rtol=1e-6, atol=1e-6, msg=k)
    assert g1.keys() == g64.keys()
    for n in g1:
        torch.testing.assert_close(g64[n], g1[n], rtol=1e-5, atol=1e-7, msg=n)


def test_energy_model_runs_once_per_training_step(monkeypatch):
    m = _model()
    calls = []
    m.energy_model.discriminator_predictions.register_forward_hook(lambda *a: calls.append("head"))
    m.energy_model.electra.encoder.layer[0].attention.self.query.register_forward_hook(lambda *a: calls.append("layer"))
    m(_batch())
    assert calls == ["layer", "head"]


def test_pll_is_minus_sum_of_token_energies_in_one_pass():
    from discern.data.tokenizer import train_wordpiece

    tok = train_wordpiece(["the cat sat on the mat", "a dog ran in the park today", "he said so"], 60)
    cfg = tiny().model
    cfg.dropout = cfg.attention_dropout = 0.0
    torch.manual_seed(0)
    m = ElectricPretrainer(cfg, len(tok), tok.pad_token_id, tok.all_special_ids).eval()
    calls = []
    m.energy_model.register_forward_hook(lambda *a: calls.append(1))
    sentences = ["the cat sat on the mat", "he said so", "a dog ran in the park today"]
    scorer = ElectricScorer(m.energy_model, tok, batch_size=8)
    scores = scorer.score(sentences)
    assert len(calls) == 1  # all sentences, all positions: one pass
    for s, got in zip(sentences, scores):
        enc = tok(s, return_tensors="pt")
        with torch.no_grad():
            e = m.energy_model(**enc).logits[0]  # (L,) unbatched
        assert got == pytest.approx(-float(e[1:-1].sum()), abs=1e-4)
        assert scorer.passes(s) == 1
    two = TwoTowerScorer(m.noise, tok, batch_size=2).score(sentences)
    for s, got in zip(sentences, two):
        enc = tok(s, return_tensors="pt")
        with torch.no_grad():
            lq = m.noise(enc["input_ids"], enc["attention_mask"]).log_softmax(-1)[0]
        ids = enc["input_ids"][0]
        want = sum(float(lq[t, ids[t]]) for t in range(1, len(ids) - 1))
        assert got == pytest.approx(want, abs=1e-4)


def test_save_and_load_round_trip(tmp_path):
    m = _model()
    b = _batch()
    m.save_pretrained(tmp_path / "model")
    m2 = load_pretrainer(tmp_path / "model", m.cfg, SPECIAL).eval()
    with torch.no_grad():
        assert torch.allclose(m.energies(b["input_ids"], b["attention_mask"]),
                              m2.energies(b["input_ids"], b["attention_mask"]))
        assert torch.allclose(m.noise(b["input_ids"], b["attention_mask"]),
                              m2.noise(b["input_ids"], b["attention_mask"]), atol=1e-6)
    assert m2.noise.ltr.embeddings is m2.energy_model.electra.embeddings


def test_details_record_tokens_noise_offsets_labels_and_nce_bce():
    m = _model()
    b = _batch()
    details: dict = {}
    _, met = m(b, generator=torch.Generator().manual_seed(0), details=details)
    ((tokens, offset, labels, bce),) = details["tokens"]
    real = b["attention_mask"].bool()
    assert tokens.shape == offset.shape == labels.shape == bce.shape == (int(real.sum()),)
    assert float(bce.mean()) == pytest.approx(float(met["nce_loss"]), rel=1e-5)
    # offset = log q(token) + log(k / (n - k)): at special tokens log q is 0
    special = torch.isin(b["input_ids"][real], torch.tensor(SPECIAL)).numpy()
    assert offset[special] == pytest.approx(math.log(0.15 / 0.85), abs=1e-6)
    assert (offset[~special] < math.log(0.15 / 0.85)).all()
    assert labels[special].sum() == 0 and labels.sum() > 0


@pytest.mark.parametrize("on", [True, False])
def test_bf16_stream_option_reaches_the_energy_model_and_the_towers(on):
    m = _model(bf16_stream=on, embedding=tiny().model.hidden)  # no projection: fp32 stream without it
    assert bool(m.energy_model.electra.embeddings._forward_hooks) == on
    assert m.noise.ltr.embeddings is m.energy_model.electra.embeddings
    seen = []
    h = m.energy_model.electra.encoder.layer[0].register_forward_hook(lambda mod, a, o: seen.append(o[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m.energy_model(_batch()["input_ids"])
    h.remove()
    assert seen == [torch.bfloat16 if on else torch.float32]
    # the towers' narrow LayerNorms (width 16 here) compute in fp32 under autocast; wider ones do not
    narrow = [mod for mod in m.noise.modules() if isinstance(mod, torch.nn.LayerNorm)
              and mod.normalized_shape[-1] <= 16]
    wide = [mod for mod in m.modules() if isinstance(mod, torch.nn.LayerNorm) and mod.normalized_shape[-1] > 16]
    assert len(narrow) == 8 and wide
    assert all(getattr(mod, "_discern_narrow_fp32", False) == on for mod in narrow)
    assert not any(getattr(mod, "_discern_narrow_fp32", False) for mod in wide)
