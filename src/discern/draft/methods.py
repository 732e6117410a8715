"""DRaFT, DRaFT-K, DRaFT-LV (Clark et al. 2024) and the baselines ReFL (Xu et al. 2023) and DDPO
(Black et al. 2024), as loss functions on one batch of prompts.  Each returns
``(loss, rewards, images_generated)``; the caller steps the optimiser on the LoRA parameters.

- **DRaFT** (section 3, eq. 2): maximise r(sample(theta, c, x_T), c) by back-propagating through
  every DDIM step (gradient checkpointing on each UNet call).
- **DRaFT-K** (section 3.1): stop_grad(x_K); gradients through the last K steps only.
- **DRaFT-LV** (section 3.1, K = 1 with lower variance): x_0 from the whole chain without a graph;
  n re-noised copies x_1^i = sqrt(abar_1) x_0 + sqrt(1 - abar_1) eps_i at the sampler's last
  timestep; one differentiable step each; g = sum_i grad r(x_0^i).  Re-noising happens where the
  sampler works (latents for latent models: no VAE re-encode).
- **ReFL**: run the chain without a graph down to a random late step t, predict x_0 in one
  differentiable step, x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), reward x0_hat.
- **DDPO** (PPO over the denoising MDP): DDIM with eta = 1 is a Gaussian policy
  N(mu_theta(x_t), sigma_t^2); rewards normalised per prompt, advantages clipped to +-5,
  loss mean(max(-A ratio, -A clip(ratio, 1 - eps, 1 + eps))).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from discern.diffusion.sampling import ddim_sample, ddim_step, ddim_timesteps, decode, guided_eps


@dataclass
class SamplerConfig:
    steps: int = 50
    guidance_scale: float = 7.5
    eta: float = 0.0
    checkpoint: bool = True


def _conds(den, prompts, sc: SamplerConfig):
    cond = den.encode_prompts(prompts).detach()
    uncond = den.encode_prompts([""] * len(prompts)).detach() if sc.guidance_scale != 1.0 else None
    return cond, uncond


def draft_loss(den, reward, prompts, x_T, sc: SamplerConfig, K: int | None = None, generator=None):
    """DRaFT (K = None: full back-propagation) or DRaFT-K."""
    cond, uncond = _conds(den, prompts, sc)
    x0 = ddim_sample(den, cond, x_T, sc.steps, sc.guidance_scale, uncond, sc.eta, grad_steps=K,
                     checkpoint=sc.checkpoint, generator=generator)
    r = reward(decode(den, x0), prompts)
    return -r.mean(), r.detach(), len(prompts)


def lv_loss(den, reward, prompts, x_T, sc: SamplerConfig, n: int = 2, generator=None):
    """DRaFT-LV: -(1/B) sum_i sum_b r(x_0^{i,b}) over n re-noised one-step samples."""
    cond, uncond = _conds(den, prompts, sc)
    with torch.no_grad():
        x0 = ddim_sample(den, cond, x_T, sc.steps, sc.guidance_scale, uncond, sc.eta, generator=generator)
    t1 = ddim_timesteps(den.num_timesteps, sc.steps)[-1]
    ab = den.alphas_cumprod.to(x0.device)[t1]
    tt = torch.full((x0.shape[0],), t1, device=x0.device, dtype=torch.long)
    total, rewards = 0.0, []
    for _ in range(n):
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        x1 = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        x0_i = ddim_step(den, x1, t1, None, guided_eps(den, x1, tt, cond, uncond, sc.guidance_scale)).x_prev
        r = reward(decode(den, x0_i), prompts)
        total = total + r.mean()
        rewards.append(r.detach())
    return -total, torch.stack(rewards).mean(0), len(prompts)


def refl_loss(den, reward, prompts, x_T, sc: SamplerConfig, last: int = 10, generator=None):
    """ReFL: a random step among the last ``last`` of the schedule, one-shot x_0 prediction."""
    cond, uncond = _conds(den, prompts, sc)
    ts = ddim_timesteps(den.num_timesteps, sc.steps)
    j = len(ts) - 1 - int(torch.randint(0, min(last, len(ts)), (1,), generator=generator))
    x = x_T.to(den.device)
    with torch.no_grad():
        for i in range(j):
            tt = torch.full((x.shape[0],), ts[i], device=x.device, dtype=torch.long)
            x = ddim_step(den, x, ts[i], ts[i + 1], guided_eps(den, x, tt, cond, uncond, sc.guidance_scale)).x_prev
    t = ts[j]
    tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
    x0_hat = ddim_step(den, x, t, None, guided_eps(den, x, tt, cond, uncond, sc.guidance_scale)).x0
    r = reward(decode(den, x0_hat), prompts)
    return -r.mean(), r.detach(), len(prompts)


def gaussian_log_prob(x_prev: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x_prev; mean, std^2 I), averaged over all but the batch dimension (as DDPO does)."""
    lp = -((x_prev - mean) ** 2) / (2 * std ** 2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return lp.flatten(1).mean(1)


@torch.no_grad()
def ddpo_rollout(den, reward, prompts, x_T, sc: SamplerConfig, generator=None) -> dict:
    """Sample with eta = 1 (a Gaussian policy) and keep every transition and its log-probability."""
    cond, uncond = _conds(den, prompts, sc)
    traj = []
    x0 = ddim_sample(den, cond, x_T, sc.steps, sc.guidance_scale, uncond, eta=1.0, generator=generator,
                     trajectory=traj)
    steps = [(t, tp, x, s.x_prev, gaussian_log_prob(s.x_prev, s.mean, s.std)) for t, tp, x, s in traj if s.std > 0]
    return {"prompts": list(prompts), "cond": cond, "uncond": uncond, "steps": steps,
            "rewards": reward(decode(den, x0), prompts).detach()}


def per_prompt_advantages(rewards: torch.Tensor, prompts: list[str], clip: float = 5.0) -> torch.Tensor:
    """(r - mean_p) / std_p over the samples of the same prompt (the whole batch for a prompt seen
    once), clipped to +-clip."""
    adv = torch.empty_like(rewards)
    for p in set(prompts):
        idx = torch.tensor([i for i, q in enumerate(prompts) if q == p])
        group = rewards[idx] if len(idx) > 1 else rewards
        adv[idx] = (rewards[idx] - group.mean()) / (group.std(unbiased=False) + 1e-6)
    return adv.clamp(-clip, clip)


def ddpo_loss(den, rollout: dict, advantages: torch.Tensor, sc: SamplerConfig, clip_range: float = 1e-4):
    """The clipped PPO objective summed over the rollout's denoising steps (mean over the batch)."""
    total = 0.0
    for t, t_prev, x, x_prev, old_lp in rollout["steps"]:
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = guided_eps(den, x, tt, rollout["cond"], rollout["uncond"], sc.guidance_scale)
        s = ddim_step(den, x, t, t_prev, eps, eta=1.0, noise=torch.zeros_like(x))
        ratio = torch.exp(gaussian_log_prob(x_prev, s.mean, s.std) - old_lp)
        unclipped = -advantages * ratio
        clipped = -advantages * ratio.clamp(1 - clip_range, 1 + clip_range)
        total = total + torch.maximum(unclipped, clipped).mean()
    return total / max(len(rollout["steps"]), 1)
