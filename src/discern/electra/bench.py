"""Pre-training throughput of the quick configuration: the training path now against the
previous one, in the same process, on identical batches.

- **before** (the in-run baseline, kept as it was): dropout 0.1 in pre-training, PyTorch SDPA
  attention (its CPU flash kernel), replacements drawn by Gumbel-max (one exponential draw and
  logarithm per vocabulary entry and masked slot), accuracy by ``argmax`` over the vocabulary,
  cross-entropy on an fp32 copy of the logits, and an Adam that loops over parameters in Python;
- **ours**: the quick preset as it trains now: no dropout in pre-training, Hugging Face's eager
  attention (matmul + softmax; faster backward on the CPU), one uniform draw per slot
  (two-level inverse-CDF sampling, equal in law), accuracy from a row maximum, cross-entropy
  in cache-sized row blocks with a one-pass backward, one fused Adam kernel call per
  parameter group, the gradient norm in one foreach call, bf16 autocast.

Both use :class:`ElectraPretrainer` (generator head only at the masked slots).  The ratio is of
examples per second.  MFU = model FLOPs per second / a bf16 2,048^3 matmul peak measured in
this run, with the FLOPs of one step (forward and backward) counted by torch's flop counter.
Steps alternate between the two sides, so machine noise falls on both.
"""

from __future__ import annotations

import dataclasses

import torch

from discern.train import ElectraAdam, param_groups
from discern.train.bench import (GOAL_ENCODER, GOAL_VOCAB, LoopAdam, argmax_hit_before, compare, cpu_name,
                                 cross_entropy_before, gumbel_max_before, matmul_peak, step_flops, step_ratio)

from .config import quick as quick_preset
from .model import ElectraPretrainer

SPECIAL = [0, 1, 2, 3, 4]


def random_batches(n: int, B: int, L: int, vocab: int, seed: int = 1) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(5, vocab, (B, L), generator=g)
        ids[:, 0], ids[:, -1] = 2, 3
        out.append({"input_ids": ids, "attention_mask": torch.ones(B, L, dtype=torch.long),
                    "token_type_ids": torch.zeros(B, L, dtype=torch.long)})
    return out


def goal_shape():
    """The quick configuration as it was when the throughput goal (3x) was set: 4 layers of
    width 128 (FFN 512, 2 heads), a generator of 1/4 width with all 4 layers, a vocabulary of
    8,192, batch 32 x 128, bf16.  The quick preset has since become smaller (2 layers, a
    one-layer generator, 2,048 entries); the bench measures both shapes."""
    cfg = quick_preset()
    cfg.model = dataclasses.replace(cfg.model, **GOAL_ENCODER, generator_size=0.25, generator_layers=1.0)
    cfg.data.vocab_size = GOAL_VOCAB
    return cfg


def bench(quick: bool = False) -> dict:
    """Examples/s of the training step before and now, and ours' MFU, on the quick preset's
    shape and on the shape the goal was set on (:func:`goal_shape`)."""
    steps = 4 if quick else 12
    now = measure(quick_preset(), steps)
    goal = measure(goal_shape(), steps)
    return {
        "bench": "electra",
        "ratios": {"examples_per_s_vs_before": now["ratio"], "mfu": now["mfu"],
                   "examples_per_s_vs_before_4x128_v8192": goal["ratio"], "mfu_4x128_v8192": goal["mfu"]},
        "goals": {"examples_per_s_vs_before": ">= 3", "mfu": ">= 0.25",
                  "examples_per_s_vs_before_4x128_v8192": ">= 3", "mfu_4x128_v8192": ">= 0.25"},
        "details": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "steps_timed": steps, "quick": now["details"], "4x128_v8192": goal["details"]},
    }


def measure(cfg, steps: int) -> dict:
    """Examples/s of one configuration's training step, before and now, and ours' MFU."""
    from discern.nn import gumbel_sample, row_cross_entropy, top_hit

    from . import model as model_mod

    vocab, B, L, tc = cfg.data.vocab_size, cfg.train.batch_size, cfg.data.seq_len, cfg.train
    torch.manual_seed(0)
    ours = ElectraPretrainer(cfg.model, vocab, 0, SPECIAL, 4)
    torch.manual_seed(0)
    previous = dataclasses.replace(cfg.model, dropout=0.1, attention_dropout=0.1, attention="sdpa",
                                   bf16_stream=False)
    before = ElectraPretrainer(previous, vocab, 0, SPECIAL, 4)
    opt_ours = ElectraAdam(param_groups(ours, tc.weight_decay), lr=tc.lr, bias_correction=True)
    opt_before = LoopAdam(param_groups(before, tc.weight_decay), lr=tc.lr, bias_correction=True)
    batches = random_batches(steps + 1, B, L, vocab)

    def patch(now: bool) -> None:
        model_mod.gumbel_sample = gumbel_sample if now else gumbel_max_before
        model_mod.top_hit = top_hit if now else argmax_hit_before
        model_mod.row_cross_entropy = row_cross_entropy if now else cross_entropy_before

    peak_start = matmul_peak(torch.bfloat16)
    try:
        steps_ours, steps_before = compare((ours, opt_ours), (before, opt_before), batches, patch)
        patch(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            flops = step_flops(ours, batches[0])
    finally:
        patch(True)
    peak = max(peak_start, matmul_peak(torch.bfloat16))  # the machine's speed drifts: keep the higher
    t_ours, t_before = sum(steps_ours), sum(steps_before)
    ratio = step_ratio(steps_ours, steps_before)
    ex_ours, ex_before = B * steps / t_ours, B * steps / t_before
    return {
        "ratio": ratio["ratio"], "mfu": flops * steps / t_ours / peak,
        "details": {
            "config": f"{cfg.model.layers} layers x {cfg.model.hidden}, generator x{cfg.model.generator_size} "
                      f"of {max(1, round(cfg.model.layers * cfg.model.generator_layers))} layers, vocab {vocab}, "
                      f"batch {B} x {L}, bf16 autocast",
            "examples_per_s_ours": round(ex_ours, 2), "examples_per_s_before": round(ex_before, 2),
            "gflop_per_step": round(flops / 1e9, 2),
            "matmul_peak_gflops_bf16": round(peak / 1e9, 1),
            "mfu_before": round(flops * steps / t_before / peak, 4),
            "ratio_ci_95": [round(x, 3) for x in ratio["ci"]], "ratio_ci_test": ratio["test"],
        },
    }
