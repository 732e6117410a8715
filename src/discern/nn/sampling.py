"""Sampling from logits."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_BELOW_ONE = 1.0 - 2.0**-20  # keeps a rounded target strictly inside the mass it points into


def default_block(V: int) -> int:
    """The block size of the two-level sampler for a vocabulary of ``V``: the divisor of ``V``
    nearest sqrt(V) if one lies in [sqrt(V)/2, 2 sqrt(V)] (no padding), else round(sqrt(V))."""
    root = math.sqrt(V)
    near = [d for d in range(max(1, math.ceil(root / 2)), int(2 * root) + 1) if V % d == 0]
    return min(near, key=lambda d: (abs(d - root), d)) if near else max(1, int(round(root)))


def gumbel_sample(logits: torch.Tensor, temperature: float = 1.0,
                  generator: torch.Generator | None = None, block: int | None = None) -> torch.Tensor:
    """A sample of ``softmax(logits / T)`` per row, in fp32, under no-grad.

    ELECTRA draws its replacements by Gumbel-max (``argmax(logits/T + G)``, ``G`` standard
    Gumbel), which is an exact sample of the softmax.  Drawing one Gumbel per vocabulary
    entry costs ``V`` logarithms per row (117 ms of a 370 ms ELECTRA step on 2 cores at
    V = 8,192).  Here the *same distribution* is drawn with one uniform ``u`` per row by
    inverse-CDF sampling, ``min{w : cumsum(p)_w > u * sum(p)}``, in two levels so that no
    scan runs over the whole vocabulary: the vocabulary is cut into blocks of ``block``
    entries (default about sqrt(V)); a block is chosen by the cumulative block masses, then
    an entry inside it by the block's own cumulative masses.  Equal in law to Gumbel-max,
    not draw for draw; an entry of zero probability is never drawn.

    The default block is the divisor of ``V`` nearest sqrt(V) when one lies within a factor 2
    of it (32 for V = 2,048), so the probabilities need no zero padding; the choice of blocks
    does not change the law, and for one ``u`` it picks the same entry up to float rounding of
    the cumulative sums.  At ``T = 1`` the logits go to the softmax as they are (no division),
    which reads bf16 logits and writes fp32 probabilities in one pass."""
    with torch.no_grad():
        x = logits.detach()
        V = x.size(-1)
        if V == 0:
            raise ValueError("gumbel_sample: empty vocabulary axis")
        shape = x.shape[:-1]
        if temperature != 1.0:
            x = x.float() / temperature
        p = torch.softmax(x, dim=-1, dtype=torch.float32).reshape(-1, V)  # (R, V)
        R = p.size(0)
        k = block or default_block(V)
        nb = -(-V // k)
        if nb * k != V:
            p = F.pad(p, (0, nb * k - V))  # padded entries have zero mass
        pb = p.view(R, nb, k)
        cum_blocks = pb.sum(-1).cumsum(-1)  # (R, nb)
        where = generator.device if generator is not None else x.device  # a CPU generator draws on the CPU
        u = torch.rand(R, 1, device=where, generator=generator, dtype=torch.float64).to(x.device)
        total = cum_blocks[:, -1:]
        target = torch.minimum((u * total.double()).to(p.dtype), total * _BELOW_ONE)  # (R, 1)
        # right=True: the first block whose cumulative mass exceeds the target (it has mass > 0)
        b = torch.searchsorted(cum_blocks, target, right=True).clamp_max_(nb - 1)  # (R, 1)
        before = cum_blocks.gather(1, (b - 1).clamp_min(0)).masked_fill(b == 0, 0.0)
        inside = pb.gather(1, b.unsqueeze(-1).expand(R, 1, k)).squeeze(1).cumsum(-1)  # (R, k)
        rest = torch.minimum((target - before).clamp_min(0.0), inside[:, -1:] * _BELOW_ONE)
        j = torch.searchsorted(inside, rest.contiguous(), right=True).clamp_max_(k - 1)
        return (b * k + j).view(shape)
