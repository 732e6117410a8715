"""Small tensor operations shared by the pre-training objectives."""

from __future__ import annotations

import torch


def top_hit(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1.0 where the target has the largest logit of its row (the accuracy of ``argmax``, ties
    counted as hits), else 0.0.  A row maximum and a gather: on 2 CPU cores ``argmax`` over an
    (608, 8192) tensor takes 6 ms in fp32 and 13 ms in bf16, ``amax`` 0.5 ms."""
    with torch.no_grad():
        hit = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) >= logits.amax(-1)
        return hit.float()
