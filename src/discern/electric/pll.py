"""Electric's one-pass pseudo-log-likelihood and the two-tower cloze score (the ``Scorer``
protocol of :mod:`discern.electric.scoring`).

* ``ElectricScorer``: PLL(x) = sum_t log p̂(x_t | x_\\t) = -sum_t E(x)_t over the sentence's tokens
  (paper section 2.1), all positions from **one** transformer pass; NCE makes the model
  approximately self-normalised, so no partition function is needed.
* ``TwoTowerScorer``: sum_t log q(x_t | x_\\t) of the noise model (the paper's "TwoTower" row),
  also one pass of each tower.

Dimension legend: B sentences in a batch, L padded length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from discern.core import CheckpointError

from .scoring import TextTransform, _apply, checked_batch_size


def _batches(tokenizer, sentences: list[str], batch_size: int):
    """Encode ``[CLS] x [SEP]`` and yield (indices, ids (B, L), attention (B, L), content mask (B, L)),
    longest first, so padding stays small."""
    enc = tokenizer(sentences, add_special_tokens=True, return_special_tokens_mask=True)
    ids, special = enc["input_ids"], enc["special_tokens_mask"]
    order = sorted(range(len(sentences)), key=lambda i: -len(ids[i]))
    pad = tokenizer.pad_token_id or 0
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        L = max(len(ids[i]) for i in idx)
        x = torch.full((len(idx), L), pad, dtype=torch.long)
        attn = torch.zeros((len(idx), L), dtype=torch.long)
        content = torch.zeros((len(idx), L), dtype=torch.bool)
        for r, i in enumerate(idx):
            n = len(ids[i])
            x[r, :n] = torch.tensor(ids[i])
            attn[r, :n] = 1
            content[r, :n] = ~torch.tensor(special[i], dtype=torch.bool)
        yield idx, x, attn, content


class ElectricScorer:
    """PLL(x) = -sum_t E(x)_t from one batched pass of Electric's energy model.

    Args:
        energy_model: an ``ElectraForPreTraining`` trained as Electric (its logits are energies).
        tokenizer: its tokenizer.
        batch_size: sentences per forward pass.
        bf16: bf16 autocast for the transformer (energies are summed in fp32).
    """

    def __init__(self, energy_model, tokenizer, batch_size: int = 64, bf16: bool = False,
                 text_transform: TextTransform | None = None, name: str = "electric"):
        self.model = energy_model.eval()
        self.tokenizer = tokenizer
        self.batch_size = checked_batch_size(batch_size, type(self).__name__)
        self.bf16 = bf16
        self.text_transform = text_transform
        self.name = name

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> "ElectricScorer":
        """``path`` is a pre-training run's ``model`` folder (``energy/`` inside) or the energy folder."""
        from transformers import AutoTokenizer, ElectraForPreTraining

        path = Path(path)
        folder = path / "energy" if (path / "energy").is_dir() else path
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"{path}: no Electric energy model (expected energy/config.json)")
        return cls(ElectraForPreTraining.from_pretrained(folder), AutoTokenizer.from_pretrained(str(folder)), **kwargs)

    def passes(self, sentence: str) -> int:
        return 1

    def token_energies(self, sentences: Sequence[str]) -> list[list[float]]:
        """E(x)_t for each sentence's tokens ([CLS]/[SEP] excluded)."""
        sentences = _apply(self.text_transform, sentences)
        out: list[list[float]] = [[] for _ in sentences]
        if not sentences:
            return out
        dev = next(self.model.parameters()).device
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16):
            for idx, x, attn, content in _batches(self.tokenizer, sentences, self.batch_size):
                e = self.model(x.to(dev), attention_mask=attn.to(dev)).logits.float().cpu()  # (B, L)
                for r, i in enumerate(idx):
                    out[i] = e[r][content[r]].tolist()
        return out

    def score(self, sentences: list[str]) -> list[float]:
        return [-sum(e) for e in self.token_energies(sentences)]


class TwoTowerScorer:
    """sum_t log q(x_t | x_\\t) of Electric's two-tower noise model, one pass of each tower."""

    def __init__(self, noise_model, tokenizer, batch_size: int = 64, bf16: bool = False,
                 text_transform: TextTransform | None = None, name: str = "two-tower"):
        self.model = noise_model.eval()
        self.tokenizer = tokenizer
        self.batch_size = checked_batch_size(batch_size, type(self).__name__)
        self.bf16 = bf16
        self.text_transform = text_transform
        self.name = name

    def passes(self, sentence: str) -> int:
        return 1

    def score(self, sentences: list[str]) -> list[float]:
        sentences = _apply(self.text_transform, sentences)
        out = [0.0] * len(sentences)
        if not sentences:
            return out
        dev = next(self.model.parameters()).device
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16):
            for idx, x, attn, content in _batches(self.tokenizer, sentences, self.batch_size):
                x, attn, content = x.to(dev), attn.to(dev), content.to(dev)
                ctx = self.model.context(x, attn)  # (B, L, 2H)
                logq = self.model.logits(ctx[content]).float().log_softmax(-1)  # (C, V)
                lp = logq.gather(-1, x[content].unsqueeze(-1)).squeeze(-1)  # (C,)
                per = torch.zeros(len(idx), device=dev).index_add_(0, content.nonzero()[:, 0], lp).cpu()
                for r, i in enumerate(idx):
                    out[i] = float(per[r])
        return out
