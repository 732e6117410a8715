"""Small text-to-image diffusion models from ``diffusers`` parts, saved as pipeline folders.

``build_pipeline(ModelConfig())`` gives a pixel-space, text-conditional DDPM: a
``UNet2DConditionModel`` with cross-attention to a small ``CLIPTextModel`` (trained with the
UNet) over the real CLIP BPE vocabulary, and a ``DDPMScheduler`` (linear betas, T = 1000, epsilon
prediction).  It saves and loads with ``save_pretrained`` / :func:`load_pipeline` like any
``diffusers`` pipeline.  :func:`load_pipeline` also opens a user's Stable Diffusion folder; the
:class:`~discern.diffusion.denoise.Denoiser` then works in the VAE's latent space.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from diffusers.loaders import StableDiffusionLoraLoaderMixin

from discern.core import CheckpointError

from .config import ModelConfig


class TextToImagePipeline(DiffusionPipeline, StableDiffusionLoraLoaderMixin):
    """Pixel-space text-to-image pipeline: text encoder, UNet, scheduler (no VAE); loads LoRA
    weights with ``load_lora_weights`` and scales or mixes them with ``set_adapters``."""

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(self, unet, text_encoder, tokenizer, scheduler):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)

    @torch.no_grad()
    def __call__(self, prompts: list[str], num_inference_steps: int = 50, guidance_scale: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample images in [-1, 1], shape (len(prompts), C, H, W), with deterministic DDIM over this
        scheduler's noise schedule; ``guidance_scale`` > 1 uses classifier-free guidance (empty prompt)."""
        from .sampling import sample

        return sample(self, prompts, num_inference_steps, guidance_scale=guidance_scale, generator=generator)


def build_pipeline(cfg: ModelConfig | None = None, seed: int = 0):
    """A randomly initialised pixel-space text-to-image pipeline."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from .tokenizer import clip_tokenizer

    cfg = cfg or ModelConfig()
    torch.manual_seed(seed)
    n = len(cfg.block_out_channels)
    unet = UNet2DConditionModel(
        sample_size=cfg.image_size, in_channels=cfg.channels, out_channels=cfg.channels,
        block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=cfg.cross_attention_dim, attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=min(8, cfg.block_out_channels[0]))
    tok = clip_tokenizer(cfg.max_length)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=cfg.cross_attention_dim, intermediate_size=cfg.text_intermediate,
        num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.text_heads, max_position_embeddings=cfg.max_length,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    sched = DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                          prediction_type="epsilon", clip_sample=False)
    return TextToImagePipeline(unet=unet, text_encoder=text, tokenizer=tok, scheduler=sched)


def load_pipeline(path: str | Path):
    """Open a pipeline folder: one written here (``TextToImagePipeline``) or a Stable Diffusion folder."""
    path = Path(path)
    index = path / "model_index.json"
    if not index.is_file():
        raise CheckpointError(f"{path}: not a diffusers pipeline folder (no model_index.json)")
    name = json.loads(index.read_text()).get("_class_name")
    if name == "TextToImagePipeline":
        pipe = TextToImagePipeline.from_pretrained(str(path))
    else:
        kwargs = {"safety_checker": None, "requires_safety_checker": False} if "StableDiffusion" in str(name) else {}
        pipe = DiffusionPipeline.from_pretrained(str(path), **kwargs)
    for m in ("unet", "text_encoder", "vae"):
        if getattr(pipe, m, None) is not None:
            getattr(pipe, m).eval()
    return pipe
