"""``discern bench draft``: time and memory per DRaFT update for K = 1 and K = T (full
back-propagation), with and without gradient checkpointing, on one model in one run.

Memory is the bytes of tensors autograd keeps for the backward pass (counted with
``saved_tensors_hooks``; with checkpointing only each UNet call's inputs are kept), plus the CUDA
peak when a GPU is used.  Ratios are against K = 1 without checkpointing, measured in the same run.
"""

from __future__ import annotations

import time

import torch


def _saved_bytes(fn):
    total = 0

    def pack(t):
        nonlocal total
        if isinstance(t, torch.Tensor):
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total


def bench(quick: bool = False) -> dict:
    from discern.core import dist
    from discern.diffusion import Denoiser, ModelConfig, build_pipeline
    from discern.diffusion.sampling import initial_noise

    from .config import SamplerConfig
    from .lora import add_lora
    from .methods import draft_loss
    from .rewards import ImageStatReward

    steps = 5 if quick else 20
    cfg = ModelConfig(image_size=16, block_out_channels=(16, 32))
    pipe = build_pipeline(cfg, seed=0).to(dist.device())
    params = add_lora(pipe.unet, rank=4)
    pipe.text_encoder.requires_grad_(False)
    den = Denoiser(pipe)
    reward = ImageStatReward("contrast")
    prompts = ["a photo of a bag"] * 4
    x_T = initial_noise(pipe, 4, torch.Generator().manual_seed(0))
    cases = {"K=1": (1, False), "K=1 checkpointed": (1, True), "K=T": (None, False), "K=T checkpointed": (None, True)}
    reps = 2 if quick else 4
    rows = {}
    for name, (K, ck) in cases.items():
        sc = SamplerConfig(steps=steps, guidance_scale=2.0, checkpoint=ck)
        times = []
        for r in range(reps + 1):
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            (loss, _, _), saved = _saved_bytes(lambda: draft_loss(den, reward, prompts, x_T, sc, K))
            loss.backward()
            for p in params:
                p.grad = None
            if r:  # the first repetition warms up
                times.append(time.perf_counter() - t0)
        rows[name] = {"seconds_per_update": sorted(times)[len(times) // 2], "saved_bytes": saved,
                      "cuda_peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None}
    base = rows["K=1"]
    ratios = {f"{k} time / K=1": v["seconds_per_update"] / base["seconds_per_update"] for k, v in rows.items()
              if k != "K=1"}
    ratios.update({f"{k} memory / K=1": v["saved_bytes"] / base["saved_bytes"] for k, v in rows.items() if k != "K=1"})
    return {"bench": "draft", "ratios": ratios,
            "details": {"sampler_steps": steps, "batch": 4, "device": str(dist.device()),
                        **{f"{k} s/update": round(v["seconds_per_update"], 4) for k, v in rows.items()},
                        **{f"{k} saved MB": round(v["saved_bytes"] / 2 ** 20, 2) for k, v in rows.items()}},
            "goals": {"K=T checkpointed memory / K=1": "far below K=T's (checkpointing keeps one input per call)"}}
