"""Benchmark: sentences/s of Electric's one-pass PLL vs masked-LM PLL (n passes) at equal size.

Both models have the quick preset's shape (2 layers, width 128) and the same tokenizer; the
sentences are real Brown sentences of ASR-hypothesis length.  The masked LM runs our own
PLL scorer (packed masked copies, vocabulary projection only at the masked position) and,
as a second baseline, the generic path that projects every position (what a plain
``AutoModelForMaskedLM`` loop does).  Same process, same inputs, same dtype.
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


def pretrain_throughput(quick: bool = False, cfg=None) -> dict:
    """Examples/s of the quick preset's (or ``cfg``'s) Electric training step now vs the previous path (dropout
    0.1, SDPA attention, Gumbel-max noise samples over the vocabulary, accuracy by argmax,
    cross-entropy on an fp32 copy of the logits, a per-parameter Adam loop; the noise head's
    bias is added inside its matmul on both sides), same process, identical batches,
    alternating steps; MFU from torch's flop counter and a bf16 matmul peak."""
    import dataclasses

    from discern.nn import gumbel_sample, row_cross_entropy, top_hit
    from discern.train import ElectraAdam, param_groups
    from discern.train.bench import (LoopAdam, argmax_hit_before, compare, cross_entropy_before, gumbel_max_before,
                                     matmul_peak, step_flops, step_ratio)

    from . import model as model_mod
    from .config import quick as quick_preset
    from .model import ElectricPretrainer

    cfg = cfg or quick_preset()
    vocab, B, L, tc = cfg.data.vocab_size, cfg.train.batch_size, cfg.data.seq_len, cfg.train
    steps = 3 if quick else 10
    torch.manual_seed(0)
    ours = ElectricPretrainer(cfg.model, vocab, 0, [0, 1, 2, 3, 4])
    torch.manual_seed(0)
    previous = dataclasses.replace(cfg.model, dropout=0.1, attention_dropout=0.1, attention="sdpa",
                                   bf16_stream=False)
    before = ElectricPretrainer(previous, vocab, 0, [0, 1, 2, 3, 4])
    opt_ours = ElectraAdam(param_groups(ours, tc.weight_decay), lr=tc.lr, bias_correction=True)
    opt_before = LoopAdam(param_groups(before, tc.weight_decay), lr=tc.lr, bias_correction=True)
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(steps + 1):
        ids = torch.randint(5, vocab, (B, L), generator=g)
        ids[:, 0], ids[:, -1] = 2, 3
        batches.append({"input_ids": ids, "attention_mask": torch.ones(B, L, dtype=torch.long),
                        "token_type_ids": torch.zeros(B, L, dtype=torch.long)})

    def patch(now: bool) -> None:
        model_mod.gumbel_sample = gumbel_sample if now else gumbel_max_before
        model_mod.top_hit = top_hit if now else argmax_hit_before
        model_mod.row_cross_entropy = row_cross_entropy if now else cross_entropy_before

    peak_start = matmul_peak(torch.bfloat16)
    try:
        steps_ours, steps_before = compare((ours, opt_ours), (before, opt_before), batches, patch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            flops = step_flops(ours, batches[0])
    finally:
        patch(True)
    peak = max(peak_start, matmul_peak(torch.bfloat16))  # the machine's speed drifts: keep the higher
    t_ours, t_before = sum(steps_ours), sum(steps_before)
    ratio = step_ratio(steps_ours, steps_before)
    return {"examples_per_s_ours": B * steps / t_ours, "examples_per_s_before": B * steps / t_before,
            "ratio": ratio["ratio"], "ratio_ci_95": [round(x, 3) for x in ratio["ci"]],
            "ratio_ci_test": ratio["test"],
            "mfu": flops * steps / t_ours / peak,
            "mfu_before": flops * steps / t_before / peak, "gflop_per_step": flops / 1e9,
            "matmul_peak_gflops_bf16": peak / 1e9,
            "config": f"{cfg.model.layers} layers x {cfg.model.hidden}, towers x{cfg.model.tower_size} of "
                      f"{max(1, round(cfg.model.layers * cfg.model.tower_layers))} layers, vocab {vocab}, "
                      f"batch {B} x {L}, bf16 autocast"}


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
    from discern.train.bench import cpu_name

    pre = pretrain_throughput(quick)
    pre_goal = pretrain_throughput(quick, goal_shape())
    return {
        "bench": "electric",
        "ratios": {
            "electric_vs_mlm_pll_sentences_per_s": t_m / t_e,
            "electric_vs_generic_mlm_pll_sentences_per_s": t_g / t_e,
            "pretrain_examples_per_s_vs_before": pre["ratio"],
            "pretrain_mfu": pre["mfu"],
            "pretrain_examples_per_s_vs_before_4x128_v8192": pre_goal["ratio"],
            "pretrain_mfu_4x128_v8192": pre_goal["mfu"],
        },
        "goals": {"electric_vs_mlm_pll_sentences_per_s": ">= 10", "pretrain_examples_per_s_vs_before": ">= 3",
                  "pretrain_mfu": ">= 0.25", "pretrain_examples_per_s_vs_before_4x128_v8192": ">= 3",
                  "pretrain_mfu_4x128_v8192": ">= 0.25"},
        "details": {
            "cpu": cpu_name(),
            "pretrain": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in pre.items()},
            "pretrain_4x128_v8192": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in pre_goal.items()},
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
