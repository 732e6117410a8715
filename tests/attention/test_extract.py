import math

import numpy as np
import pytest
import torch

from discern.attention.extract import (Example, ensure_attentions, extract, extract_cached, load_encoder,
                                       word_level, word_units)
from discern.attention.surface import entropies, token_type_attention
from discern.core import DiscernError


def test_word_units_group_pieces_and_keep_specials_alone():
    assert word_units([None, 0, 1, 1, 1, 2, None, None]) == [[0], [1], [2, 3, 4], [5], [6], [7]]


def test_word_level_sums_to_and_averages_from_pieces():
    # 4 pieces: [CLS] w0 w1a w1b ; rows are distributions
    a = np.array([[0.1, 0.2, 0.3, 0.4],
                  [0.5, 0.1, 0.2, 0.2],
                  [0.0, 0.6, 0.2, 0.2],
                  [0.2, 0.2, 0.2, 0.4]], dtype=np.float32)
    ids = [None, 0, 1, 1]
    w = word_level(a, ids, "mean")
    expected = np.array([[0.1, 0.2, 0.7],
                         [0.5, 0.1, 0.4],
                         [(0.0 + 0.2) / 2, (0.6 + 0.2) / 2, (0.4 + 0.6) / 2]])
    assert np.allclose(w, expected)
    assert np.allclose(w.sum(-1), 1.0)
    first = word_level(a, ids, "first")
    assert np.allclose(first[2], [0.0, 0.6, 0.4])
    batched = word_level(np.stack([a, a])[None], ids)  # leading (L, H) axes pass through
    assert batched.shape == (1, 2, 3, 3) and np.allclose(batched[0, 1], expected)
    with pytest.raises(DiscernError, match="mode must be"):
        word_level(a, ids, "last")


def _example(maps, tokens, word_ids):
    return Example([t for t, w in zip(tokens, word_ids) if w is not None], tokens, word_ids,
                   np.asarray(maps, dtype=np.float16))


def test_token_type_selectors_and_denominators():
    T = 5  # [CLS] a , b [SEP]
    tokens, ids = ["[CLS]", "a", ",", "b", "[SEP]"], [None, 0, 1, 2, None]
    eye = np.eye(T)
    maps = np.stack([eye, np.roll(eye, 1, axis=1), np.zeros((T, T))])[None]  # (1, 3, T, T)
    maps[0, 2, :, 4] = 1.0  # head 2: everyone attends to [SEP]
    r = token_type_attention([_example(maps, tokens, ids)])
    assert r["self"][0].tolist() == pytest.approx([1.0, 0.0, 0.2])  # head 2: [SEP] attends to itself
    assert r["next"][0, 1] == pytest.approx(4 / 5)  # rolled identity: t -> t+1 for 4 of 5 rows
    assert r["cls"][0, 1] == pytest.approx(1 / 5)  # the last row wraps to [CLS]
    assert r["sep"][0, 2] == 1.0 and r["sep_sep"][0, 2] == 1.0 and r["rest_sep"][0, 2] == 1.0
    assert r["punct"][0, 0] == pytest.approx(1 / 5) and r["punct"][0, 2] == 0.0


def test_entropy_of_uniform_attention_is_log_t():
    T = 7
    maps = np.full((2, 3, T, T), 1.0 / T)
    mean, cls = entropies([_example(maps, ["[CLS]"] + ["x"] * (T - 2) + ["[SEP]"], [None] + list(range(T - 2)) + [None])])
    # maps are stored as float16 (1/7 -> 0.14282), hence the tolerance
    assert np.allclose(mean, math.log(T), atol=1e-3) and np.allclose(cls, math.log(T), atol=1e-3)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel

    from discern.data.tokenizer import train_wordpiece

    tok = train_wordpiece(["the cat sat on the mat", "an unbelievably long word appears here"], 60)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                 intermediate_size=32))
    folder = tmp_path_factory.mktemp("bert")
    model.save_pretrained(folder)
    tok.save_pretrained(str(folder))
    return folder


def test_sdpa_model_is_switched_to_eager_and_maps_are_distributions(tiny_bert):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(tiny_bert), attn_implementation="sdpa")
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    ensure_attentions(model, tok)
    assert model.config._attn_implementation == "eager"
    ex = extract(model, tok, [["the", "cat", "sat"], ["an", "unbelievably", "long", "word"]])
    assert ex[0].maps.shape[:2] == (3, 2)  # any depth and width: 3 layers x 2 heads
    assert np.allclose(ex[1].maps.astype(np.float32).sum(-1), 1.0, atol=2e-3)
    assert ex[1].tokens[0] == "[CLS]" and ex[1].tokens[-1] == "[SEP]"
    w = word_level(ex[1].maps, ex[1].word_ids)
    assert w.shape[-1] == len(ex[1].words) + 2


def test_model_without_maps_fails_clearly():
    class NoMaps(torch.nn.Module):
        config = type("C", (), {"_attn_implementation": "flash"})()

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, **kw):
            return type("O", (), {"attentions": None})()

    from transformers import BertTokenizerFast

    from discern.data.tokenizer import train_wordpiece

    tok = train_wordpiece(["a test"], 20)
    fast = BertTokenizerFast(vocab=tok.get_vocab())
    with pytest.raises(DiscernError, match="returns no attention maps with attn_implementation='flash'"):
        ensure_attentions(NoMaps(), fast)


def test_second_extraction_reads_the_cache(tiny_bert, tmp_path, monkeypatch):
    import discern.attention.extract as ext

    sents = [["the", "cat", "sat"], ["on", "the", "mat"]]
    first = extract_cached(tiny_bert, sents, tmp_path)
    monkeypatch.setattr(ext, "extract", lambda *a, **k: (_ for _ in ()).throw(AssertionError("model ran again")))
    second = extract_cached(tiny_bert, sents, tmp_path)
    assert [e.tokens for e in first] == [e.tokens for e in second]
    assert all(np.array_equal(a.maps, b.maps) for a, b in zip(first, second))
    assert len(list(tmp_path.glob("attn-*.npz"))) == 1


@pytest.mark.parametrize("kind", ["electra", "roberta"])
def test_other_encoder_families_give_word_level_maps(kind, tmp_path):
    """ELECTRA (WordPiece) and RoBERTa-style (byte-level BPE: <s> ... </s>, prefix spaces) encoders."""
    from discern.data import registry

    torch.manual_seed(0)
    if kind == "electra":
        from transformers import ElectraConfig, ElectraModel

        from discern.data.tokenizer import train_wordpiece

        tok = train_wordpiece(["the cat sat on the mat", "an unbelievably long word"], 60)
        model = ElectraModel(ElectraConfig(vocab_size=len(tok), embedding_size=8, hidden_size=16, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=32))
    else:
        from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

        import json

        bpe = registry.path("gpt2-bpe")  # the real GPT-2 byte-level BPE, with RoBERTa's special tokens added
        vocab = json.loads((bpe / "encoder.json").read_text())
        for special in ("<s>", "<pad>", "</s>", "<unk>", "<mask>"):
            vocab.setdefault(special, len(vocab))
        merges = [tuple(x.split()) for x in (bpe / "vocab.bpe").read_text().splitlines()[1:] if x.strip()]
        tok = RobertaTokenizerFast(vocab=vocab, merges=merges)
        model = RobertaModel(RobertaConfig(vocab_size=len(tok) + 8, hidden_size=16, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=32,
                                           max_position_embeddings=len(tok) + 8,  # RoBERTa pads positions at pad_id
                                           pad_token_id=tok.pad_token_id or 1))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(str(tmp_path))
    m, t = load_encoder(tmp_path)
    (ex,) = extract(m, t, [["the", "unbelievably", "long", "word"]])
    assert ex.word_ids[0] is None and ex.word_ids[-1] is None
    assert sorted({w for w in ex.word_ids if w is not None}) == [0, 1, 2, 3]
    w = word_level(ex.maps, ex.word_ids)
    assert w.shape == (2, 2, 6, 6) and np.allclose(w.sum(-1), 1.0, atol=3e-3)
