"""A direct forward pass of a Hugging Face ``ElectraModel`` for pre-training on the CPU.

``ElectraModel.forward`` runs the transformer of Vaswani et al. (2017) as BERT and ELECTRA use it:
embeddings (token + segment + position, LayerNorm), an optional projection to the hidden width,
then per layer multi-head self-attention, a dense output with a residual LayerNorm, and a GELU
feed-forward with a second residual LayerNorm (post-LN; ELECTRA paper, section 3.1, Table 6:
BERT's architecture).  Around that arithmetic the library spends about a millisecond per call on
work that does not depend on the batch: argument decorators, output recording, a mask built
through its mask interface, ``inspect.signature`` in the feed-forward chunking helper, output
dataclasses.  At the laptop scale of the quick presets (a step of 50 to 70 ms with two or three
encoder passes) that is a few percent of the step.

:func:`encode` calls the same submodules in the same order (the embedding module, each
``nn.Linear`` and ``nn.LayerNorm``, the activation, so hooks and adapters on them still apply)
and :func:`discern.nn.attention.fused_attention` with the mask that kernel's own mask function
makes, and returns ``last_hidden_state``.  It covers what pre-training here uses: the fused
attention kernel, no active dropout, no feed-forward chunking, no cross-attention or cache, no
gradient checkpointing, no hook on a module whose forward it does not call (the model, its encoder,
a layer and its attention and feed-forward blocks); for anything else it calls the model itself.  A causal model's mask
(a Hugging Face ``is_decoder`` config) is one cached triangle for the whole batch where no row has
padding.  ``tests/nn/test_encoder.py`` checks outputs and gradients against the library's forward,
bit for bit.
"""

from __future__ import annotations

import torch

from .attention import NAME, fused_attention, key_padding_mask

_causal_cache: dict[tuple, torch.Tensor] = {}


def fast_path(model) -> bool:
    """Whether :func:`encode` runs ``model`` directly (see the module's docstring)."""
    from transformers import ElectraModel

    if type(model) is not ElectraModel:
        return False
    c = model.config
    if c._attn_implementation != NAME or c.chunk_size_feed_forward or c.add_cross_attention:
        return False
    if model.training and (c.hidden_dropout_prob > 0 or c.attention_probs_dropout_prob > 0):
        return False
    if getattr(model, "gradient_checkpointing", False) and model.training:
        return False
    from torch.nn.modules import module as torch_module

    if getattr(torch_module, "_global_forward_hooks", None) or getattr(torch_module, "_global_forward_pre_hooks", None):
        return False
    return not any(m._forward_hooks or m._forward_pre_hooks for m in _bypassed(model))


def _bypassed(model):
    """The modules whose own forward :func:`encode` does not call (it calls their parts): a hook
    on one of them would not run, so their hooks send a model down the library's path."""
    yield model
    yield model.encoder
    for layer in model.encoder.layer:
        yield from (layer, layer.attention, layer.attention.self, layer.attention.output, layer.intermediate,
                    layer.output)


def causal_bias(length: int, dtype: torch.dtype, device) -> torch.Tensor:
    """An additive (1, 1, L, L) causal mask: 0 on and below the diagonal, the dtype's minimum
    above (what the library's causal mask holds for a row without padding).  Cached per shape."""
    key = (length, dtype, str(device))
    bias = _causal_cache.get(key)
    if bias is None:
        above = torch.ones(length, length, dtype=torch.bool, device=device).triu(1)
        bias = torch.zeros(length, length, dtype=dtype, device=device).masked_fill_(above, torch.finfo(dtype).min)
        bias = bias[None, None]
        if len(_causal_cache) > 64:
            _causal_cache.clear()
        _causal_cache[key] = bias
    return bias


def attention_bias(model, attention_mask: torch.Tensor | None, batch: int, length: int, dtype, device):
    """The additive mask :func:`fused_attention` receives in ``model``, with the values of the
    library's own: ``None`` or a (B, 1, 1, L) key-padding row in a bidirectional encoder; in a
    causal one the cached (1, 1, L, L) triangle, or where a row has padding the triangle and the
    key-padding row together, (B, 1, L, L)."""
    row = key_padding_mask(batch, length, length, attention_mask=attention_mask, dtype=dtype,
                           allow_is_bidirectional_skip=True, device=device, mask_function=_bidirectional())
    if not model.config.is_decoder:
        return row
    triangle = causal_bias(length, dtype, device)
    return triangle if row is None else torch.minimum(triangle, row)


def _bidirectional():
    from transformers.masking_utils import bidirectional_mask_function

    return bidirectional_mask_function


def encode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
           token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
    """``model(input_ids, attention_mask=..., token_type_ids=...).last_hidden_state`` of a Hugging
    Face ``ElectraModel``: (B, L) ids -> (B, L, H), directly where :func:`fast_path` allows."""
    if not fast_path(model):
        return model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                     use_cache=False).last_hidden_state
    x = model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (B, L, E)
    B, L, _ = x.shape
    # the stream as (B * L, width) rows: a linear layer on a 3-D input views it as 2-D and its
    # output back, two more autograd nodes per layer and step than the product itself
    x = x.reshape(B * L, -1)
    project = getattr(model, "embeddings_project", None)
    if project is not None:
        x = project(x)  # (B * L, H)
    bias = attention_bias(model, attention_mask, B, L, x.dtype, x.device)
    for layer in model.encoder.layer:
        a = layer.attention.self
        shape = (B, L, -1, a.attention_head_size)
        q = a.query(x).view(shape).transpose(1, 2)  # (B, heads, L, d)
        k = a.key(x).view(shape).transpose(1, 2)
        v = a.value(x).view(shape).transpose(1, 2)
        o, _ = fused_attention(a, q, k, v, bias, scaling=a.scaling, dropout=0.0)  # (B, L, heads, d)
        out = layer.attention.output
        x = out.LayerNorm(out.dense(o.reshape(B * L, -1)) + x)  # dropout inactive: the identity
        h = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
        x = layer.output.LayerNorm(layer.output.dense(h) + x)
    return x.view(B, L, -1)
