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

from discern.core import ConfigError, DataError, derive_seed


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


def held_out_batches(data, batch_size: int, accumulation: int, seed: int, device: torch.device,
                     held_out: int = 0):
    """Training and evaluation batches of a pre-training set (anything with ``len`` and
    ``batch(idx) -> dict of tensors``): its first ``n_eval`` examples are held out, ``held_out``
    when it is given, else ``min(256, max(8, N // 50))``; the rest are served by
    :func:`epoch_batch`.

    Returns ``(batch_fn, eval_batches, n_eval)``: ``batch_fn(step, micro, rank, world)`` for
    :func:`discern.train.fit`, and ``eval_batches(size)`` yielding ``(count, batch)``."""
    n = len(data)
    if held_out < 0 or held_out > n // 2:
        raise ConfigError(f"data.eval_examples={held_out}: this corpus has {n} examples; hold out at most "
                          f"half of them ({n // 2}), or 0 for the default")
    n_eval = held_out or min(256, max(8, n // 50))
    if n_eval > n // 2:
        raise DataError(f"this corpus makes {n} pre-training examples; it needs at least {2 * n_eval} ({n_eval} held "
                        "out for evaluation and as many to train on): give it more text")
    train_n = n - n_eval

    def to_device(batch: dict) -> dict:
        return {k: v.to(device) for k, v in batch.items()}

    def batch_fn(step: int, micro: int, rank: int, world: int) -> dict:
        idx = epoch_batch(train_n, batch_size, step, micro, accumulation, rank, world, (seed, "epoch"))
        return to_device(data.batch(idx + n_eval))

    def eval_batches(size: int = 32):
        for start in range(0, n_eval, size):
            idx = torch.arange(start, min(start + size, n_eval))
            yield len(idx), to_device(data.batch(idx))

    return batch_fn, eval_batches, n_eval


def token_counts(data, vocab_size: int, chunk: int = 4096) -> tuple["np.ndarray", int]:
    """Counts (V,) of every token at real positions of a pre-training set (anything with
    ``len`` and ``batch(idx)``; read in chunks, so a memory-mapped corpus stays on disk), and the
    number of real positions."""
    import numpy as np

    counts = torch.zeros(vocab_size, dtype=torch.long)
    for start in range(0, len(data), chunk):
        b = data.batch(torch.arange(start, min(start + chunk, len(data))))
        ids = b["input_ids"][b["attention_mask"].bool()]
        if ids.numel() and int(ids.max()) >= vocab_size:
            raise ValueError(f"token id {int(ids.max())} outside the vocabulary of {vocab_size}")
        counts += torch.bincount(ids, minlength=vocab_size)
    c = counts.numpy().astype(np.int64)
    return c, int(c.sum())


def held_out_token_counts(eval_batches, vocab_size: int) -> "np.ndarray":
    """Counts (V,) of every token at real positions of the held-out batches of
    :func:`held_out_batches`."""
    import numpy as np

    total = np.zeros(vocab_size, dtype=np.int64)
    for _, b in eval_batches(64):
        total += torch.bincount(b["input_ids"][b["attention_mask"].bool()].cpu(), minlength=vocab_size).numpy()
    return total
