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


_CHUNK_FLOATS = 1 << 19  # on the CPU rows are processed in blocks of about 2 MB of fp32, which stay in cache
# on a GPU blocks of up to 256 MB of fp32: there a block costs a few kernel launches, and cache-sized
# blocks would mean hundreds per step (Electric's gpu preset: 16,000 x 8,192 logits)
_CHUNK_FLOATS_CUDA = 1 << 26


def _row_blocks(rows: int, width: int, cuda: bool = False):
    step = max(1, (_CHUNK_FLOATS_CUDA if cuda else _CHUNK_FLOATS) // max(1, width))
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


class _RowCrossEntropy(torch.autograd.Function):
    """Per-row ``logsumexp(z) - z[target]`` with a one-pass backward ``(softmax(z) - onehot) * g``;
    also returns each row's logsumexp and whether its target has the row's largest logit (no
    gradient through either)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor):
        R, V = logits.shape
        lse = torch.empty(R, dtype=torch.float32, device=logits.device)
        top = torch.empty(R, dtype=torch.float32, device=logits.device)
        for a, b in _row_blocks(R, V, logits.is_cuda):
            z = logits[a:b].to(torch.float32, copy=True)  # a block of our own: the passes below work in place
            m = z.amax(-1, keepdim=True)  # the row maximum, kept for the accuracy
            top[a:b] = m.squeeze(-1)
            m = m.masked_fill(m.isinf(), 0.0)  # as torch.logsumexp: a row of -inf gives -inf, not nan
            lse[a:b] = z.sub_(m).exp_().sum(-1).log_().add_(m.squeeze(-1))
        picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1).float()
        ctx.save_for_backward(logits, targets, lse)
        hit = picked >= top  # the row's maximum is exact: the fp32 copy holds the bf16 values
        ctx.mark_non_differentiable(lse, hit)
        return lse - picked, lse, hit

    @staticmethod
    def backward(ctx, grad: torch.Tensor, _lse_grad=None, _hit_grad=None):
        logits, targets, lse = ctx.saved_tensors
        out = torch.empty_like(logits)
        g = grad.float().unsqueeze(-1)  # (R, 1)
        # softmax(z) * g = exp(z - (lse - log g)) where no g is negative (a mean or a weighted sum
        # of the losses): one shift per row instead of a multiply over the block (g = 0 gives
        # exp(-inf) = 0); a negative g takes the multiply, and so does a GPU, where asking
        # whether any g is negative would wait for the device
        folded = not logits.is_cuda and bool((g >= 0).all())
        shift = (lse.unsqueeze(-1) - g.log()) if folded else lse.unsqueeze(-1)
        for a, b in _row_blocks(*logits.shape, logits.is_cuda):
            p = logits[a:b].to(torch.float32, copy=True).sub_(shift[a:b]).exp_()  # softmax(z) (* g)
            if not folded:
                p.mul_(g[a:b])
            p.scatter_add_(-1, targets[a:b].unsqueeze(-1), -g[a:b])
            out[a:b] = p
        return out, None


def row_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, stats: bool = False):
    """Cross-entropy of each row of ``logits`` (R, V) against ``targets`` (R,), in fp32: the same
    values and gradients as ``F.cross_entropy(logits.float(), targets, reduction="none")``.

    For the vocabulary-sized heads of pre-training (Electric's cloze loss over every candidate
    position: 4,000 x 8,192 logits per step), the library path materialises the fp32 copy, the
    log-softmax, a zero-filled gradient and the log-softmax backward, each a pass over R x V
    floats through memory; this keeps the logits in their own dtype (bf16 under autocast), saves
    one logsumexp per row, and works through the rows in cache-sized blocks, forming the gradient
    in one pass per block, in the logits' dtype.

    ``stats=True`` returns ``(cross_entropy, logsumexp, hit)``: each row's fp32 logsumexp (the
    log-normaliser of ``softmax(z)``, so ``z[w] - logsumexp`` is ``log p(w)``) and ``hit``, True
    where the target has the row's largest logit (:func:`top_hit`, ties counted as hits), both
    read off the pass the loss makes anyway instead of two more passes over the logits."""
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"row_cross_entropy: logits (R, V) and targets (R,), got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    ce, lse, hit = _RowCrossEntropy.apply(logits, targets)
    return (ce, lse, hit) if stats else ce
