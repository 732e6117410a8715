"""Dynamic evaluation (Krause et al. 2018/2019), the baseline FWLs are compared with.

The text is cut into segments; each segment is scored with the current weights, then the model
takes ``steps`` SGD steps on that segment's loss before the next one is scored, so a segment
never benefits from its own tokens.  Works on a copy: the model passed in is unchanged.
Context does not cross segment boundaries (each segment is scored on its own), as for the
static baseline it is compared with.  :func:`evaluate` also returns each segment's summed loss
and token count, so methods can be compared segment by segment (paired over the same text).
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F


def segment_nll(model, ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token NLL of one segment ids (1, T) and the number of predicted tokens.
    ``model`` is a Hugging Face causal LM or an :class:`~discern.fwl.FWLCausalLM` (an output with ``.logits``,
    or the logits tensor itself)."""
    out = model(input_ids=ids)
    logits = (out.logits if hasattr(out, "logits") else out)[:, :-1]
    nll = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten(), reduction="sum")
    return nll, ids.shape[1] - 1


def evaluate(model, ids: torch.Tensor, segment_len: int, dynamic: bool = False, lr: float = 1e-4,
             steps: int = 1) -> dict:
    """Perplexity of ``ids`` (1, N) scored in segments; ``dynamic=True`` adapts after each segment.

    Returns ``nll`` (summed over all tokens), ``tokens``, ``ppl``, ``seconds`` and, per segment in
    order, ``segment_nll`` and ``segment_tokens``."""
    if ids.dim() != 2 or ids.shape[0] != 1:
        raise ValueError("evaluate: ids must have shape (1, N)")
    ids = ids.to(next(model.parameters()).device)  # the text follows the model
    m = copy.deepcopy(model) if dynamic else model
    m.eval()  # no dropout, also while adapting
    opt = torch.optim.SGD(m.parameters(), lr=lr) if dynamic else None
    seg_nll: list[float] = []
    seg_tokens: list[int] = []
    t0 = time.perf_counter()
    for s in range(0, ids.shape[1] - 1, segment_len):
        seg = ids[:, s:s + segment_len + 1]
        if seg.shape[1] < 2:
            break
        with torch.no_grad():
            nll, n = segment_nll(m, seg)
        seg_nll.append(float(nll))
        seg_tokens.append(int(n))
        if dynamic:
            for _ in range(steps):
                loss, k = segment_nll(m, seg)
                opt.zero_grad()
                (loss / k).backward()
                opt.step()
    seconds = time.perf_counter() - t0
    total, count = math.fsum(seg_nll), sum(seg_tokens)
    return {"nll": total, "tokens": count, "ppl": math.exp(total / max(1, count)), "seconds": seconds,
            "segment_nll": seg_nll, "segment_tokens": seg_tokens}


def flops_per_token(model, ids: torch.Tensor, kind: str) -> float:
    """FLOPs per scored token of one segment ``ids`` (1, T), counted by ``torch.utils.flop_counter``:
    a forward pass (``static``) or, for ``dynamic``, the scoring pass plus the adaptation step's
    forward and backward (on a copy; ``model`` is unchanged)."""
    from torch.utils.flop_counter import FlopCounterMode

    if kind not in ("static", "dynamic"):
        raise ValueError(f"flops_per_token: kind must be 'static' or 'dynamic', got {kind!r}")
    m = copy.deepcopy(model) if kind == "dynamic" else model
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            _, n = segment_nll(m, ids)
        if kind == "dynamic":
            loss, n = segment_nll(m, ids)
            (loss / n).backward()
    return counter.get_total_flops() / n
