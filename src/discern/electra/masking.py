"""Masking for ELECTRA and the BERT-style MLM baseline (official ``pretrain_helpers.mask``).

Rule (reference notes section 1.1):

- candidates: every real token except special tokens ([CLS], [SEP], [MASK], padding);
- per example ``k = max(1, min(N, round(mask_prob * n_real)))`` where ``n_real`` counts all
  real tokens (attention mask, [CLS]/[SEP] included) and ``N = floor((mask_prob + 0.005) * L)``;
- ``k`` positions drawn uniformly among candidates **with replacement** (``tf.random.categorical``),
  so duplicates collapse to fewer distinct positions; ``with_replacement=False`` draws exactly
  ``k`` distinct positions instead;
- each chosen position becomes [MASK] with probability ``mask_frac`` (ELECTRA 0.85), a random
  vocabulary token with probability ``random_frac`` (ELECTRA 0, BERT 0.1), else stays.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Masked:
    input_ids: torch.Tensor  # (B, L) the masked input
    positions: torch.Tensor  # (B, N) chosen positions (0 where unused)
    weights: torch.Tensor  # (B, N) 1.0 for the first k_b slots of row b, else 0.0
    targets: torch.Tensor  # (B, N) original token at each chosen position
    is_masked: torch.Tensor  # (B, L) bool: position chosen at least once


def max_predictions(seq_len: int, mask_prob: float) -> int:
    """``N = floor((mask_prob + 0.005) * L)``: 19 for 128 tokens at 15%."""
    return int((mask_prob + 0.005) * seq_len)


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_ids: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    mask_prob: float = 0.15,
    mask_frac: float = 0.85,
    random_frac: float = 0.0,
    with_replacement: bool = True,
    generator: torch.Generator | None = None,
) -> Masked:
    """Choose positions to predict and corrupt them; see the module docstring for the rule."""
    B, L = input_ids.shape
    N = max_predictions(L, mask_prob)
    real = attention_mask.bool()
    candidates = real & ~torch.isin(input_ids, special_ids)  # (B, L)
    n_real = real.sum(-1).float()  # (B,)
    k = torch.clamp(torch.round(mask_prob * n_real), min=1, max=N).long()  # (B,)
    probs = candidates.float()
    has_cand = probs.sum(-1) > 0
    probs[~has_cand, 0] = 1.0  # rows without candidates: draw a dummy, weight 0 below
    if with_replacement:
        positions = torch.multinomial(probs, N, replacement=True, generator=generator)  # (B, N)
    else:
        # Gumbel top-k over candidates = uniform sampling without replacement
        u = torch.rand(B, L, generator=generator).clamp_min(1e-20)
        keys = torch.where(probs > 0, -torch.log(-torch.log(u)), torch.full_like(u, -float("inf")))
        positions = keys.topk(N, dim=-1).indices  # (B, N)
        positions = positions.masked_fill(probs.gather(1, positions) <= 0, 0)
    slot = torch.arange(N).unsqueeze(0)  # (1, N)
    weights = ((slot < k.unsqueeze(1)) & has_cand.unsqueeze(1)).float()  # (B, N)
    positions = positions * weights.long()
    targets = input_ids.gather(1, positions)  # (B, N)

    is_masked = torch.zeros(B, L, dtype=torch.bool)
    is_masked.scatter_(1, positions, weights.bool())
    is_masked &= candidates

    # per-slot corruption decision (duplicates: the last slot written wins, like a scatter)
    r = torch.rand(B, N, generator=generator)
    use_mask = r < mask_frac
    use_random = (r >= mask_frac) & (r < mask_frac + random_frac)
    random_tokens = torch.randint(0, vocab_size, (B, N), generator=generator)
    replacement = torch.where(use_mask, torch.full_like(targets, mask_id),
                              torch.where(use_random, random_tokens, targets))
    masked_ids = input_ids.clone()
    active = weights.bool()
    rows = torch.arange(B).unsqueeze(1).expand(B, N)
    masked_ids[rows[active], positions[active]] = replacement[active]
    return Masked(masked_ids, positions, weights, targets, is_masked)
