"""Pre-training throughput of the quick configuration: the training path now against the
previous one, on identical batches.

- **before** (the in-run baseline, kept as it was): dropout 0.1 in pre-training, PyTorch SDPA
  attention (its CPU flash kernel), replacements drawn by Gumbel-max (one exponential draw and
  logarithm per vocabulary entry and masked slot), accuracy by ``argmax`` over the vocabulary,
  cross-entropy on an fp32 copy of the logits, and an Adam that loops over parameters in Python;
- **ours**: the quick preset as it trains now: no dropout in pre-training, the fused eager
  attention (:mod:`discern.nn.attention`: a key-padding row, the scale and the mask inside one
  product, a written-out backward), one uniform draw per slot (two-level inverse-CDF sampling,
  equal in law), cross-entropy in cache-sized row blocks with a one-pass backward and the
  accuracy read off its row maxima, one fused Adam kernel call per
  parameter group, the gradient norm in one foreach call, bf16 autocast, and mimalloc in place
  of glibc's malloc (:mod:`discern.core.allocator`).

Both use :class:`ElectraPretrainer` (generator head only at the masked slots), on random batches
shaped as the packer writes examples (5% of the rows cut short and padded:
:func:`discern.train.bench.random_batches`).  The ratio is of
examples per second: ours under mimalloc over the previous path under glibc's malloc, each path
timed alone in child processes of its own (:func:`discern.train.bench.allocator_bench`); the
ratio with both under glibc's malloc (the code's share) and the allocator's gain are reported
beside it.  MFU = model FLOPs per
second / a bf16 2,048^3 matmul peak measured in this run, with the FLOPs of one step (forward and
backward) counted by torch's flop counter; the details bound it by the step's matrix products
alone (``mfu_matmuls_alone``) and as they run in the step (``mfu_matmuls_in_step``).  The processes run in the order A B C C B A (one of
each with ``--quick``), so that a drift of the machine's speed falls on all.
"""

from __future__ import annotations

import dataclasses

import torch

from discern.train.bench import GOAL_ENCODER, GOAL_VOCAB, allocator_bench, cpu_name, measure_path, rounded

from .config import quick as quick_preset
from .model import ElectraPretrainer

SPECIAL = [0, 1, 2, 3, 4]


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
    """Examples/s of the training step now against before, and ours' MFU, on the quick preset's
    shape and on the shape the goal was set on (:func:`goal_shape`): the previous path under glibc's
    malloc, ours under mimalloc, each in a child process per malloc
    (:func:`discern.train.bench.allocator_bench`)."""
    res = allocator_bench("discern.electra.bench:step_times", quick)
    now, goal = res["quick"], res["4x128_v8192"]
    return {
        "bench": "electra",
        "ratios": {"examples_per_s_vs_before": now["ratio"], "mfu": now["mfu"],
                   # the MFU if nothing but the step's matrix products took time, as they run in the step
                   "mfu_bound_matmuls_in_step": now["mfu_matmuls_in_step"],
                   "examples_per_s_vs_before_4x128_v8192": goal["ratio"], "mfu_4x128_v8192": goal["mfu"],
                   "examples_per_s_vs_before_same_malloc": now["ratio_same_allocator"],
                   "examples_per_s_vs_before_same_malloc_4x128_v8192": goal["ratio_same_allocator"]},
        "goals": {"examples_per_s_vs_before": ">= 3", "mfu": ">= 0.25",
                  "examples_per_s_vs_before_4x128_v8192": ">= 3", "mfu_4x128_v8192": ">= 0.25"},
        "details": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "quick": rounded(now), "4x128_v8192": rounded(goal)},
    }


def step_times(quick: bool = False, side: str = "ours") -> dict:
    """The work of one child process of :func:`bench`: :func:`measure` of one path on both shapes."""
    steps = 6 if quick else 12
    return {"quick": measure(quick_preset(), steps, side), "4x128_v8192": measure(goal_shape(), steps, side)}


def measure(cfg, steps: int, side: str) -> dict:
    """:func:`discern.train.bench.measure_path` of one configuration's ELECTRA pre-trainer."""
    from . import model as model_mod

    m, vocab = cfg.model, cfg.data.vocab_size
    describe = (f"{m.layers} layers x {m.hidden}, generator x{m.generator_size} of "
                f"{max(1, round(m.layers * m.generator_layers))} layers, vocab {vocab}, "
                f"batch {cfg.train.batch_size} x {cfg.data.seq_len}, bf16 autocast")
    return measure_path(lambda mc: ElectraPretrainer(mc, vocab, 0, SPECIAL, 4), cfg, steps, side, model_mod, describe)
