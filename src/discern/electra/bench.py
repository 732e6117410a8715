"""Pre-training throughput: ours vs the Hugging Face composition most PyTorch users run.

Baseline: ``ElectraForMaskedLM`` (generator logits and cross-entropy at *every* position,
labels -100 off the masked ones) + ``ElectraForPreTraining`` (BCE over attended tokens), with
the same shared embeddings, the same masking and sampling, the same optimiser and dtype.
Ours: :class:`ElectraPretrainer`, which projects to the vocabulary only at the masked slots.
Both run in this process on identical batches; the ratio is of examples per second.
MFU = analytic model FLOPs per second (ours: logits at masked slots; embedding lookups free)
/ a bf16 (or fp32) 2,048^3 matmul peak measured in this run; both sides use ours as the model
FLOPs, so the baseline's extra vocabulary work shows up as a lower MFU.
"""

from __future__ import annotations

import time

import torch

from discern.nn import gumbel_sample
from discern.train import ElectraAdam, param_groups

from .config import quick as quick_preset
from .model import ElectraPretrainer
from .pretrain import flops_per_step


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of an ``n^3`` matmul in ``dtype`` (best of ``repeats``)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def _hf_step(model: ElectraPretrainer, batch: dict) -> torch.Tensor:
    """The usual composition: full-vocabulary generator logits, HF losses."""
    ids, attn, seg = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    m = model._mask(ids, attn, model.vocab_size)
    labels = torch.full_like(ids, -100)
    labels[m.is_masked] = ids[m.is_masked]
    g = model.generator(m.input_ids, attention_mask=attn, token_type_ids=seg, labels=labels)
    logits = g.logits  # (B, L, V): every position
    sampled = gumbel_sample(logits[m.is_masked])
    fake = ids.clone()
    fake[m.is_masked] = sampled
    d = model.discriminator(fake, attention_mask=attn, token_type_ids=seg, labels=(fake != ids).long())
    return g.loss + model.cfg.disc_weight * d.loss


def _time(step, model, batches, opt, bf16: bool) -> float:
    t0 = time.perf_counter()
    for b in batches:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = step(model, b)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def bench(quick: bool = False) -> dict:
    """Examples/s of ours vs the HF composition (ELECTRA-quick dims, BERT's 30,522 vocabulary).

    ``quick``: three timed steps in bf16 only (about a minute on 2 cores)."""
    torch.manual_seed(0)
    cfg = quick_preset()
    vocab, B, L = 30522, 32, 128
    steps = 3 if quick else 8
    model = ElectraPretrainer(cfg.model, vocab, 0, [0, 100, 101, 102, 103], 103)
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(steps + 1):
        ids = torch.randint(999, vocab, (B, L), generator=g)
        ids[:, 0], ids[:, -1] = 101, 102
        batches.append({"input_ids": ids, "attention_mask": torch.ones(B, L, dtype=torch.long),
                        "token_type_ids": torch.zeros(B, L, dtype=torch.long)})
    opt = ElectraAdam(param_groups(model, 0.01), lr=1e-4)

    def ours(m, b):
        return m(b)[0]

    details: dict = {"batch": B, "seq_len": L, "vocab": vocab, "steps_timed": steps}
    ratios = {}
    for bf16 in (True, False):
        tag = "bf16" if bf16 else "fp32"
        _time(ours, model, batches[:1], opt, bf16)  # warm-up
        _time(_hf_step, model, batches[:1], opt, bf16)
        t_ours, t_hf = 0.0, 0.0
        for b in batches[1:]:  # interleave to share machine noise
            t_hf += _time(_hf_step, model, [b], opt, bf16)
            t_ours += _time(ours, model, [b], opt, bf16)
        ex_ours, ex_hf = B * steps / t_ours, B * steps / t_hf
        peak = matmul_peak(torch.bfloat16 if bf16 else torch.float32)
        fps = flops_per_step(_cfg_with_batch(cfg, B, L), vocab, dense_lookup=False)  # FLOPs really done
        ratios[f"throughput_ratio_{tag}"] = ex_ours / ex_hf
        details[f"examples_per_s_ours_{tag}"] = round(ex_ours, 2)
        details[f"examples_per_s_hf_{tag}"] = round(ex_hf, 2)
        details[f"matmul_peak_gflops_{tag}"] = round(peak / 1e9, 1)
        details[f"mfu_ours_{tag}"] = round(fps * steps / t_ours / peak, 4)
        details[f"mfu_hf_{tag}"] = round(fps * steps / t_hf / peak, 4)
        if quick:
            break
    return {"bench": "electra", "ratios": ratios,
            "goals": {k: ">= 1.5" for k in ratios}, "details": details}


def _cfg_with_batch(cfg, B: int, L: int):
    import copy

    c = copy.deepcopy(cfg)
    c.train.batch_size, c.data.seq_len = B, L
    return c

