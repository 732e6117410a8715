"""Benchmark: sentences/s of Electric's one-pass PLL vs masked-LM PLL (n passes) at equal size.

Both models have the quick preset's shape (4 layers, width 128) and the same tokenizer; the
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
    return {
        "bench": "electric",
        "ratios": {
            "electric_vs_mlm_pll_sentences_per_s": t_m / t_e,
            "electric_vs_generic_mlm_pll_sentences_per_s": t_g / t_e,
        },
        "goals": {"electric_vs_mlm_pll_sentences_per_s": ">= 10"},
        "details": {
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
