"""Shared-prefix ("cascade") sampling: ``n`` samples of each prompt read the prompt's keys and values
once per step instead of ``n`` times.

Self-consistency draws 11 samples of one chain-of-thought prompt and ensemble refinement 33 samples
of a stage-2 prompt that holds all 11 stage-1 reasonings (Singhal et al. 2023, section 3.3): a long
prompt, many short continuations.  Repeating the prompt's cache ``n`` times makes every decoding step
read ``n`` copies of it, and on a CPU that memory traffic is the cost of the step.  Here the prompt
is prefilled once at batch size B (prompts), and each attention layer splits its work
(exact, not an approximation):

- prefix: the ``n`` samples' queries of a prompt are stacked as ``n`` query rows against the one
  prefix cache of that prompt (grouped-query heads stacked the same way): one matrix product per
  prompt, the prefix read once;
- suffix: each sample attends to its own generated tokens (a small per-sample cache);
- the two score blocks share one softmax (concatenated), so the result equals attention over the
  concatenated sequence.

The loop samples like ``generate(do_sample=True)``: temperature, then top-p, softmax, one
multinomial draw per row per step; finished rows emit the pad token.  With the same seed it draws
exactly the tokens ``generate`` draws with the prompt recomputed per sample (tested in float64).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable

import torch

NAME = "discern_cascade"
_ACTIVE = threading.local()
_LOCK = threading.Lock()


def _cascade_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """query (B*n, H, q, d); key/value: the suffix cache (B*n, Hkv, t, d); the prefix comes from the
    active state: keys/values (B, Hkv, P, d) and its padding mask (B, P)."""
    state = _ACTIVE.state
    pk, pv = state.prefix[module.layer_idx]
    bn, h, q, d = query.shape
    b, hkv, p, _ = pk.shape
    n, g, t = bn // b, h // hkv, key.shape[2]
    scale = scaling if scaling is not None else d ** -0.5
    # prefix: per prompt, all samples' (grouped) queries against the one prefix cache
    qp = query.reshape(b, n, hkv, g * q, d).transpose(1, 2).reshape(b, hkv, n * g * q, d)
    sp = torch.matmul(qp, pk.transpose(-1, -2)) * scale  # (b, hkv, n*g*q, p)
    sp = sp.masked_fill(~state.prefix_mask[:, None, None, :], float("-inf"))
    sp = sp.reshape(b, hkv, n, g * q, p).transpose(1, 2).reshape(bn, hkv, g * q, p)
    # suffix: each sample's own tokens, causal within the q new tokens
    qs = query.reshape(bn, hkv, g * q, d)
    ss = torch.matmul(qs, key.transpose(-1, -2)) * scale  # (bn, hkv, g*q, t)
    if q > 1:
        qpos = torch.arange(t - q, t, device=query.device).repeat(g)  # rows ordered (group, query)
        ss = ss.masked_fill(torch.arange(t, device=query.device)[None, :] > qpos[:, None], float("-inf"))
    probs = torch.softmax(torch.cat([sp, ss], dim=-1), dim=-1)
    pp, ps = probs[..., :p], probs[..., p:]
    pp = pp.reshape(b, n, hkv, g * q, p).transpose(1, 2).reshape(b, hkv, n * g * q, p)
    out = torch.matmul(pp, pv).reshape(b, hkv, n, g * q, d).transpose(1, 2).reshape(bn, hkv, g * q, d)
    out = out + torch.matmul(ps, value)
    return out.reshape(bn, h, q, d).transpose(1, 2).contiguous(), None


def _no_mask(*args, **kwargs):
    return None  # masking is done inside _cascade_attention


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, _cascade_attention)
    AttentionMaskInterface.register(NAME, _no_mask)


class _State:
    def __init__(self, prefix, prefix_mask):
        self.prefix, self.prefix_mask = prefix, prefix_mask


def _cache_arg(model) -> str:
    # transformers >= 5.2x names the forward argument ``cache`` (``past_key_values`` before)
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _configs(model):
    seen = []
    for m in model.modules():
        c = getattr(m, "config", None)
        if c is not None and hasattr(c, "_attn_implementation") and all(c is not s for s in seen):
            seen.append(c)
    return seen


def _warp(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Temperature, then nucleus filtering (the smallest set of tokens with mass >= top_p; at least one)."""
    if temperature != 1.0:
        logits = logits / temperature
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=False)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cum <= (1 - top_p)
        drop[..., -1:] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


@torch.no_grad()
def sample_shared_prefix(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, n: int, max_new_tokens: int,
                         temperature: float = 1.0, top_p: float = 1.0, eos_token_id: int | list[int] | None = None,
                         pad_token_id: int = 0, stop: Callable[[torch.Tensor], torch.Tensor] | None = None
                         ) -> torch.Tensor:
    """``n`` sampled continuations of each left-padded prompt: (B*n, new tokens), rows grouped by prompt.
    ``stop(generated)`` returns a bool per row that marks it finished (e.g. a stop string seen)."""
    from transformers import DynamicCache

    b, length = input_ids.shape
    if length < 2:
        raise ValueError("shared-prefix sampling needs prompts of at least 2 tokens")
    arg = _cache_arg(model)
    mask = attention_mask.long()
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    prompt_cache = DynamicCache(config=model.config)
    # the prompt less its last token is the shared prefix; the last token starts every sample
    model(input_ids=input_ids[:, :-1], attention_mask=mask[:, :-1], position_ids=pos[:, :-1], use_cache=True,
          **{arg: prompt_cache})
    prefix = [(layer.keys, layer.values) for layer in prompt_cache.layers]
    state = _State(prefix, mask[:, :-1].bool())
    suffix_cache = DynamicCache(config=model.config)
    token = input_ids[:, -1:].repeat_interleave(n, 0)
    position = pos[:, -1:].repeat_interleave(n, 0)
    unfinished = torch.ones(b * n, dtype=torch.bool, device=input_ids.device)
    generated = []
    eos = None if eos_token_id is None else torch.tensor(eos_token_id, device=input_ids.device).reshape(-1)
    configs = _configs(model)
    with _LOCK:
        _register()
        saved = [c._attn_implementation for c in configs]
        _ACTIVE.state = state
        try:
            for c in configs:
                c._attn_implementation = NAME
            for _ in range(max_new_tokens):
                logits = model(input_ids=token, position_ids=position, use_cache=True,
                               **{arg: suffix_cache}).logits[:, -1, :].float()
                probs = torch.softmax(_warp(logits, temperature, top_p), dim=-1)
                nxt = torch.multinomial(probs, num_samples=1).squeeze(1)
                nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad_token_id))
                generated.append(nxt)
                if eos is not None:
                    unfinished &= ~torch.isin(nxt, eos)
                if stop is not None:
                    unfinished &= ~stop(torch.stack(generated, 1))
                if not unfinished.any():
                    break
                token, position = nxt[:, None], position + 1
        finally:
            for c, s in zip(configs, saved):
                c._attn_implementation = s
            _ACTIVE.state = None
    return torch.stack(generated, 1)
