"""Any Hugging Face causal LM with a Fast Weight Layer block on top (paper section 3).

The block reads the LM's final hidden states (after its final norm) and replaces the LM's
output head: Dense(4S) -> SquaredReLU -> Dense(S) -> LayerNorm -> unembedding.  With the default
``size = hidden size`` the unembedding is the LM's own (tied) output matrix, so a pretrained
vocabulary projection is reused; it is not fast-weighted.

``residual=True`` (the default, for pretrained LMs) adds the block to the hidden state with the
LayerNorm gain starting at 0, so the wrapped model starts as exactly the base model and the
fine-tuning learns how much fast weights to add; ``residual=False`` is the paper's placement,
for a model trained together with its FWL from scratch.  ``fast_weights=False`` is the control:
the same block with every step size fixed at 0 and not trained, so it adds a trained slow block
and nothing else.  ``seed`` draws the block's initial weights (same seed, same block: the FWL and
its control start identical).  Labels for the fast-weight update are
the next tokens (the input shifted by one), weighted 0 at padding and at the last position.

Saves as ``<dir>/base`` (``save_pretrained`` of the causal LM) plus ``<dir>/fwl.pt`` and
``<dir>/fwl.json`` (the block's shape, placement and whether its fast weights act).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from discern.core import CheckpointError

from .layer import FastWeightBlock


class FWLCausalLM(nn.Module):
    def __init__(self, base, size: int | None = None, attn_chunks: int = 1, residual: bool = True,
                 fast_weights: bool = True, seed: int | None = None):
        super().__init__()
        self.base = base
        d = int(base.config.hidden_size)
        size = size or d
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        head = base.get_output_embeddings()
        if size == d:
            unembed = head
        else:
            unembed = nn.Linear(size, int(base.config.vocab_size), bias=False)
            with torch.no_grad():  # nn.Linear's own default init, drawn from the block's generator
                bound = 1.0 / size ** 0.5
                unembed.weight.uniform_(-bound, bound, generator=gen)
        self.block = FastWeightBlock(d, size, unembed, attn_chunks=attn_chunks, residual=residual, generator=gen)
        if not fast_weights:
            self.block.freeze_steps()
        self.size = size

    @property
    def fast_weights(self) -> bool:
        return self.block.fast

    @staticmethod
    def next_token_targets(input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
        """(mask, labels, weights): labels are the next tokens; weight 0 at padding and at the last position."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        labels = torch.roll(input_ids, -1, dims=1)
        weights = (attention_mask * torch.roll(attention_mask, -1, dims=1)).float()
        weights[:, -1] = 0.0  # no next token after the last position
        return attention_mask, labels, weights

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Fast-weight logits (B, T, V) for predicting token t+1 at position t."""
        attention_mask, labels, weights = self.next_token_targets(input_ids, attention_mask)
        body = self.base.get_decoder() if hasattr(self.base, "get_decoder") else self.base.base_model
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, D)
        return self.block(hidden, labels, weights.to(hidden.dtype))

    def loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy of the fast-weight logits over real next tokens."""
        attention_mask, labels, w = self.next_token_targets(input_ids, attention_mask)
        logits = self(input_ids, attention_mask)
        ce = nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), reduction="none")
        return (ce * w.flatten()).sum() / w.sum().clamp_min(1.0)

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        self.base.save_pretrained(path / "base")
        block = {k: v for k, v in self.block.state_dict().items() if not k.startswith("unembed.")
                 or self.size != int(self.base.config.hidden_size)}
        torch.save(block, path / "fwl.pt")
        (path / "fwl.json").write_text(json.dumps({"size": self.size, "attn_chunks": self.block.attn_chunks,
                                                    "residual": self.block.residual,
                                                    "fast_weights": self.fast_weights}))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "FWLCausalLM":
        from transformers import AutoModelForCausalLM

        path = Path(path)
        if not (path / "fwl.json").is_file():
            raise CheckpointError(f"{path}: not an FWL model folder (no fwl.json)")
        meta = json.loads((path / "fwl.json").read_text())
        model = cls(AutoModelForCausalLM.from_pretrained(str(path / "base")), meta["size"], meta["attn_chunks"],
                    meta["residual"], fast_weights=meta.get("fast_weights", True))
        res = model.block.load_state_dict(torch.load(path / "fwl.pt", weights_only=True), strict=False)
        missing = [k for k in res.missing_keys if not k.startswith("unembed.")]
        if missing or res.unexpected_keys:
            raise CheckpointError(f"{path / 'fwl.pt'}: missing {missing}, unexpected {res.unexpected_keys}")
        return model
