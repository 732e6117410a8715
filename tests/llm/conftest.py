"""Shared fixtures of the LLM tests: a tiny GPT-2 over a character vocabulary (random weights, seed 0)."""

import pytest
import torch


def make_tiny_lm(fuse: bool = False):
    """(model, tokenizer): 2 layers, 16 wide, characters a-j and space, <eos> = 0.  ``fuse``: decoding
    joins the characters as they are (else with a space between tokens, WordLevel's default)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    vocab = {c: i for i, c in enumerate(["<eos>"] + list("abcdefghij "))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    if fuse:
        tok.decoder = decoders.Fuse()
    hf_tok = GPT2TokenizerFast(tokenizer_object=tok, eos_token="<eos>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=16, n_layer=2, n_head=2,
                                       eos_token_id=0, bos_token_id=0))
    return model, hf_tok


@pytest.fixture
def tiny_lm():
    """A builder of the tiny model: each call gives a fresh (model, tokenizer)."""
    return make_tiny_lm


@pytest.fixture(scope="module")
def tiny_lm_fused():
    """One (model, tokenizer) per module whose decoding joins characters as they are."""
    return make_tiny_lm(fuse=True)
