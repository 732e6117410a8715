"""The real CLIP BPE tokenizer (49,408 tokens), built from the vocabulary file that PyPI
``open-clip-torch`` ships, as a Hugging Face ``CLIPTokenizer``.

The vocabulary is assembled the way CLIP defines it: the 256 byte symbols, the same with the
end-of-word mark ``</w>``, one token per BPE merge (the first 49,152 - 256 - 2 merge lines of the
file), then ``<|startoftext|>`` and ``<|endoftext|>``.  ``open_clip`` itself is never imported
(it needs torchvision); only its data file is read.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

from discern.core import DiscernError

N_MERGES = 49152 - 256 - 2


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars)))


def clip_bpe_path() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise DiscernError("the CLIP BPE vocabulary comes from PyPI open-clip-torch: "
                           "pip install --no-deps open-clip-torch==3.3.0")
    path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise DiscernError(f"{path} is missing; reinstall open-clip-torch")
    return path


@lru_cache(maxsize=1)
def clip_vocab() -> tuple[dict[str, int], list[str]]:
    """(token -> id, merges as 'a b' strings)."""
    lines = gzip.open(clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = lines[1:N_MERGES + 1]
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def clip_tokenizer(max_length: int = 77):
    """A ``CLIPTokenizer`` with the real CLIP vocabulary; ``max_length`` is its ``model_max_length``
    (77 for Stable Diffusion; the small models here use fewer positions)."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab()
    return CLIPTokenizer(vocab=dict(vocab), merges=[tuple(m.split()) for m in merges], model_max_length=max_length)
