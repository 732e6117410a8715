"""discern.electric.scoring: MLM pseudo-log-likelihood (Salazar et al. 2020) and causal-LM scorers."""

from __future__ import annotations

import pytest
import torch

from discern.core.errors import DiscernError
from discern.data.tokenizer import train_wordpiece
from discern.electric.scoring import CausalLMScorer, MaskedLMScorer, Scorer, sentence_case
from discern.llm import sequence_logprobs

CORPUS = ["he might even have been made amiable himself", "the weather was fine and we walked along the river",
          "she said that it would rain tomorrow", "a small dog ran across the garden to the house",
          "they were not at all happy with the answer", "it was the best of times it was the worst of times"] * 5
SENTENCES = ["he might even have been made amiable himself", "the dog ran", "we walked",
             "she said that the weather would be fine and they were happy with it", "rain",
             "it was the best answer"]


@pytest.fixture(scope="module")
def wordpiece():
    return train_wordpiece(CORPUS, vocab_size=120)


def tiny_mlm(arch: str, vocab_size: int, pad_id: int):
    from transformers import (BertConfig, BertForMaskedLM, ElectraConfig, ElectraForMaskedLM, RobertaConfig,
                              RobertaForMaskedLM)

    torch.manual_seed(0)
    common = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64, pad_token_id=pad_id)
    if arch == "bert":
        model = BertForMaskedLM(BertConfig(**common))
    elif arch == "electra":
        model = ElectraForMaskedLM(ElectraConfig(embedding_size=24, **common))
    else:
        model = RobertaForMaskedLM(RobertaConfig(**{**common, "max_position_embeddings": 80}))
    return model.eval()


def loop_pll(model, tokenizer, sentence: str) -> float:
    """Salazar et al. Eq. 2 written out: one unbatched forward per token, that token masked."""
    ids = tokenizer(sentence)["input_ids"]
    total = 0.0
    for t in range(1, len(ids) - 1):  # skip [CLS] and [SEP]
        x = torch.tensor([ids])
        x[0, t] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=x).logits[0, t]
        total += float(torch.log_softmax(logits, -1)[ids[t]])
    return total


@pytest.fixture(params=["bert", "electra", "roberta"])
def mlm(request, wordpiece):
    return tiny_mlm(request.param, len(wordpiece), wordpiece.pad_token_id), wordpiece


@pytest.mark.parametrize("fast", [True, False])
def test_pll_matches_explicit_loop(mlm, fast):
    model, tok = mlm
    scorer = MaskedLMScorer(model, tok, batch_size=7, fast=fast)
    expected = [loop_pll(model, tok, s) for s in SENTENCES]
    assert scorer.score(SENTENCES) == pytest.approx(expected, abs=1e-5)
    tokens = scorer.token_logprobs(SENTENCES)
    assert [len(t) for t in tokens] == [len(tok.tokenize(s)) for s in SENTENCES]
    assert all(lp < 0 for t in tokens for lp in t)
    model.train()  # dropout off while scoring, mode restored after
    assert scorer.score(SENTENCES) == pytest.approx(expected, abs=1e-5) and model.training


def test_fast_path_is_used_and_exact(mlm):
    model, tok = mlm
    from discern.electric.scoring import _masked_head
    assert _masked_head(model) is not None
    fast = MaskedLMScorer(model, tok, fast=True).score(SENTENCES)
    assert MaskedLMScorer(model, tok, fast=False).score(SENTENCES) == pytest.approx(fast, abs=1e-5)


def test_batch_size_and_neighbours_do_not_matter(mlm):
    model, tok = mlm
    ref = MaskedLMScorer(model, tok, batch_size=1).score(SENTENCES)
    for bs in (2, 5, 64, 1000):
        assert MaskedLMScorer(model, tok, batch_size=bs).score(SENTENCES) == pytest.approx(ref, abs=1e-5)
    scorer = MaskedLMScorer(model, tok, batch_size=16)
    for i, s in enumerate(SENTENCES):
        assert scorer.score([s]) == pytest.approx([ref[i]], abs=1e-5)
        longer = ["she said that the weather would be fine and they were happy with it " * 2, s, "rain"]
        assert scorer.score(longer)[1] == pytest.approx(ref[i], abs=1e-5)


def test_passes_is_token_count(wordpiece):
    model = tiny_mlm("electra", len(wordpiece), wordpiece.pad_token_id)
    scorer = MaskedLMScorer(model, wordpiece)
    for s in SENTENCES:
        assert scorer.passes(s) == len(wordpiece.tokenize(s)) > 0
    assert scorer.passes("") == 0 and scorer.score([""]) == [0.0]
    assert scorer.score([]) == []
    assert isinstance(scorer, Scorer) and scorer.name == "mlm-pll:ElectraForMaskedLM"


def test_bf16_and_errors(wordpiece):
    model = tiny_mlm("bert", len(wordpiece), wordpiece.pad_token_id)
    ref = MaskedLMScorer(model, wordpiece).score(SENTENCES)
    got = MaskedLMScorer(model, wordpiece, bf16=True).score(SENTENCES)
    assert got == pytest.approx(ref, rel=0.05, abs=0.2)
    with pytest.raises(DiscernError, match="more than the model's 64 positions"):
        MaskedLMScorer(model, wordpiece).score(["the dog ran " * 30])
    with pytest.raises(DiscernError, match="not one string"):
        MaskedLMScorer(model, wordpiece).score("the dog ran")
    roberta = MaskedLMScorer(tiny_mlm("roberta", len(wordpiece), wordpiece.pad_token_id), wordpiece)
    assert roberta.max_len == 80 - wordpiece.pad_token_id - 1
    with pytest.raises(DiscernError, match="more than the model's"):
        roberta.score(["the " * 78])  # 80 ids with [CLS] and [SEP]: more than 79 usable positions
    assert len(roberta.score(["the " * 77])) == 1


def test_text_transform_and_from_pretrained(wordpiece, tmp_path):
    assert sentence_case("he might even have been made amiable himself") == \
        "He might even have been made amiable himself."
    assert sentence_case("is it?") == "Is it?" and sentence_case("  ") == ""
    model = tiny_mlm("electra", len(wordpiece), wordpiece.pad_token_id)
    model.save_pretrained(tmp_path)
    wordpiece.save_pretrained(tmp_path)
    scorer = MaskedLMScorer.from_pretrained(tmp_path, batch_size=8, text_transform=sentence_case)
    ref = MaskedLMScorer(model, wordpiece).score([sentence_case(s) for s in SENTENCES])
    assert scorer.score(SENTENCES) == pytest.approx(ref, abs=1e-5)
    assert scorer.passes("the dog ran") == len(wordpiece.tokenize("The dog ran."))
    with pytest.raises(DiscernError, match="cannot load a masked LM"):
        MaskedLMScorer.from_pretrained(tmp_path / "nothing")


def test_causal_scorer(tmp_path):
    from tokenizers import Tokenizer, models as tmodels, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = sorted({w for s in CORPUS + SENTENCES for w in s.split()})
    vocab = {w: i for i, w in enumerate(["<unk>", "<|endoftext|>"] + words)}
    tk = Tokenizer(tmodels.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=4, n_positions=64))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    scorer = CausalLMScorer.from_pretrained(tmp_path, batch_size=4)
    assert isinstance(scorer, Scorer)
    assert scorer.score(SENTENCES) == pytest.approx(sequence_logprobs(model, tok, SENTENCES, batch_size=1), abs=1e-5)
    assert [scorer.passes(s) for s in SENTENCES] == [1] * len(SENTENCES)
    cased = CausalLMScorer(model, tok, text_transform=str.upper)  # every word unknown
    assert cased.score(["the dog ran"]) == pytest.approx(sequence_logprobs(model, tok, ["<unk> <unk> <unk>"]), abs=1e-5)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_every_scorer_refuses_a_batch_size_below_one(wordpiece, batch_size):
    from discern.electric.pll import ElectricScorer, TwoTowerScorer

    model = tiny_mlm("electra", len(wordpiece), wordpiece.pad_token_id)
    for cls in (MaskedLMScorer, ElectricScorer, TwoTowerScorer, CausalLMScorer):
        with pytest.raises(DiscernError) as e:
            cls(model, wordpiece, batch_size=batch_size)
        assert str(e.value) == f"{cls.__name__}: batch_size must be an integer >= 1, got {batch_size!r}"
