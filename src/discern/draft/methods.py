"""DRaFT, DRaFT-K, DRaFT-LV (Clark et al. 2024) and the baseline ReFL (Xu et al. 2023), as loss
functions on one batch of prompts.  Each returns ``(loss, rewards, images_generated)``; the caller
steps the optimiser on the LoRA parameters.  The RL baseline DDPO is in :mod:`.ddpo`.

- **DRaFT** (section 3, eq. 2): maximise r(sample(theta, c, x_T), c) by back-propagating through
  every DDIM step (gradient checkpointing on each UNet call).
- **DRaFT-K** (section 3.1): stop_grad(x_K); gradients through the last K steps only.
- **DRaFT-LV** (section 3.1, K = 1 with lower variance): x_0 from the whole chain without a graph;
  n re-noised copies x_1^i = sqrt(abar_1) x_0 + sqrt(1 - abar_1) eps_i at the sampler's last
  timestep; one differentiable step each; g = sum_i grad r(x_0^i).  Re-noising happens where the
  sampler works (latents for latent models: no VAE re-encode).
- **ReFL**: run the chain without a graph down to a random late step t, predict x_0 in one
  differentiable step, x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), reward x0_hat.
"""

from __future__ import annotations

import torch

from discern.diffusion.sampling import ddim_sample, ddim_step, ddim_timesteps, decode, guided_eps

from .config import SamplerConfig

def conditions(den, prompts, sc: SamplerConfig):
    """The prompt embeddings and, with guidance, the empty prompt's (no gradient to the text encoder)."""
    cond = den.encode_prompts(prompts).detach()
    uncond = den.encode_prompts([""] * len(prompts)).detach() if sc.guidance_scale != 1.0 else None
    return cond, uncond


def draft_loss(den, reward, prompts, x_T, sc: SamplerConfig, K: int | None = None, generator=None):
    """DRaFT (K = None: full back-propagation) or DRaFT-K."""
    cond, uncond = conditions(den, prompts, sc)
    x0 = ddim_sample(den, cond, x_T, sc.steps, sc.guidance_scale, uncond, sc.eta, grad_steps=K,
                     checkpoint=sc.checkpoint, generator=generator)
    r = reward(decode(den, x0), prompts)
    return -r.mean(), r.detach(), len(prompts)


def lv_loss(den, reward, prompts, x_T, sc: SamplerConfig, n: int = 2, generator=None):
    """DRaFT-LV: -(1/B) sum_i sum_b r(x_0^{i,b}) over n re-noised one-step samples."""
    cond, uncond = conditions(den, prompts, sc)
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
    cond, uncond = conditions(den, prompts, sc)
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

