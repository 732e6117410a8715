"""Noising and denoising error: the one primitive the diffusion classifier, the psychophysics
evaluation and training share.

For a clean input x0 (pixels in [-1, 1], or the VAE's latent for a Stable Diffusion folder),
timestep t and noise eps:

    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps        (DDPM forward process, abar = alphas_cumprod)
    error(x0, t, eps, c) = mean over C x H x W of loss(eps, eps_theta(x_t, t, c))

which is the per-timestep term of the "simple" epsilon loss (Ho et al. 2020), i.e. a weighted
ELBO term; the classifier of Clark & Jaini (2023) scores a label by a weighted sum of these errors.
``v_prediction`` models are converted to epsilon: eps = sqrt(abar) v + sqrt(1 - abar) x_t.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F


class Denoiser:
    """A uniform view of a text-to-image pipeline (ours or Stable Diffusion's) for scoring and training."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.unet = pipe.unet
        self.text_encoder = pipe.text_encoder
        self.tokenizer = pipe.tokenizer
        self.vae = getattr(pipe, "vae", None)
        self.prediction_type = pipe.scheduler.config.get("prediction_type", "epsilon")
        self.alphas_cumprod = pipe.scheduler.alphas_cumprod.to(torch.float32)
        self.num_timesteps = int(pipe.scheduler.config.num_train_timesteps)
        self.evaluations = 0  # UNet evaluations (one per image-prompt-timestep), for compute reports
        self.bf16 = False  # bf16 autocast around the networks' forward passes (DRaFT's --dtype bfloat16)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The UNet's parameter dtype: its inputs are cast to it, its outputs come back in float32."""
        return next(self.unet.parameters()).dtype

    def autocast(self):
        """bf16 autocast when ``self.bf16``; otherwise nothing (an enclosing autocast, the training loop's,
        stays in force: ``torch.autocast(enabled=False)`` would switch it off)."""
        if not self.bf16:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """images in [-1, 1], (B, C, H, W) -> x0: the pixels, or the VAE's mean latent x scaling factor."""
        images = images.to(self.device)
        if self.vae is None:
            return images
        vae_dtype = next(self.vae.parameters()).dtype
        with self.autocast():
            latent = self.vae.encode(images.to(vae_dtype)).latent_dist.mean
        return latent.float() * self.vae.config.scaling_factor

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """(P, L, D) text-encoder states, padded to the tokenizer's model_max_length."""
        tok = self.tokenizer(list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        with self.autocast():
            return self.text_encoder(tok["input_ids"].to(self.device))[0]

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self.alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        dtype = self.dtype
        with self.autocast():
            out = self.unet(x_t.to(dtype), t, encoder_hidden_states=cond.to(dtype)).sample.float()
        self.evaluations += x_t.shape[0]
        if self.prediction_type == "v_prediction":
            ab = self.alphas_cumprod.to(x_t.device)[t].view(-1, *([1] * (x_t.dim() - 1)))
            out = ab.sqrt() * out + (1 - ab).sqrt() * x_t
        elif self.prediction_type != "epsilon":
            raise ValueError(f"prediction_type {self.prediction_type!r} is not supported (epsilon, v_prediction)")
        return out

    def errors(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, cond: torch.Tensor,
               loss: str = "mse") -> torch.Tensor:
        """Per-row denoising error (N,) for x0, t, eps, cond of matching first dimension N."""
        pred = self.predict_eps(self.add_noise(x0, eps, t), t, cond)
        return elementwise_loss(pred, eps, loss).flatten(1).mean(1)


def elementwise_loss(pred: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return (pred - target) ** 2
    if loss == "l1":
        return (pred - target).abs()
    if loss == "huber":
        return F.huber_loss(pred, target, reduction="none")
    raise ValueError(f"unknown loss {loss!r} (mse, l1, huber)")


def denoising_loss(den: Denoiser, images: torch.Tensor, prompts: list[str],
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The simple epsilon loss (Ho et al. 2020) for training: t ~ U{0..T-1}, eps ~ N(0, I)."""
    x0 = den.encode_images(images)
    t = torch.randint(0, den.num_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    return den.errors(x0, t, eps, den.encode_prompts(prompts)).mean()
