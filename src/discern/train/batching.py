"""Deterministic epoch batching: which examples a rank's micro-batch holds at a given step.

A fresh permutation per epoch, seeded from ``(*seed_parts, epoch)``; the short last batch of
an epoch is filled from the epoch's start; the global batch is split into ``world x
accumulation`` equal parts.  Being a pure function of its arguments, it makes resumed and
distributed runs see exactly the data an uninterrupted single-process run would.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from discern.core import derive_seed


@lru_cache(maxsize=4)
def _permutation(n: int, seed_parts: tuple, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(derive_seed(*seed_parts, epoch))
    return torch.randperm(n, generator=g)


def epoch_batch(n: int, batch_size: int, step: int, micro: int, accumulation: int, rank: int, world: int,
                seed_parts: tuple) -> torch.Tensor:
    """Indices (into ``range(n)``) of micro-batch ``micro`` of ``rank`` at optimiser ``step``."""
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    epoch, j = divmod(step, steps_per_epoch)
    perm = _permutation(n, tuple(seed_parts), epoch)
    idx = perm[j * batch_size:(j + 1) * batch_size]
    if len(idx) < batch_size:
        idx = torch.cat([idx, perm[: batch_size - len(idx)]])
    parts = world * accumulation
    per = batch_size // parts
    k = rank * accumulation + micro
    return idx[k * per:(k + 1) * per]
