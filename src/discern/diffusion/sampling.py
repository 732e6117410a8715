"""DDIM sampling (Song et al. 2021), differentiable, with classifier-free guidance.

One step from timestep t to t' < t (Song et al. eq. 12), with eps_hat the guided prediction
(Ho & Salimans 2022: eps_u + w (eps_c - eps_u)):

    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
    sigma  = eta sqrt((1 - abar_t') / (1 - abar_t)) sqrt(1 - abar_t / abar_t')
    x_t'   = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - sigma^2) eps_hat + sigma z

written with plain tensor operations so gradients flow through every step (DRaFT back-propagates
a reward through the sampler).  ``grad_steps = K`` keeps gradients through the last K steps only
(the first T - K run without a graph: stop_grad(x_K), DRaFT-K); ``checkpoint`` recomputes each
UNet call in the backward pass instead of storing its activations.  Works on pixels, or on
latents decoded (differentiably) by the pipeline's VAE.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint as _checkpoint

from .denoise import Denoiser


def ddim_timesteps(num_train: int, steps: int) -> list[int]:
    """Evenly spaced timesteps k * (T // steps), k = steps - 1 .. 0 (high noise to low)."""
    stride = num_train // steps
    return [s * stride for s in range(steps)][::-1]


def guided_eps(den: Denoiser, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None,
               guidance_scale: float) -> torch.Tensor:
    """eps_u + w (eps_c - eps_u), both predictions in one batched UNet call; eps_c when w = 1."""
    if uncond is None or guidance_scale == 1.0:
        return den.predict_eps(x, t, cond)
    eps_u, eps_c = den.predict_eps(torch.cat([x, x]), torch.cat([t, t]), torch.cat([uncond, cond])).chunk(2)
    return eps_u + guidance_scale * (eps_c - eps_u)


@dataclass
class Step:
    x_prev: torch.Tensor  # the sample at t'
    mean: torch.Tensor  # its Gaussian mean (DDPO's policy mean)
    std: float  # sigma (0 for eta = 0)
    x0: torch.Tensor  # the predicted clean sample


def ddim_step(den: Denoiser, x: torch.Tensor, t: int, t_prev: int | None, eps: torch.Tensor, eta: float = 0.0,
              noise: torch.Tensor | None = None, clip: bool | None = None) -> Step:
    """One DDIM step t -> t_prev (None: to the clean sample, abar = 1)."""
    ab = den.alphas_cumprod.to(x.device)
    a_t = ab[t]
    a_prev = ab[t_prev] if t_prev is not None else torch.tensor(1.0, device=x.device)
    x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    if den.vae is None if clip is None else clip:  # pixels live in [-1, 1] (DDPM's clip_sample)
        x0 = x0.clamp(-1.0, 1.0)
    sigma = float(eta * ((1 - a_prev) / (1 - a_t)).sqrt() * (1 - a_t / a_prev).sqrt()) if eta > 0 else 0.0
    mean = a_prev.sqrt() * x0 + (1 - a_prev - sigma ** 2).clamp(min=0).sqrt() * eps
    x_prev = mean if sigma == 0.0 else mean + sigma * (noise if noise is not None else torch.randn_like(mean))
    return Step(x_prev, mean, sigma, x0)


def decode(den: Denoiser, x: torch.Tensor) -> torch.Tensor:
    """Latents -> pixels in [-1, 1] through the VAE (differentiable); pixels pass through."""
    if den.vae is None:
        return x
    vae_dtype = next(den.vae.parameters()).dtype
    with den.autocast():
        return den.vae.decode((x / den.vae.config.scaling_factor).to(vae_dtype)).sample.float()


def initial_noise(pipe, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    unet = pipe.unet
    size = unet.config.sample_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    return torch.randn((n, unet.config.in_channels, *size), generator=generator)


def ddim_sample(den: Denoiser, cond: torch.Tensor, x_T: torch.Tensor, steps: int = 50, guidance_scale: float = 1.0,
                uncond: torch.Tensor | None = None, eta: float = 0.0, grad_steps: int | None = None,
                checkpoint: bool = False, generator: torch.Generator | None = None,
                trajectory: list | None = None) -> torch.Tensor:
    """The final latent (or pixels) x_0 from x_T.  Gradients (when enabled) flow through the last
    ``grad_steps`` steps only (None: all); ``trajectory``, when a list, receives each
    :class:`Step` with its timesteps (for DDPO's log-probabilities)."""
    ts = ddim_timesteps(den.num_timesteps, steps)
    first_grad = 0 if grad_steps is None else max(len(ts) - grad_steps, 0)
    x = x_T.to(den.device)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else None
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        with_grad = torch.is_grad_enabled() and i >= first_grad
        if not with_grad:
            x = x.detach()
        with nullcontext() if with_grad else torch.no_grad():
            if checkpoint and with_grad:
                eps = _checkpoint(guided_eps, den, x, tt, cond, uncond, guidance_scale, use_reentrant=False)
            else:
                eps = guided_eps(den, x, tt, cond, uncond, guidance_scale)
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device) if eta > 0 else None
            step = ddim_step(den, x, t, t_prev, eps, eta, z)
        if trajectory is not None:
            trajectory.append((t, t_prev, x, step))
        x = step.x_prev
    return x


def sample(pipe, prompts: list[str], steps: int = 50, guidance_scale: float = 1.0,
           generator: torch.Generator | None = None, noise: torch.Tensor | None = None, eta: float = 0.0,
           grad_steps: int | None = None, checkpoint: bool = False) -> torch.Tensor:
    """Images in [-1, 1] (pixels, or decoded by the VAE), one per prompt."""
    den = Denoiser(pipe)
    cond = den.encode_prompts(prompts)
    uncond = den.encode_prompts([""] * len(prompts)) if guidance_scale != 1.0 else None
    x = noise if noise is not None else initial_noise(pipe, len(prompts), generator)
    x = ddim_sample(den, cond, x, steps, guidance_scale, uncond, eta, grad_steps, checkpoint, generator)
    return decode(den, x)
