"""Reward fine-tuning of a text-to-image pipeline's LoRA weights, with any of the five methods.

Every update draws ``batch_size`` prompts and initial noises (a function of the seed and the update
number, so a resumed run repeats them), computes the method's loss (:mod:`.methods`), clips the
gradient norm and steps AdamW on the LoRA parameters only.  Samples are counted as the number of
full sampler chains generated (DRaFT-LV's one-step re-noised copies are not chains).  Every
``eval_every`` updates the reward of a fixed evaluation set (fixed prompts and noises, eta = 0, no
gradient) is logged against the samples used so far: the curve of the paper's Figure 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from discern.core import Run, derive_seed, progress
from discern.core.checkpoint import load_checkpoint, save_checkpoint
from discern.core.errors import DiscernError

from .methods import SamplerConfig

METHODS = ("full", "k", "lv", "refl", "ddpo")


@dataclass
class DraftConfig:
    method: str = "lv"  # full | k | lv | refl | ddpo
    K: int = 1  # DRaFT-K: steps with gradient
    n_lv: int = 2  # DRaFT-LV: re-noised copies
    refl_last: int = 10  # ReFL: the random step is among the last this many
    updates: int = 2000
    batch_size: int = 4
    lr: float = 4e-4
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    rank: int = 8
    lora_alpha: float = 8.0
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    ddpo_clip: float = 1e-4  # PPO ratio clip
    ddpo_inner: int = 1  # optimisation passes over each rollout
    eval_every: int = 10
    eval_prompts: int = 8
    eval_seed: int = 0  # the evaluation set's noises (the same for every run that compares)
    checkpoint_every: int = 50
    seed: int = 0


def _batch(prompts: list[str], n: int, g: torch.Generator) -> list[str]:
    return [prompts[i] for i in torch.randint(0, len(prompts), (n,), generator=g).tolist()]


def eval_set(pipe, prompts: list[str], n: int, seed: int) -> tuple[list[str], torch.Tensor]:
    """The fixed evaluation prompts and initial noises: a function of (prompts, n, seed) only."""
    from discern.diffusion.sampling import initial_noise

    g = torch.Generator().manual_seed(derive_seed(seed, "draft-eval"))
    chosen = [prompts[i % len(prompts)] for i in range(n)]
    return chosen, initial_noise(pipe, n, g)


@torch.no_grad()
def eval_images(den, prompts: list[str], noise: torch.Tensor, sc: SamplerConfig) -> torch.Tensor:
    """Deterministic (eta = 0) samples of the evaluation set, decoded."""
    from discern.diffusion.sampling import ddim_sample, decode

    from .methods import _conds

    cond, uncond = _conds(den, prompts, sc)
    return decode(den, ddim_sample(den, cond, noise, sc.steps, sc.guidance_scale, uncond))


@torch.no_grad()
def evaluate(den, reward, prompts: list[str], noise: torch.Tensor, sc: SamplerConfig) -> float:
    return float(reward(eval_images(den, prompts, noise, sc), prompts).mean())


def train_draft(pipe, reward, prompts: list[str], cfg: DraftConfig, run: Run, resume: bool = False,
                desc: str | None = None) -> list[dict]:
    """Fine-tune ``pipe``'s LoRA adapter in place; returns the history (one row per evaluation:
    update, samples, eval_reward, train_reward); writes ``<run>/lora`` and ``<run>/history.json``."""
    from discern.core.checkpoint import atomic_write_json
    from discern.diffusion import Denoiser
    from discern.diffusion.sampling import initial_noise

    from . import methods as M
    from .lora import add_lora, save_lora

    if cfg.method not in METHODS:
        raise DiscernError(f"unknown method {cfg.method!r} (choose from {', '.join(METHODS)})")
    if not prompts:
        raise DiscernError("no prompts to train on")
    den = Denoiser(pipe)
    pipe.text_encoder.requires_grad_(False)
    params = add_lora(pipe.unet, cfg.rank, cfg.lora_alpha, seed=cfg.seed)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999))
    eval_prompts, eval_noise = eval_set(pipe, prompts, cfg.eval_prompts, cfg.eval_seed)
    start, samples, history = 0, 0, []
    ckpt = run.checkpoints / "draft.pt"
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt)
        for p, v in zip(params, state["lora"]):
            p.data.copy_(v)
        opt.load_state_dict(state["optimizer"])
        start, samples, history = state["update"], state["samples"], state["history"]
    if start == 0:
        history.append({"update": 0, "samples": 0, "eval_reward": evaluate(den, reward, eval_prompts, eval_noise,
                                                                           cfg.sampler), "train_reward": None})
    norms: list[float] = []
    bar = progress(range(start, cfg.updates), desc=desc or f"draft ({cfg.method})")
    for u in bar:
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "draft-update", u))
        batch = _batch(prompts, cfg.batch_size, g)
        x_T = initial_noise(pipe, cfg.batch_size, g)
        if cfg.method == "ddpo":
            roll = M.ddpo_rollout(den, reward, batch, x_T, cfg.sampler, g)
            adv = M.per_prompt_advantages(roll["rewards"], batch)
            for _ in range(cfg.ddpo_inner):
                loss = M.ddpo_loss(den, roll, adv, cfg.sampler, cfg.ddpo_clip)
                opt.zero_grad()
                loss.backward()
                norms.append(float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)))
                opt.step()
            r, n = roll["rewards"], len(batch)
        else:
            if cfg.method in ("full", "k"):
                loss, r, n = M.draft_loss(den, reward, batch, x_T, cfg.sampler, None if cfg.method == "full" else cfg.K,
                                          g)
            elif cfg.method == "lv":
                loss, r, n = M.lv_loss(den, reward, batch, x_T, cfg.sampler, cfg.n_lv, g)
            else:
                loss, r, n = M.refl_loss(den, reward, batch, x_T, cfg.sampler, cfg.refl_last, g)
            opt.zero_grad()
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)))
            opt.step()
        samples += n
        if (u + 1) % cfg.eval_every == 0 or u + 1 == cfg.updates:
            history.append({"update": u + 1, "samples": samples, "train_reward": float(r.mean()),
                            "grad_norm": float(sum(norms) / len(norms)) if norms else None,  # before clipping
                            "eval_reward": evaluate(den, reward, eval_prompts, eval_noise, cfg.sampler)})
            norms = []
            bar.set_postfix(reward=f"{history[-1]['eval_reward']:.3f}")
        if (u + 1) % cfg.checkpoint_every == 0 and run.main:
            save_checkpoint(ckpt, {"lora": [p.detach().clone() for p in params], "optimizer": opt.state_dict(),
                                   "update": u + 1, "samples": samples, "history": history})
    if run.main:
        save_lora(pipe.unet, run.path / "lora")
        atomic_write_json(run.path / "history.json", history)
    return history
