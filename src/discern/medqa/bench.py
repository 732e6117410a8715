"""``discern bench medqa``: ensemble-refinement questions per minute on one in-process backend,
measured three ways in one run on the same questions, model and token budget:

- ``one_call_per_sample``: every stage-1 and stage-2 sample is its own generate call (n = 1, seed
  + i): what a loop over a server that ignores ``n`` does (llama-cpp-python, for one);
- ``batched_recompute``: all samples of a prompt in one call with ``num_return_sequences`` (the
  prompt's forward pass is recomputed for every sample);
- ``batched_shared_prefix``: discern's default: the prompt is prefilled once and the samples share
  its keys and values (:mod:`discern.llm.cascade`).

Sampling stops at the answer line as in the strategies; each way draws its own samples, so the
token counts (reported) differ a little between ways.  The ratios are questions per minute of the
shared-prefix way over each of the other two; the per-way numbers are under ``details``.
"""

from __future__ import annotations

import time
from dataclasses import replace

from discern.llm.generation import GenParams


class OneCallPerSample:
    """Wraps a backend: ``n`` samples become ``n`` calls with n = 1 and seeds ``seed + i``."""

    def __init__(self, backend):
        self.backend, self.name, self.calls = backend, backend.name, 0

    def generate(self, prompts: list[str], n: int, params: GenParams) -> list[list[str]]:
        out = []
        for p in prompts:
            row = []
            for i in range(n):
                self.calls += 1
                row += self.backend.generate([p], 1, replace(params, seed=params.seed + i))[0]
            out.append(row)
        return out


def bench(quick: bool = False) -> dict:
    import torch

    from discern.llm import load_causal_lm
    from discern.llm.generation import TransformersBackend

    from .evaluate import load_dataset
    from .strategies import StrategyConfig, run_strategy

    n_q, max_tokens = (1, 24) if quick else (2, 64)
    model, tok = load_causal_lm("smollm2", dtype=torch.bfloat16)
    qs, ex, _ = load_dataset("mmlu:clinical_knowledge", n_q, 0)
    cfg = StrategyConfig(k1=11, k2=33, max_tokens=max_tokens, temperature=0.7)
    ways = {
        "one_call_per_sample": OneCallPerSample(TransformersBackend(model, tok, "smollm2")),
        "batched_recompute": TransformersBackend(model, tok, "smollm2", shared_prefix=False),
        "batched_shared_prefix": TransformersBackend(model, tok, "smollm2"),
    }
    run_strategy(ways["batched_shared_prefix"], "cot", qs[:1], ex, replace(cfg, max_tokens=4))  # warm-up
    res = {}
    for name, backend in ways.items():
        t0 = time.perf_counter()
        recs = run_strategy(backend, "ensemble_refinement", qs, ex, cfg)
        sec = time.perf_counter() - t0
        toks = sum(len(tok(g).input_ids) for r in recs for g in r["generations"] + r["stage1"]["generations"])
        res[name] = {"seconds": sec, "questions_per_minute": 60 * len(qs) / sec, "generated_tokens": toks,
                     "tokens_per_second": toks / sec}
    base = res["one_call_per_sample"]["questions_per_minute"]
    for r in res.values():
        r["speedup_vs_one_call_per_sample"] = r["questions_per_minute"] / base
    shared = res["batched_shared_prefix"]["questions_per_minute"]
    return {"bench": "medqa",
            "ratios": {"shared_prefix_vs_one_call_per_sample": shared / base,
                       "shared_prefix_vs_batched_recompute": shared / res["batched_recompute"]["questions_per_minute"]},
            "goals": {},
            "details": {"what": "ensemble refinement (11 + 33 samples) on SmolLM2-135M (bfloat16), "
                                f"{len(qs)} MMLU clinical-knowledge questions, {max_tokens} tokens max",
                        "threads": torch.get_num_threads(), "ways": res}}
