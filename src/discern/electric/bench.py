"""Benchmark: sentences/s of Electric's one-pass PLL vs masked-LM PLL (n passes) at equal size.

Both models have the quick preset's shape (2 layers, width 128) and the same tokenizer; the
sentences are real Brown sentences of ASR-hypothesis length.  The masked LM runs our own
PLL scorer (packed masked copies, vocabulary projection only at the masked position) and,
as a second baseline, the generic path that projects every position (what a plain
``AutoModelForMaskedLM`` loop does).  Same process, same inputs, same dtype.

Pre-training: examples/s of the quick preset's training step now (under mimalloc) against the
previous path (under glibc's malloc), each timed alone in child processes of its own
(:func:`discern.train.bench.allocator_bench`), with MFU from torch's flop counter and a bf16
matmul peak.
"""

from __future__ import annotations

import time

import torch


def _sentences(n: int) -> list[str]:
    from discern.data.pretraining import corpus_documents

    out = []
    for d in corpus_documents(["brown"]):
        for s in d:
            if 8 <= len(s.split()) <= 20:
                out.append(s)
            if len(out) >= n:
                return out
    return out


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def goal_shape():
    """Electric's quick configuration as it was when the throughput goal (3x) was set: 4 layers
    of width 128 (FFN 512, 2 heads), noise towers of 1/4 width with all 4 layers, a vocabulary
    of 8,192, batch 32 x 128, bf16 (the quick preset is now 2 layers with one-layer towers of
    width 8 and 2,048 entries)."""
    import dataclasses

    from discern.train.bench import GOAL_ENCODER, GOAL_VOCAB

    from .config import quick as quick_preset

    cfg = quick_preset()
    cfg.model = dataclasses.replace(cfg.model, **GOAL_ENCODER, tower_size=0.25, tower_layers=1.0)
    cfg.data.vocab_size = GOAL_VOCAB
    return cfg


def step_times(quick: bool = False, side: str = "ours") -> dict:
    """The work of one child process of the pre-training part of :func:`bench`:
    :func:`measure` of one path on the quick preset's shape and on :func:`goal_shape`."""
    from .config import quick as quick_preset

    steps = 6 if quick else 10
    return {"quick": measure(quick_preset(), steps, side), "4x128_v8192": measure(goal_shape(), steps, side)}


def measure(cfg, steps: int, side: str) -> dict:
    """:func:`discern.train.bench.measure_path` of one configuration's Electric pre-trainer: now (the
    quick preset's path) or before (dropout 0.1, SDPA attention, Gumbel-max noise samples over the
    vocabulary, accuracy by argmax, the noise head as ``F.linear`` and its cross-entropy on an
    fp32 copy of the logits, a per-parameter Adam loop)."""
    from discern.train.bench import measure_path

    from . import model as model_mod
    from .model import ElectricPretrainer

    m, vocab = cfg.model, cfg.data.vocab_size
    describe = (f"{m.layers} layers x {m.hidden}, towers x{m.tower_size} of "
                f"{max(1, round(m.layers * m.tower_layers))} layers, vocab {vocab}, "
                f"batch {cfg.train.batch_size} x {cfg.data.seq_len}, bf16 autocast")
    return measure_path(lambda mc: ElectricPretrainer(mc, vocab, 0, [0, 1, 2, 3, 4]), cfg, steps, side, model_mod,
                        describe)


def bench(quick: bool = False) -> dict:
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    from discern.data.tokenizer import train_wordpiece

    from .config import quick as quick_preset
    from .model import hf_config
    from .pll import ElectricScorer
    from .scoring import MaskedLMScorer

    torch.manual_seed(0)
    cfg = quick_preset()
    n = 48 if quick else 256
    sentences = _sentences(n)
    tok = train_wordpiece(_sentences(4000), cfg.data.vocab_size)
    hc = hf_config(cfg.model, len(tok), tok.pad_token_id)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    energy = ElectraForPreTraining(hc).eval().to(dev)
    mlm = ElectraForMaskedLM(hc).eval().to(dev)
    bf16 = cfg.rerank.bf16
    bs = cfg.rerank.batch_size if dev.type == "cpu" else 512
    electric = ElectricScorer(energy, tok, batch_size=bs, bf16=bf16)
    fast = MaskedLMScorer(mlm, tok, batch_size=bs, device=dev, bf16=bf16, fast=True)
    generic = MaskedLMScorer(mlm, tok, batch_size=bs, device=dev, bf16=bf16, fast=False)
    repeat = 1 if quick else 3
    t_e = _time(lambda: electric.score(sentences), repeat)
    t_m = _time(lambda: fast.score(sentences), repeat)
    t_g = _time(lambda: generic.score(sentences), repeat)
    tokens = sum(fast.passes(s) for s in sentences)
    from discern.train.bench import allocator_bench, cpu_name, rounded

    # each training path alone in child processes of its own: ours under mimalloc, the previous under
    # glibc's malloc (discern.train.bench.allocator_bench)
    pres = allocator_bench("discern.electric.bench:step_times", quick)
    pre, pre_goal = pres["quick"], pres["4x128_v8192"]
    return {
        "bench": "electric",
        "ratios": {
            "electric_vs_mlm_pll_sentences_per_s": t_m / t_e,
            "electric_vs_generic_mlm_pll_sentences_per_s": t_g / t_e,
            "pretrain_examples_per_s_vs_before": pre["ratio"],
            "pretrain_mfu": pre["mfu"],
            # the MFU if nothing but the step's matrix products took time, as they run in the step
            "pretrain_mfu_bound_matmuls_in_step": pre["mfu_matmuls_in_step"],
            "pretrain_examples_per_s_vs_before_4x128_v8192": pre_goal["ratio"],
            "pretrain_mfu_4x128_v8192": pre_goal["mfu"],
            "pretrain_examples_per_s_vs_before_same_malloc": pre["ratio_same_allocator"],
            "pretrain_examples_per_s_vs_before_same_malloc_4x128_v8192": pre_goal["ratio_same_allocator"],
        },
        "goals": {"electric_vs_mlm_pll_sentences_per_s": ">= 10", "pretrain_examples_per_s_vs_before": ">= 3",
                  "pretrain_mfu": ">= 0.25", "pretrain_examples_per_s_vs_before_4x128_v8192": ">= 3",
                  "pretrain_mfu_4x128_v8192": ">= 0.25"},
        "details": {
            "cpu": cpu_name(),
            "pretrain": rounded(pre),
            "pretrain_4x128_v8192": rounded(pre_goal),
            "sentences": len(sentences),
            "mean_tokens_per_sentence": tokens / len(sentences),
            "electric_sentences_per_s": len(sentences) / t_e,
            "mlm_pll_sentences_per_s": len(sentences) / t_m,
            "generic_mlm_pll_sentences_per_s": len(sentences) / t_g,
            "model": f"{cfg.model.layers} layers, hidden {cfg.model.hidden}, vocab {len(tok)}, "
                     f"{'bf16' if bf16 else 'fp32'}, batch {bs}",
            "device": torch.cuda.get_device_name() if dev.type == "cuda" else f"cpu, {torch.get_num_threads()} threads",
        },
    }
