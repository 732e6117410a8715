"""Deterministic DDIM sampling (Song et al. 2021, eta = 0), differentiable when called with grad on.

x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t') eps_hat,  x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)

written with plain tensor operations so gradients flow through every step (DRaFT back-propagates
a reward through the sampler).  Works on pixels, or on latents decoded by the pipeline's VAE.
"""

from __future__ import annotations

import torch

from .denoise import Denoiser


def ddim_timesteps(num_train: int, steps: int) -> list[int]:
    """Evenly spaced timesteps k * (T // steps), k = steps - 1 .. 0 (high noise to low)."""
    stride = num_train // steps
    return [s * stride for s in range(steps)][::-1]


def sample(pipe, prompts: list[str], steps: int = 50, guidance_scale: float = 1.0,
           generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Images in [-1, 1] (pixels, or decoded by the VAE), one per prompt."""
    den = Denoiser(pipe)
    cond = den.encode_prompts(prompts)
    if guidance_scale != 1.0:
        uncond = den.encode_prompts([""] * len(prompts))
    unet = pipe.unet
    shape = (len(prompts), unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    x = noise if noise is not None else torch.randn(shape, generator=generator)
    x = x.to(den.device)
    ab = den.alphas_cumprod.to(den.device)
    ts = ddim_timesteps(den.num_timesteps, steps)
    for i, t in enumerate(ts):
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = den.predict_eps(x, tt, cond)
        if guidance_scale != 1.0:
            eps_u = den.predict_eps(x, tt, uncond)
            eps = eps_u + guidance_scale * (eps - eps_u)
        a_t = ab[t]
        a_prev = ab[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, device=x.device)
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        if den.vae is None:  # pixels live in [-1, 1] (DDPM's clip_sample); clamp keeps the gradient inside
            x0 = x0.clamp(-1.0, 1.0)
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    if den.vae is not None:
        x = den.vae.decode(x / den.vae.config.scaling_factor).sample
    return x
