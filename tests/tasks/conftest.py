"""Tiny models, a tokenizer trained in the test, and toy tasks (no downloads, no corpora)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DISCERN_QUIET", "1")

WORDS = ("good great fine nice happy bad awful poor sad ugly the a movie film plot acting was is "
         "very quite rather and but day night red blue cat dog").split()
POS = ("good", "great", "fine", "nice", "happy")
NEG = ("bad", "awful", "poor", "sad", "ugly")
FILLER = ("the", "movie", "film", "plot", "acting", "was", "is", "very", "quite", "rather", "day",
          "night", "red", "blue", "cat", "dog")


@pytest.fixture(scope="session")
def tokenizer():
    """A WordLevel tokenizer built here, wrapped as a BERT-style fast tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"])


def _small(cls_name: str, vocab_size: int, layers: int = 2):
    import torch
    import transformers

    torch.manual_seed(0)
    if cls_name == "electra":
        cfg = transformers.ElectraConfig(vocab_size=vocab_size, embedding_size=16, hidden_size=32,
                                         num_hidden_layers=layers, num_attention_heads=2,
                                         intermediate_size=64, max_position_embeddings=64)
        return transformers.ElectraModel(cfg)
    cfg = transformers.BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=layers,
                                  num_attention_heads=2, intermediate_size=64,
                                  max_position_embeddings=64)
    return transformers.BertModel(cfg)


@pytest.fixture
def make_encoder(tokenizer):
    def make(kind: str = "electra", layers: int = 2):
        return _small(kind, len(tokenizer), layers)
    return make


def toy_examples(n: int, prefix: str, seed: int):
    """Sentences with one sentiment word among fillers; label 1 = positive word."""
    import random

    from discern.tasks import Example

    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = i % 2
        word = rng.choice(POS if label else NEG)
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 6))]
        words.insert(rng.randint(0, len(words)), word)
        out.append(Example(f"{prefix}/{i:03d}", " ".join(words), None, label))
    return out


@pytest.fixture
def toy_task():
    from discern.tasks import Task

    t = Task("toy", "classification", ("neg", "pos"), ("accuracy", "f1"), "accuracy", "toy")
    t.splits = {"train": toy_examples(96, "train", 1), "dev": toy_examples(40, "dev", 2),
                "test": toy_examples(40, "test", 3)}
    return t


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread (and do not stall when the other core is busy)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
