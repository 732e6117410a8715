"""Exact sequence log-likelihoods under a causal language model.

    log p(x) = Σ_t log p(x_t | c, x_<t)

where the context c is a BOS token (so the first token of x is scored too) and an optional prefix (a prompt,
a question: conditioned on, never scored). Texts are batched with right padding and an attention mask,
longest first, and returned in input order. Log-softmax is taken in fp32 whatever the model's dtype.

Dimension legend: B texts in a batch, L padded length, K kept logit positions, V vocabulary.
"""

from __future__ import annotations

import inspect
from typing import Sequence

import torch

from discern.core.errors import DiscernError


def bos_id(tokenizer) -> int:
    """The token every text is conditioned on: ``bos_token_id``, else ``eos_token_id`` (as GPT-2 does)."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    raise DiscernError(f"tokenizer {type(tokenizer).__name__} has neither a BOS nor an EOS token;"
                       " pass add_bos=False or a prefix")


def _encode(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _batches(lengths: list[int], order: list[int], batch_size: int, max_batch_tokens: int | None):
    """Consecutive groups of ``order`` (longest first) with at most ``batch_size`` rows and, if given, at most
    ``max_batch_tokens`` padded tokens (always at least one row)."""
    batch: list[int] = []
    for i in order:
        rows = len(batch) + 1
        longest = lengths[batch[0]] if batch else lengths[i]
        if batch and (rows > batch_size or (max_batch_tokens and rows * longest > max_batch_tokens)):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _cache_arg(model) -> str:
    """The name under which ``forward`` takes a key/value cache (``cache`` in recent transformers)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _accepts_logits_to_keep(model) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def sequence_logprobs(model, tokenizer, texts: Sequence[str], batch_size: int = 16,
                      prefix: str | Sequence[str] | None = None, add_bos: bool = True,
                      return_counts: bool = False, bos_token_id: int | None = None,
                      max_batch_tokens: int | None = 16384):
    """Total natural-log probability of each text's tokens under a causal LM.

    Args:
        model: a Hugging Face causal LM (``AutoModelForCausalLM``), any dtype; run in eval mode (no dropout),
            then put back in the mode it was in.
        tokenizer: its tokenizer; texts are tokenized without special tokens.
        texts: the texts to score.
        batch_size: texts per forward pass.
        prefix: context conditioned on but not scored: one string for all texts or one per text. It is
            tokenized separately and its ids placed before the text's ids (as lm-evaluation-harness does),
            so put the joining space at the start of the text (``prefix="Answer:", text=" yes"``).
        add_bos: condition on a BOS token first (``bos_token_id`` if given, else the tokenizer's BOS, else its
            EOS). With ``add_bos=False`` and no prefix the first token has no context and is not scored.
        return_counts: also return the number of scored tokens per text.
        bos_token_id: override the token used as BOS.
        max_batch_tokens: cap on rows × padded length per forward pass (bounds the (B, K, V) logits), or None.

    Returns:
        ``list[float]`` in input order, or ``(logprobs, counts)`` with ``return_counts=True``.
        An empty text scores 0.0 with 0 tokens.
    """
    if isinstance(texts, str):
        raise DiscernError("sequence_logprobs: pass a list of texts, not one string")
    texts = list(texts)
    n = len(texts)
    if isinstance(prefix, str) or prefix is None:
        prefixes = [prefix or ""] * n
    else:
        prefixes = list(prefix)
        if len(prefixes) != n:
            raise DiscernError(f"sequence_logprobs: {len(prefixes)} prefixes for {n} texts")
    if batch_size < 1:
        raise DiscernError(f"sequence_logprobs: batch_size must be >= 1, got {batch_size}")

    # Tokenize: each distinct prefix once, all texts in one call.
    distinct = sorted(set(p for p in prefixes if p))
    prefix_ids = dict(zip(distinct, _encode(tokenizer, distinct)))
    text_ids = _encode(tokenizer, texts)
    start = ([bos_token_id if bos_token_id is not None else bos_id(tokenizer)] if add_bos else [])
    seqs, ctx_len = [], []
    for ids, p in zip(text_ids, prefixes):
        ctx = start + prefix_ids.get(p, [])
        if not ctx:  # nothing to condition on: the first token is context, not scored
            ctx, ids = ids[:1], ids[1:]
        seqs.append(ctx + ids)
        ctx_len.append(len(ctx))
    lengths = [len(s) for s in seqs]
    counts = [lengths[i] - ctx_len[i] for i in range(n)]

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0  # masked out anyway
    out = [0.0] * n
    was_training = model.training
    model.eval()
    try:
        _score_batches(model, seqs, ctx_len, lengths, counts, out, pad, batch_size, max_batch_tokens)
    finally:
        model.train(was_training)
    return (out, counts) if return_counts else out


def _score_batches(model, seqs, ctx_len, lengths, counts, out, pad, batch_size, max_batch_tokens) -> None:
    """Fill ``out[i]`` with the summed log-probability of the scored tokens of ``seqs[i]``."""
    device = next(model.parameters()).device
    keep_arg = _accepts_logits_to_keep(model)
    order = sorted(range(len(seqs)), key=lambda i: (-lengths[i], i))
    with torch.inference_mode():
        for batch in _batches(lengths, order, batch_size, max_batch_tokens):
            batch = [i for i in batch if counts[i] > 0]
            if not batch:
                continue
            L = max(lengths[i] for i in batch)
            ids = torch.full((len(batch), L), pad, dtype=torch.long)  # (B, L)
            mask = torch.zeros((len(batch), L), dtype=torch.long)
            for r, i in enumerate(batch):
                ids[r, :lengths[i]] = torch.tensor(seqs[i])
                mask[r, :lengths[i]] = 1
            # Logits at position j predict token j + 1; scored tokens sit at ctx_len .. length - 1.
            lo = min(ctx_len[i] for i in batch) - 1
            hi = L - 1
            ids, mask = ids.to(device), mask.to(device)
            if keep_arg:
                keep = torch.arange(lo, hi, device=device)
                logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits  # (B, K, V)
            else:
                logits = model(input_ids=ids, attention_mask=mask).logits[:, lo:hi]  # (B, K, V)
            logits = logits.float()
            target = ids[:, lo + 1:hi + 1]  # (B, K)
            lp = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)  # (B, K)
            pos = torch.arange(lo + 1, hi + 1, device=device)  # (K,) index of the predicted token
            first = torch.tensor([ctx_len[i] for i in batch], device=device)
            last = torch.tensor([lengths[i] for i in batch], device=device)
            scored = (pos[None] >= first[:, None]) & (pos[None] < last[:, None])  # (B, K)
            totals = torch.where(scored, lp.double(), 0.0).sum(-1).tolist()
            for r, i in enumerate(batch):
                out[i] = totals[r]


def choice_logprobs(model, tokenizer, prefix: str, choices: Sequence[str], add_bos: bool = True,
                    bos_token_id: int | None = None) -> list[float]:
    """``log p(choice | BOS + prefix)`` for each of ``choices`` (e.g. the option letters of a multiple-choice
    question after its few-shot prompt), from **one** forward pass over the prefix whose key/value cache is
    repeated for the choices, which are then scored together.  Tokenization and conditioning are those of
    :func:`sequence_logprobs` with ``prefix=prefix`` (the same values up to summation order in floating
    point); for a long prompt and C choices it costs about 1/C of scoring C full sequences.  Falls back to
    :func:`sequence_logprobs` for a model without a key/value cache or an empty prefix or choice."""
    if isinstance(choices, str) or not list(choices):
        raise DiscernError("choice_logprobs: pass a non-empty list of choices")
    choices = list(choices)
    ctx = (([bos_token_id if bos_token_id is not None else bos_id(tokenizer)] if add_bos else [])
           + (_encode(tokenizer, [prefix])[0] if prefix else []))
    cont = _encode(tokenizer, choices)
    if not ctx or any(not c for c in cont) or not _accepts_logits_to_keep(model):
        return sequence_logprobs(model, tokenizer, choices, prefix=prefix, add_bos=add_bos,
                                 bos_token_id=bos_token_id)
    device = next(model.parameters()).device
    n_choices, longest = len(cont), max(len(c) for c in cont)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            first = model(input_ids=torch.tensor([ctx], device=device), use_cache=True, logits_to_keep=1)
            cache = first.get("cache") if first.get("cache") is not None else first.get("past_key_values")
            if cache is None or not hasattr(cache, "batch_repeat_interleave"):
                return sequence_logprobs(model, tokenizer, choices, prefix=prefix, add_bos=add_bos,
                                         bos_token_id=bos_token_id)
            lp_first = first.logits[0, -1].float().log_softmax(-1)  # (V,): predicts each choice's first token
            totals = [float(lp_first[c[0]]) for c in cont]
            if longest > 1:
                cache.batch_repeat_interleave(n_choices)
                ids = torch.full((n_choices, longest), pad, dtype=torch.long)  # (C, Lc), right-padded
                mask = torch.zeros((n_choices, len(ctx) + longest), dtype=torch.long)
                mask[:, :len(ctx)] = 1
                for r, c in enumerate(cont):
                    ids[r, :len(c)] = torch.tensor(c)
                    mask[r, len(ctx):len(ctx) + len(c)] = 1
                pos = torch.arange(len(ctx), len(ctx) + longest).expand(n_choices, -1)
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                               **{_cache_arg(model): cache}).logits.float()  # (C, Lc, V)
                lp = logits.log_softmax(-1)
                for r, c in enumerate(cont):  # position j predicts token j + 1 of the choice
                    totals[r] += float(sum(lp[r, j, c[j + 1]] for j in range(len(c) - 1)))
    finally:
        model.train(was_training)
    return totals
