"""Small text-to-image diffusion models from ``diffusers`` parts, saved as pipeline folders.

``build_pipeline(ModelConfig())`` gives a pixel-space, text-conditional DDPM: a
``UNet2DConditionModel`` with cross-attention to a small ``CLIPTextModel`` (trained with the
UNet) over the real CLIP BPE vocabulary, and a ``DDPMScheduler`` (linear betas, T = 1000, epsilon
prediction).  It saves and loads with ``save_pretrained`` / :func:`load_pipeline` like any
``diffusers`` pipeline.  :func:`load_pipeline` also opens a user's Stable Diffusion folder; the
:class:`~discern.diffusion.denoise.Denoiser` then works in the VAE's latent space.

Calling the pipeline follows diffusers: ``pipe(prompt).images`` is a list of PIL images
(``output_type="np"``: an array (B, H, W, C) in [0, 1]; ``"pt"``: a tensor (B, C, H, W) in [0, 1];
``"latent"``: the raw samples in [-1, 1]).  The library's own code samples with
:func:`discern.diffusion.sampling.sample` (tensors in [-1, 1], differentiable).

diffusers looks a string ``_class_name`` of ``model_index.json`` up in the ``diffusers`` package
only (``_get_pipeline_class``), so ``DiffusionPipeline.from_pretrained(folder)`` alone cannot find a
class in ``discern.diffusion.models``; a class from elsewhere comes from a custom-pipeline file.
``save_pretrained`` therefore also writes ``pipeline.py`` (:data:`CUSTOM_PIPELINE`, one import of
this class), and ``DiffusionPipeline.from_pretrained(folder, custom_pipeline=folder,
trust_remote_code=True)`` loads the folder as a :class:`TextToImagePipeline` (the ``discern``
package must be installed); ``TextToImagePipeline.from_pretrained(folder)`` needs neither.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.image_processor import VaeImageProcessor
from diffusers.loaders import StableDiffusionLoraLoaderMixin

from discern.core import CheckpointError

from .config import ModelConfig


#: the custom-pipeline file written beside every saved pipeline: diffusers imports it (with
#: ``custom_pipeline=folder, trust_remote_code=True``) and finds the one pipeline class in it
CUSTOM_PIPELINE = """# A discern TextToImagePipeline (pixel-space text-to-image: CLIP text encoder, UNet, DDPM noise
# schedule, deterministic DDIM sampling). With the discern package installed, diffusers loads this folder with
#     DiffusionPipeline.from_pretrained(folder, custom_pipeline=folder, trust_remote_code=True)
from discern.diffusion.models import TextToImagePipeline

__all__ = ["TextToImagePipeline"]
"""


class TextToImagePipeline(DiffusionPipeline, StableDiffusionLoraLoaderMixin):
    """Pixel-space text-to-image pipeline: text encoder, UNet, scheduler (no VAE); loads LoRA
    weights with ``load_lora_weights`` and scales or mixes them with ``set_adapters``."""

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(self, unet, text_encoder, tokenizer, scheduler):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
        self.image_processor = VaeImageProcessor(do_resize=False)  # [-1, 1] -> [0, 1] -> np / PIL

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], num_inference_steps: int = 50, guidance_scale: float = 1.0,
                 generator: torch.Generator | None = None, output_type: str = "pil",
                 return_dict: bool = True) -> ImagePipelineOutput | tuple:
        """One image per prompt by deterministic DDIM over this scheduler's noise schedule
        (:func:`discern.diffusion.sampling.sample`); ``guidance_scale`` > 1 uses classifier-free guidance
        (empty prompt).  Returns ``ImagePipelineOutput(images=...)`` (``return_dict=False``: a 1-tuple):
        PIL images (``output_type="pil"``), an array (B, H, W, C) in [0, 1] (``"np"``), a tensor
        (B, C, H, W) in [0, 1] (``"pt"``) or the raw samples (B, C, H, W) in [-1, 1] (``"latent"``)."""
        from .sampling import sample

        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        x = sample(self, prompts, num_inference_steps, guidance_scale=guidance_scale, generator=generator)
        images = self.image_processor.postprocess(x, output_type=output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """``DiffusionPipeline.save_pretrained``, plus ``pipeline.py`` (:data:`CUSTOM_PIPELINE`) so that
        ``DiffusionPipeline.from_pretrained(folder, custom_pipeline=folder, trust_remote_code=True)``
        finds this class."""
        super().save_pretrained(save_directory, *args, **kwargs)
        (Path(save_directory) / "pipeline.py").write_text(CUSTOM_PIPELINE, encoding="utf-8")


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


def place(pipe, device=None, dtype=None):
    """Move ``pipe``'s networks (UNet, text encoder, VAE when present) to ``device`` and cast them to
    ``dtype`` (None leaves either as it is); returns ``pipe``.  :class:`~discern.diffusion.Denoiser` casts
    the networks' inputs to their dtype and returns float32, so sampling and scoring work in any dtype."""
    for name in ("unet", "text_encoder", "vae"):
        m = getattr(pipe, name, None)
        if m is None:
            continue
        if device is not None:
            m.to(device)
        if dtype is not None and next(m.parameters()).dtype != dtype:
            if getattr(m, "_keep_in_fp32_modules", None):
                m.to(dtype=dtype)  # diffusers warns about the modules it would keep in float32
            else:  # nothing to keep in float32: skip diffusers' warning that says so
                torch.nn.Module.to(m, dtype=dtype)
    return pipe


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
