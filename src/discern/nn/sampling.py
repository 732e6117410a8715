"""Sampling from logits."""

from __future__ import annotations

import torch


def gumbel_sample(logits: torch.Tensor, temperature: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel-max sample of ``softmax(logits / T)`` in fp32, under no-grad (ELECTRA reference 1.3; Electric's noise samples too).

    ``-log(E)`` with ``E ~ Exponential(1)`` is a standard Gumbel draw: one logarithm per
    vocabulary entry instead of the two of ``-log(-log(U))``."""
    with torch.no_grad():
        x = logits.detach().float() / temperature
        where = generator.device if generator is not None else x.device  # a CPU generator draws on the CPU
        e = torch.empty(x.shape, device=where).exponential_(generator=generator).clamp_min_(1e-20).to(x.device)
        return (x - e.log_()).argmax(-1)
