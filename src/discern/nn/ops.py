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


def _exp_block_(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One fp32 block of logits (rows, V), in place: ``z <- exp(z - m)`` with ``m`` each row's
    maximum (0 for a row of -inf, as ``torch.logsumexp``).  Returns ``(top, m, s)``, each (rows, 1):
    the row maximum, the shift and the sum of the exponentials, so the row's logsumexp is
    ``log s + m`` and its softmax ``z / s``."""
    top = z.amax(-1, keepdim=True)
    m = top.masked_fill(top.isinf(), 0.0)
    s = z.sub_(m).exp_().sum(-1, keepdim=True)
    return top, m, s


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
            t, m, total = _exp_block_(z)  # the row maximum t is kept for the accuracy
            top[a:b] = t.squeeze(-1)
            lse[a:b] = total.log_().add_(m).squeeze(-1)
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


#: :func:`vocab_linear` pads the product's inner dimension to a multiple of this (AMX multiplies
#: bf16 tiles 32 deep)
_INNER_MULTIPLE = 32


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    dev = x.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype


def _augmented(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[x, 1, 0...]`` (N, K + 1 + pad) and ``[W, b, 0...]`` (V, K + 1 + pad), the inner size padded
    to a multiple of :data:`_INNER_MULTIPLE`: their product is ``x W^T + b``."""
    (N, K), V = x.shape, weight.size(0)
    pad = (-(K + 1)) % _INNER_MULTIPLE
    x_aug = torch.cat([x, x.new_ones(N, 1), x.new_zeros(N, pad)], 1)
    w_aug = torch.cat([weight, bias.unsqueeze(1), weight.new_zeros(V, pad)], 1)
    return x_aug, w_aug


def _augmented_grads(x: torch.Tensor, w_aug: torch.Tensor, grad: torch.Tensor, need_x: bool, need_wb: bool):
    """The backward of ``[x, 1, 0...] w_aug^T`` for the output gradient ``grad`` (N, V): ``(dx, both)``
    with ``dx = grad w_aug[:, :K]`` and ``both = [x, 1, 0...]^T grad`` (K + 1 + pad, V), whose first
    K rows are the weight's gradient (transposed) and row K the bias's (the column sums of grad).
    The left operand of ``both`` is written contiguous first: the product with a transposed left
    operand runs at half speed on the CPU.  Either is ``None`` when not needed."""
    N, K = x.shape
    dx = grad @ w_aug[:, :K] if need_x else None
    both = None
    if need_wb:
        pad = w_aug.size(1) - K - 1
        x_aug_t = torch.cat([x.t(), x.new_ones(1, N), x.new_zeros(pad, N)], 0)  # (K + 1 + pad, N), contiguous
        both = x_aug_t @ grad
    return dx, both


class _VocabLinear(torch.autograd.Function):
    """``x W^T + b`` for (N, K) rows onto a wide (V) output, the bias carried as one more inner
    column: ``[x, 1, 0...] [W, b, 0...]^T``.  The backward forms ``[x, 1, 0...]^T g`` in one
    product whose first K rows are the weight's gradient (transposed) and whose row K is the
    bias's; its left operand is written contiguous first."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        x_aug, w_aug = _augmented(x, weight, bias)
        ctx.save_for_backward(x, w_aug)
        return x_aug @ w_aug.t()  # (N, V)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w_aug = ctx.saved_tensors
        K, need = x.size(1), ctx.needs_input_grad
        dx, both = _augmented_grads(x, w_aug, grad.contiguous(), need[0], need[1] or need[2])
        dw = both[:K].t().contiguous() if need[1] else None  # (V, K)
        db = both[K] if need[2] else None  # (V,)
        return dx, dw, db


def vocab_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for (..., K) inputs onto a vocabulary-sized output (V, K)
    weight: the same values up to the order of float accumulation.  On the CPU the bias rides in
    the product (no bias pass over the (N, V) output) and the weight's gradient comes from a
    contiguous left operand: on 2 cores, for Electric's cloze head (4,032 rows, 128 -> 2,048,
    bf16) forward and backward take 4.3 against 6.0 ms, most of it the weight's gradient,
    whose product with a transposed left operand runs at half speed.  Under autocast the
    operands are cast as ``F.linear``'s are.  On a GPU this is ``F.linear``."""
    if x.is_cuda or bias is None:
        return torch.nn.functional.linear(x, weight, bias)
    dev = x.device.type
    dtype = _compute_dtype(x)
    lead = x.shape[:-1]
    with torch.autocast(dev, enabled=False):
        out = _VocabLinear.apply(x.reshape(-1, x.size(-1)).to(dtype), weight.to(dtype), bias.to(dtype))
    return out.view(*lead, -1)


class _VocabCrossEntropy(torch.autograd.Function):
    """:func:`vocab_linear` and :func:`row_cross_entropy` in one: the logits of the first C rows are
    turned into ``softmax(z) - onehot(target)`` block by block while each block is in cache, in the
    logits' own storage, and the backward multiplies that by the upstream gradient inside the two
    products of the linear layer's backward (or, where the upstream gradient is not one value for
    all rows, row by row first)."""

    @staticmethod
    def forward(ctx, x, weight, bias, targets, keep, dtype):
        C, V = targets.numel(), weight.size(0)
        xc = x.to(dtype)
        x_aug, w_aug = _augmented(xc, weight.to(dtype), bias.to(dtype))
        z = x_aug @ w_aug.t()  # (R, V) logits
        kept = z[:C][keep] if keep is not None else z.new_empty(0, V)  # (S, V), before they are overwritten
        picked = z[:C].gather(-1, targets.unsqueeze(-1)).squeeze(-1).float()  # (C,)
        lse = torch.empty(C, dtype=torch.float32, device=z.device)
        top = torch.empty(C, dtype=torch.float32, device=z.device)
        for a, b in _row_blocks(C, V):
            f = z[a:b].to(torch.float32, copy=True)
            t, m, s = _exp_block_(f)
            top[a:b] = t.squeeze(-1)
            lse[a:b] = s.log().add_(m).squeeze(-1)
            f.div_(s).scatter_add_(-1, targets[a:b].unsqueeze(-1), f.new_full((b - a, 1), -1.0))
            z[a:b] = f  # softmax(z) - onehot: the loss's gradient for an upstream gradient of 1
        z[C:] = 0  # rows without a loss
        ctx.save_for_backward(xc, w_aug, z)
        ctx.x_dtype, ctx.w_dtype, ctx.b_dtype = x.dtype, weight.dtype, bias.dtype
        hit = picked >= top
        ctx.mark_non_differentiable(lse, hit, kept)
        return lse - picked, lse, hit, kept

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad, _lse=None, _hit=None, _kept=None):
        x, w_aug, dz = ctx.saved_tensors
        K, C, need = x.size(1), grad.numel(), ctx.needs_input_grad
        g = grad.float()
        scale = float(g[0]) if C and bool((g == g[0]).all()) else None
        if scale is None:  # one upstream value per row: multiply the rows first
            dz = dz.clone()
            dz[:C] = dz[:C].float().mul_(g.unsqueeze(-1))
        else:
            scale = scale if C else 0.0
        dx, both = _augmented_grads(x, w_aug, dz, need[0], need[1] or need[2])
        dw = db = None
        if dx is not None:
            dx = dx.float()
            if scale is not None:
                dx.mul_(scale)
            dx = dx.to(ctx.x_dtype)
        if both is not None:  # (K + 1 + pad, V): the weight's gradient (transposed) and the bias's
            both = both.float()
            if scale is not None:
                both.mul_(scale)
            dw = both[:K].t().contiguous().to(ctx.w_dtype) if need[1] else None
            db = both[K].to(ctx.b_dtype) if need[2] else None
        return dx, dw, db, None, None, None


def vocab_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                        keep: torch.Tensor | None = None):
    """A vocabulary head and its cross-entropy: ``z = F.linear(x, weight, bias)`` for (R, K) rows,
    then :func:`row_cross_entropy` of its first C rows against ``targets`` (C,) with
    ``stats=True``; rows C..R-1 get logits but no loss (padding rows).  Returns ``(cross_entropy,
    logsumexp, hit, kept)``, the first three (C,) as :func:`row_cross_entropy` gives them and
    ``kept`` the logits of the rows ``keep`` selects (a boolean mask or indices over the first C
    rows; no gradient).

    On the CPU the logits are never read again after the loss's pass: that pass leaves
    ``softmax(z) - onehot`` in their place, in the logits' dtype (bf16 under autocast), and the
    backward scales the two products of the linear layer's backward by the upstream gradient
    when it is one value for every row (a mean of the losses) instead of forming the logits'
    gradient in a pass of its own.  The bias rides in the product as in :func:`vocab_linear`.
    The same values as the two functions apart, and gradients up to the rounding of
    ``softmax(z) - onehot`` to the logits' dtype before the scale instead of after: on Electric's
    cloze head (4,032 rows, 128 -> 2,048, bf16) forward and backward take 9.7 against 11.8 ms
    on 2 cores.  On a GPU it is the two functions apart."""
    if x.dim() != 2 or targets.dim() != 1 or targets.numel() > x.size(0):
        raise ValueError(f"vocab_cross_entropy: x (R, K) and targets (C,) with C <= R, got {tuple(x.shape)} "
                         f"and {tuple(targets.shape)}")
    if x.is_cuda:
        z = torch.nn.functional.linear(x, weight, bias)
        ce, lse, hit = row_cross_entropy(z[:targets.numel()], targets, stats=True)
        kept = z.detach()[:targets.numel()][keep] if keep is not None else z.new_empty(0, z.size(-1))
        return ce, lse, hit, kept
    dtype = _compute_dtype(x)
    with torch.autocast(x.device.type, enabled=False):
        return _VocabCrossEntropy.apply(x, weight, bias, targets, keep, dtype)
