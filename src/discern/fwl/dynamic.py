"""Dynamic evaluation (Krause et al. 2018/2019), the baseline FWLs are compared with.

The text is cut into segments; each segment is scored with the current weights, then the model
takes ``steps`` SGD steps on that segment's loss before the next one is scored, so a segment
never benefits from its own tokens.  Works on a copy: the model passed in is unchanged.
Context does not cross segment boundaries (each segment is scored on its own), as for the
static baseline it is compared with.
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F


def segment_nll(model, ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token NLL of one segment ids (1, T) and the number of predicted tokens.
    ``model`` is a Hugging Face causal LM or an :class:`~discern.fwl.FWLCausalLM` (which returns logits)."""
    out = model(input_ids=ids)
    logits = (out.logits if hasattr(out, "logits") else out)[:, :-1]
    nll = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten(), reduction="sum")
    return nll, ids.shape[1] - 1


def evaluate(model, ids: torch.Tensor, segment_len: int, dynamic: bool = False, lr: float = 1e-4,
             steps: int = 1) -> dict:
    """Perplexity of ``ids`` (1, N) scored in segments; ``dynamic=True`` adapts after each segment."""
    if ids.dim() != 2 or ids.shape[0] != 1:
        raise ValueError("evaluate: ids must have shape (1, N)")
    m = copy.deepcopy(model) if dynamic else model
    m.eval()  # no dropout, also while adapting
    opt = torch.optim.SGD(m.parameters(), lr=lr) if dynamic else None
    total, count = 0.0, 0
    t0 = time.perf_counter()
    for s in range(0, ids.shape[1] - 1, segment_len):
        seg = ids[:, s:s + segment_len + 1]
        if seg.shape[1] < 2:
            break
        with torch.no_grad():
            nll, n = segment_nll(m, seg)
        total += float(nll)
        count += n
        if dynamic:
            for _ in range(steps):
                loss, k = segment_nll(m, seg)
                opt.zero_grad()
                (loss / k).backward()
                opt.step()
    return {"nll": total, "tokens": count, "ppl": math.exp(total / max(1, count)),
            "seconds": time.perf_counter() - t0}
