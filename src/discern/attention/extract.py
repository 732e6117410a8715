"""Attention maps from any Hugging Face encoder, at word-piece and word level, cached on disk.

Paper: Clark, Khandelwal, Levy, Manning, "What Does BERT Look At?", BlackboxNLP 2019.

* Extraction: ``output_attentions=True`` returns one (B, heads, T, T) tensor per layer, but only
  with the eager attention kernel; transformers 5 defaults to SDPA, which returns no maps.
  :func:`ensure_attentions` detects that and switches the model to eager attention, or fails
  with one line saying what to do.
* Word level (section 4.1): attention *to* a split word is the **sum** over its
  pieces; attention *from* it is the **mean** over its pieces (``mode="mean"``, what the paper
  describes) or the first piece's row (``mode="first"``, what the released notebook runs).
  Pieces are grouped by the fast tokenizer's word ids, never by a continuation marker (WordPiece
  ``##``, byte-level ``Ġ``, SentencePiece ``▁``), so any subword scheme works.  Special tokens stay
  as their own units, so rows still sum to 1.
* Special tokens: the tokenizer's own ``cls_token`` / ``sep_token`` names are kept with every
  example (BERT's [CLS] / [SEP], MPNet's and RoBERTa's ``<s>`` / ``</s>``); the model gets only
  ``input_ids`` and ``attention_mask`` (single segments: no token_type_ids).
* Cache: maps are stored as float16 in one compressed ``.npz`` per corpus, keyed by a hash of
  the model folder's config and weights file sizes, the sentences and the settings.

Dimension legend: L layers, H heads, T word pieces, W words (+ special tokens).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from discern.core import DataError, DiscernError


# packaged encoders accepted by name wherever a model folder is
PACKAGED_MODELS = ("minilm", "mpnet-base")


@dataclass
class Example:
    words: list[str]  # the sentence's words (special tokens not included)
    tokens: list[str]  # word pieces with special tokens
    word_ids: list[int | None]  # per piece: index into ``words``, None for special tokens
    maps: np.ndarray  # (L, H, T, T) float16 piece-level attention
    cls_token: str = "[CLS]"  # the tokenizer's start-of-sequence token ("<s>" for MPNet / RoBERTa)
    sep_token: str = "[SEP]"  # its separator / end token ("</s>" for MPNet / RoBERTa)


def resolve_model(name: str | Path) -> Path:
    """A packaged encoder's folder (``minilm``, ``mpnet-base``) or a Hugging Face model folder.

    Errors are one line: an unknown name that is not a folder, or a folder without config.json."""
    s = str(name)
    if s in PACKAGED_MODELS:
        from discern.data.models import model_path

        return Path(model_path(s))
    p = Path(s)
    if not p.is_dir():
        raise DataError(f"unknown model {s!r}: not one of {', '.join(PACKAGED_MODELS)} and no such folder")
    if not (p / "config.json").is_file():
        raise DataError(f"{p}: no config.json (not a Hugging Face model folder)")
    return p


def load_encoder(path: str | Path, device=None, dtype=None):
    """``AutoModel`` with eager attention (so maps are returned) and its tokenizer; the model on ``device``
    in ``dtype`` (None: the CPU, float32)."""
    from transformers import AutoModel, AutoTokenizer

    p = Path(path)
    if not p.is_dir():
        raise DataError(f"{p}: no such model folder")
    if not (p / "config.json").is_file():
        raise DataError(f"{p}: no config.json (not a Hugging Face model folder)")
    try:
        kind = json.loads((p / "config.json").read_text()).get("model_type", "")
    except (ValueError, AttributeError):
        raise DataError(f"{p}/config.json: not a JSON object") from None
    # byte-level BPE tokenizers (RoBERTa-style) take pre-split words only with a prefix space
    extra = {"add_prefix_space": True} if kind in ("roberta", "xlm-roberta", "camembert", "longformer") else {}
    try:
        tok = AutoTokenizer.from_pretrained(str(p), **extra)
        model = AutoModel.from_pretrained(str(p), attn_implementation="eager")
    except (OSError, ValueError) as e:
        raise DiscernError(f"cannot load an encoder from {p}: {str(e).splitlines()[0][:160]}") from None
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)
    return model.eval(), tok


def _model_inputs(enc, device) -> dict:
    """``input_ids`` and ``attention_mask`` only: every encoder takes them, and one segment needs no
    token_type_ids (BERT's default is all zeros; MPNet and RoBERTa-style models have none)."""
    return {k: enc[k].to(device) for k in ("input_ids", "attention_mask") if k in enc}


def _attentions(model, batch: dict):
    out = model(**batch, output_attentions=True)
    att = getattr(out, "attentions", None)
    if att is None or len(att) == 0 or any(a is None for a in att):
        return None
    return att


def ensure_attentions(model, tokenizer) -> None:
    """Make sure ``model`` returns attention maps: switch it to eager attention if needed."""
    probe = _model_inputs(tokenizer([["a", "test"]], is_split_into_words=True, return_tensors="pt"),
                          next(model.parameters()).device)
    with torch.no_grad():
        if _attentions(model, probe) is not None:
            return
        if hasattr(model, "set_attn_implementation"):
            try:
                model.set_attn_implementation("eager")
            except (ValueError, NotImplementedError):
                pass
            if _attentions(model, probe) is not None:
                return
    kind = getattr(model.config, "_attn_implementation", "?")
    raise DiscernError(f"{type(model).__name__} returns no attention maps with attn_implementation={kind!r}; "
                       "load it with AutoModel.from_pretrained(path, attn_implementation='eager')")


@torch.no_grad()
def extract(model, tokenizer, sentences: Sequence[Sequence[str]], batch_size: int = 16,
            max_length: int = 128) -> list[Example]:
    """Piece-level maps of every layer and head for pre-split ``sentences`` (lists of words)."""
    if not getattr(tokenizer, "is_fast", False):
        raise DiscernError(f"{type(tokenizer).__name__} is a slow tokenizer; word-level maps need a fast one "
                           "(a folder with tokenizer.json)")
    ensure_attentions(model, tokenizer)
    dev = next(model.parameters()).device
    cls = tokenizer.cls_token or tokenizer.bos_token or "[CLS]"
    sep = tokenizer.sep_token or tokenizer.eos_token or "[SEP]"
    out: list[Example | None] = [None] * len(sentences)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        words = [list(sentences[i]) for i in idx]
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt")
        att = torch.stack([a.float() for a in _attentions(model, _model_inputs(enc, dev))], 1)  # (B, L, H, T, T)
        for r, i in enumerate(idx):
            keep = enc["attention_mask"][r].bool()  # padding may sit on either side
            pos = keep.nonzero().squeeze(1)
            ids = enc["input_ids"][r][keep].tolist()
            wid = enc.word_ids(r)
            out[i] = Example(words[r], tokenizer.convert_ids_to_tokens(ids), [wid[int(t)] for t in pos],
                             att[r][:, :, pos][..., pos].cpu().numpy().astype(np.float16), cls, sep)
    return out  # type: ignore[return-value]


def complete(ex: Example, n_words: int) -> bool:
    """Whether ``ex`` kept all ``n_words`` words (not truncated) between exactly one special token
    before them and one after: the layout of the word maps every analysis indexes (start token
    at 0, word i at i + 1, end token last)."""
    ids = ex.word_ids
    return (len(ids) >= 2 and ids[0] is None and ids[-1] is None and sum(w is None for w in ids) == 2
            and len({w for w in ids if w is not None}) == n_words)


def word_units(word_ids: Sequence[int | None]) -> list[list[int]]:
    """Groups of piece positions: each special token alone, each word's pieces together, in order."""
    units: list[list[int]] = []
    last = object()
    for t, w in enumerate(word_ids):
        if w is None or w != last:
            units.append([t])
        else:
            units[-1].append(t)
        last = w if w is not None else object()
    return units


def word_level(maps: np.ndarray, word_ids: Sequence[int | None], mode: str = "mean") -> np.ndarray:
    """(..., T, T) piece maps -> (..., W, W) word maps: columns summed over a word's pieces,
    rows averaged over them (``mode="mean"``) or taken from its first piece (``"first"``)."""
    if mode not in ("mean", "first"):
        raise DiscernError(f"word_level: mode must be 'mean' or 'first', got {mode!r}")
    units = word_units(word_ids)
    a = maps.astype(np.float32)
    to = np.stack([a[..., u].sum(-1) for u in units], -1)  # (..., T, W): attention to each unit
    if mode == "mean":
        rows = [to[..., u, :].mean(-2) for u in units]
    else:
        rows = [to[..., u[0], :] for u in units]
    return np.stack(rows, -2)  # (..., W, W)


def cache_key(model_dir: str | Path, sentences: Sequence[Sequence[str]], max_length: int,
              dtype: str = "float32") -> str:
    p = Path(model_dir)
    ident = {"config": (p / "config.json").read_text() if (p / "config.json").is_file() else str(p),
             "weights": sorted((f.name, f.stat().st_size) for f in p.glob("*.safetensors")) if p.is_dir() else [],
             "sentences": [list(s) for s in sentences], "max_length": max_length,
             "format": 2}  # 2: examples carry the tokenizer's special-token names
    if dtype != "float32":  # maps of a model run in another precision are cached apart (float32 keeps its key)
        ident["dtype"] = dtype
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def save_examples(path: str | Path, examples: Sequence[Example]) -> None:
    """One compressed ``.npz``: maps per example plus a JSON index of tokens and words."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = [{"words": e.words, "tokens": e.tokens, "word_ids": e.word_ids, "cls_token": e.cls_token,
             "sep_token": e.sep_token} for e in examples]
    arrays = {f"m{i}": e.maps for i, e in enumerate(examples)}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(path)


def load_examples(path: str | Path) -> list[Example]:
    with np.load(Path(path)) as z:
        meta = json.loads(str(z["meta"]))
        return [Example(m["words"], m["tokens"], m["word_ids"], z[f"m{i}"], m.get("cls_token", "[CLS]"),
                        m.get("sep_token", "[SEP]")) for i, m in enumerate(meta)]


def extract_cached(model_dir: str | Path, sentences: Sequence[Sequence[str]], cache_dir: str | Path,
                   batch_size: int = 16, max_length: int = 128, model=None, tokenizer=None) -> list[Example]:
    """:func:`extract`, stored under ``cache_dir``; a second call with the same model and sentences
    reads the file instead of running the model."""
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.") if model is not None else "float32"
    f = Path(cache_dir) / f"attn-{cache_key(model_dir, sentences, max_length, dtype)}.npz"
    if f.is_file():
        return load_examples(f)
    if model is None:
        model, tokenizer = load_encoder(model_dir)
    ex = extract(model, tokenizer, sentences, batch_size, max_length)
    save_examples(f, ex)
    return ex
