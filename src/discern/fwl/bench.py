"""Benchmark: time per token of base inference, +FWL and dynamic evaluation, in one process.

Same model (the real SmolLM2-135M; ``quick``: shorter segments and fewer repeats), same WikiText-2
test segments.  Base = the causal LM's forward pass; +FWL = the wrapped model's forward pass (slow
pass, inner gradient, fast pass); dynamic evaluation = scoring a segment plus the SGD step on it
(forward, backward, update), as :func:`discern.fwl.dynamic.evaluate` does.  The three are timed
interleaved on the same segments; the fastest repeat of each is reported (as ``timeit`` advises: the
slower ones measure other processes), the medians are in the details.  FLOPs per token, counted by
``torch.utils.flop_counter``, are given beside the times.
"""

from __future__ import annotations

import statistics
import time


def bench(quick: bool = False) -> dict:
    import torch

    from .config import Config
    from .data import corpora
    from .dynamic import flops_per_token, segment_nll
    from .model import FWLCausalLM
    from discern.llm import load_causal_lm

    seq_len, repeats, chunks = (256, 3, 4) if quick else (512, 7, 4)
    base, tok = load_causal_lm("smollm2")
    base.eval()
    fwl = FWLCausalLM(base, attn_chunks=chunks).eval()
    ids = corpora(Config(), tok)["wikitext"]
    segs = [ids[i * seq_len: (i + 1) * seq_len + 1].unsqueeze(0) for i in range(repeats + 1)]
    opt = torch.optim.SGD(base.parameters(), lr=0.0)  # lr 0: the update runs but the model is unchanged

    def t_base(seg):
        with torch.no_grad():
            segment_nll(base, seg)

    def t_fwl(seg):
        with torch.no_grad():
            segment_nll(fwl, seg)

    def t_dynamic(seg):
        with torch.no_grad():
            segment_nll(base, seg)
        loss, n = segment_nll(base, seg)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()

    fns = {"base": t_base, "fwl": t_fwl, "dynamic": t_dynamic}
    for f in fns.values():  # warm-up on the extra segment
        f(segs[-1])
    times: dict[str, list[float]] = {k: [] for k in fns}
    for seg in segs[:-1]:
        for k, f in fns.items():
            t0 = time.perf_counter()
            f(seg)
            times[k].append((time.perf_counter() - t0) / seq_len)
    opt.zero_grad(set_to_none=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    flops = {"base": flops_per_token(base, segs[0], "static"), "fwl": flops_per_token(fwl, segs[0], "static"),
             "dynamic": flops_per_token(base, segs[0], "dynamic")}
    d, V = int(base.config.hidden_size), int(base.config.vocab_size)
    # the FWL needs the slow logits, their gradient at the block's output and the fast logits: two
    # vocabulary projections (2 d V FLOPs per token each) more than the base model's one
    share = 2 * (2 * d * V) / (flops["fwl"] - flops["base"])
    return {
        "bench": "fwl",
        "ratios": {"fwl_over_base_time": best["fwl"] / best["base"],
                   "dynamic_over_base_time": best["dynamic"] / best["base"],
                   "fwl_over_base_flops": flops["fwl"] / flops["base"],
                   "dynamic_over_base_flops": flops["dynamic"] / flops["base"]},
        "goals": {"fwl_over_base_time": "<= 1.3"},
        "details": {"model": "SmolLM2-135M", "seq_len": seq_len, "repeats": repeats, "attn_chunks": chunks,
                    "threads": torch.get_num_threads(),
                    "ms_per_token": {k: round(1e3 * v, 3) for k, v in best.items()},
                    "median_ms_per_token": {k: round(1e3 * v, 3) for k, v in med.items()},
                    "GFLOPs_per_token": {k: round(v / 1e9, 4) for k, v in flops.items()},
                    "share_of_fwl_extra_in_two_vocab_projections": round(share, 3),
                    "vocab_projection_share_of_base": round(2 * d * V / flops["base"], 3)},
    }
