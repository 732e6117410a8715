"""A fused eager attention for Hugging Face encoders trained on the CPU.

Scaled dot-product attention (Vaswani et al. 2017, eq. 1), ``softmax(Q K^T / sqrt(d) + M) V``,
the formula of Hugging Face's eager attention, with fewer passes over the (B, heads, L, L)
scores.  Hugging Face's eager path forms the scores with a matmul, multiplies them by the scale
in a pass of their own, adds the (B, 1, L, L) padding mask in another, and in the backward
multiplies the scores' gradient by the scale once more.  Here:

- the mask is a key-padding row (B, 1, 1, L) instead of a (B, 1, L, L) square, and ``None``
  when a batch has no padding (:func:`key_padding_mask`);
- the scale and the mask go into the score product itself (``baddbmm``: ``M + scale * Q K^T``
  in one call);
- the backward is written out (:class:`_Attention`): the scale goes into the products that form
  the query and key gradients, and the softmax's backward is one kernel call.

The values are those of the eager formula up to float rounding (the scale 1/8 of 64-wide heads
is a power of two, so there the scaled scores are bitwise those of the eager path);
``tests/nn/test_attention.py`` checks outputs and gradients against it.  Dropout on the
attention probabilities, or a mask this module did not make, falls back to the eager formula.
"""

from __future__ import annotations

import torch

#: the ``attn_implementation`` name under which :func:`register` puts this kernel
NAME = "discern_fused"


class _Attention(torch.autograd.Function):
    """``softmax(scale * q k^T + bias) v`` on (G, L, d) tensors, G = batch x heads; ``bias``:
    ``None`` or broadcastable to (G, Lq, Lk), without a gradient."""

    @staticmethod
    def forward(ctx, q, k, v, bias, scale: float):
        kt = k.transpose(1, 2)
        if bias is None:
            s = torch.bmm(q, kt)
            if scale != 1.0:
                s.mul_(scale)
        else:
            s = torch.baddbmm(bias, q, kt, alpha=scale)  # (G, Lq, Lk): bias + scale * q k^T in one call
        p = torch.softmax(s, -1)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        return torch.bmm(p, v)

    @staticmethod
    def backward(ctx, grad):
        q, k, v, p = ctx.saved_tensors
        grad = grad.to(p.dtype)
        dv = torch.bmm(p.transpose(1, 2), grad)  # (G, Lk, d)
        dp = torch.bmm(grad, v.transpose(1, 2))  # (G, Lq, Lk)
        ds = torch._softmax_backward_data(dp, p, -1, p.dtype)  # p * (dp - sum(p * dp))
        scale = ctx.scale
        dq = torch.baddbmm(q, ds, k, beta=0.0, alpha=scale)  # q only gives the shape: beta = 0
        dk = torch.baddbmm(k, ds.transpose(1, 2), q, beta=0.0, alpha=scale)
        return dq, dk, dv, None, None


def _eager(module, query, key, value, attention_mask, scaling, dropout):
    """Hugging Face's own eager attention, for what the fused path does not cover; returns
    ``(output (B, Lq, heads, d), attention maps)``."""
    from transformers.models.bert.modeling_bert import eager_attention_forward

    return eager_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout)


def fused_attention(module, query, key, value, attention_mask, scaling=None, dropout: float = 0.0, **kwargs):
    """Hugging Face's attention interface: (B, heads, L, d) query, key and value, an additive
    mask broadcastable to (B, heads, Lq, Lk) or ``None``; returns ``(output (B, Lq, heads, d),
    None)`` (no attention maps: load with ``attn_implementation="eager"`` to read them)."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    training = bool(getattr(module, "training", False))
    if dropout > 0.0 and training:
        return _eager(module, query, key, value, attention_mask, scaling, dropout)
    B, h, Lq, d = query.shape
    Lk = key.size(-2)
    dev = query.device.type
    if torch.is_autocast_enabled(dev):
        dtype = torch.get_autocast_dtype(dev)
    else:
        dtype = torch.promote_types(query.dtype, torch.promote_types(key.dtype, value.dtype))
    bias = None
    if attention_mask is not None:
        if attention_mask.dim() != 4:
            return _eager(module, query, key, value, attention_mask, scaling, dropout)
        rows = attention_mask.size(2)  # 1 for a key-padding row, Lq for a square mask
        if attention_mask.size(0) == 1 and attention_mask.size(1) == 1:  # one mask for all: broadcast
            bias = attention_mask.reshape(1, rows, Lk).to(dtype)
        else:
            bias = attention_mask.expand(B, h, rows, Lk).reshape(B * h, rows, Lk).to(dtype)
    q, k, v = (x.to(dtype).reshape(B * h, -1, d) for x in (query, key, value))
    with torch.autocast(dev, enabled=False):
        out = _Attention.apply(q, k, v, bias, float(scaling))  # (B * h, Lq, d)
    return out.view(B, h, Lq, d).transpose(1, 2), None


def key_padding_mask(batch_size: int, q_length: int, kv_length: int, q_offset: int = 0, kv_offset: int = 0,
                     mask_function=None, attention_mask: torch.Tensor | None = None,
                     dtype: torch.dtype = torch.float32, allow_is_bidirectional_skip: bool = False,
                     use_vmap: bool = False, device="cpu", **kwargs):
    """Hugging Face's mask interface for :func:`fused_attention`: for a bidirectional encoder
    with a 2D padding mask, an additive (B, 1, 1, L) row (0 for a real key, the dtype's minimum
    for padding), or ``None`` where the batch has no padding and a skip is allowed; any other
    pattern is Hugging Face's own eager (B, 1, Lq, Lk) mask."""
    from transformers.masking_utils import bidirectional_mask_function, eager_mask

    plain = (mask_function is bidirectional_mask_function and not use_vmap and kv_offset == 0
             and (attention_mask is None or (attention_mask.dim() == 2 and attention_mask.size(-1) == kv_length)))
    if not plain:
        return eager_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length, q_offset=q_offset,
                          kv_offset=kv_offset, mask_function=mask_function, attention_mask=attention_mask,
                          dtype=dtype, allow_is_bidirectional_skip=allow_is_bidirectional_skip,
                          use_vmap=use_vmap, device=device, **kwargs)
    if attention_mask is None:
        return None
    keep = attention_mask.to(device=device).bool()
    if allow_is_bidirectional_skip and bool(keep.all()):
        return None
    row = torch.zeros(keep.shape, dtype=dtype, device=device)
    row.masked_fill_(~keep, torch.finfo(dtype).min)
    return row[:, None, None, :]


_registered = False


def register() -> str:
    """Register :func:`fused_attention` and :func:`key_padding_mask` with ``transformers``
    under :data:`NAME` (once per process); returns the name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(NAME, fused_attention)
        AttentionMaskInterface.register(NAME, key_padding_mask)
        _registered = True
    return NAME
