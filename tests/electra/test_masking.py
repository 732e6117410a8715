import torch

from discern.electra.masking import mask_tokens, max_predictions
from discern.nn import gumbel_sample

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = torch.tensor([PAD, UNK, CLS, SEP, MASK])


def batch(lengths, L=128, vocab=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (len(lengths), L), generator=g)
    attn = torch.zeros(len(lengths), L, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, 0], ids[i, n - 1] = CLS, SEP
        ids[i, n:] = PAD
        attn[i, :n] = 1
    return ids, attn


def test_max_predictions_is_19_for_128():
    assert max_predictions(128, 0.15) == 19
    assert max_predictions(512, 0.15) == 79


def test_counts_follow_the_official_rule():
    lengths = [128, 100, 50, 7, 3, 2, 64]
    ids, attn = batch(lengths)
    m = mask_tokens(ids, attn, SPECIAL, MASK, 1000, with_replacement=False,
                    generator=torch.Generator().manual_seed(1))
    for i, n in enumerate(lengths):
        k = max(1, min(19, round(0.15 * n)))
        has_candidates = n > 2
        assert int(m.weights[i].sum()) == (k if has_candidates else 0)
        assert int(m.is_masked[i].sum()) == (k if has_candidates else 0)  # distinct positions
    # with replacement (official): at most k distinct positions, and the slots used are exactly k
    m2 = mask_tokens(ids, attn, SPECIAL, MASK, 1000, generator=torch.Generator().manual_seed(1))
    for i, n in enumerate(lengths):
        k = max(1, min(19, round(0.15 * n)))
        if n > 2:
            assert int(m2.weights[i].sum()) == k
            assert 1 <= int(m2.is_masked[i].sum()) <= k


def test_special_and_padding_never_chosen_and_no_random_tokens():
    ids, attn = batch([128] * 64 + [40] * 64)
    m = mask_tokens(ids, attn, SPECIAL, MASK, 1000, generator=torch.Generator().manual_seed(2))
    chosen = m.is_masked
    assert not (chosen & (attn == 0)).any()
    assert not (chosen & torch.isin(ids, SPECIAL)).any()
    # every position either is [MASK] (and chosen) or keeps its original token: nothing random
    changed = m.input_ids != ids
    assert torch.equal(changed, m.input_ids == MASK)
    assert not (changed & ~chosen).any()
    # targets are the original tokens at the chosen slots
    assert torch.equal(m.targets, ids.gather(1, m.positions))


def test_85_percent_of_masked_positions_become_mask():
    ids, attn = batch([128] * 2000, seed=3)
    m = mask_tokens(ids, attn, SPECIAL, MASK, 1000, with_replacement=False,
                    generator=torch.Generator().manual_seed(3))
    n = int(m.is_masked.sum())
    frac = float((m.input_ids[m.is_masked] == MASK).float().mean())
    sd = (0.85 * 0.15 / n) ** 0.5
    assert n == 2000 * 19
    assert abs(frac - 0.85) < 4 * sd, (frac, sd)


def test_bert_style_random_fraction():
    ids, attn = batch([128] * 2000, seed=4)
    m = mask_tokens(ids, attn, SPECIAL, MASK, 1000, mask_frac=0.8, random_frac=0.1, with_replacement=False,
                    generator=torch.Generator().manual_seed(4))
    sel = m.input_ids[m.is_masked]
    orig = ids[m.is_masked]
    n = sel.numel()
    assert abs(float((sel == MASK).float().mean()) - 0.8) < 4 * (0.16 / n) ** 0.5
    kept = float((sel == orig).float().mean())  # 10% kept + random draws that hit the original (~0.1/995)
    assert abs(kept - 0.1) < 4 * (0.09 / n) ** 0.5


def test_gumbel_sample_matches_softmax_frequencies():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).expand(60000, 3)
    s = gumbel_sample(logits, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(s, minlength=3).float() / s.numel()
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2]), atol=0.01)
    assert not s.requires_grad


def test_own_corpus_and_malformed_corpus_file(tmp_path):
    import pytest

    from discern.core import DataError
    from discern.data.pretraining import corpus_documents

    (tmp_path / "a.txt").write_text("First doc. It has two sentences.\n\nSecond doc here.\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Third doc!\n")
    docs = corpus_documents([str(tmp_path)])
    assert docs == [["First doc.", "It has two sentences."], ["Second doc here."], ["Third doc!"]]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nsecond line\nbroken \xff byte\n")
    with pytest.raises(DataError, match=r"bad.txt:3: not UTF-8 text \(byte 0xff\)"):
        corpus_documents([str(bad)])


def test_sample_respects_temperature_and_never_draws_zero_mass_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]])).expand(60000, 4)
    g = torch.Generator().manual_seed(1)
    s = gumbel_sample(logits, temperature=2.0, generator=g)
    p = torch.tensor([0.5, 0.3, 0.2]) ** 0.5
    freq = torch.bincount(s, minlength=4).float() / s.numel()
    assert freq[3] == 0
    assert torch.allclose(freq[:3], p / p.sum(), atol=0.01)
    again = gumbel_sample(logits, temperature=2.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(s, again)
