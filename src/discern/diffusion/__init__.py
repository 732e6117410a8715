"""Small text-to-image diffusion models from ``diffusers`` parts; noising, denoising error, DDIM
sampling.  Shared by the diffusion classifier, the psychophysics evaluation and DRaFT.

Public names load lazily, so ``import discern.diffusion`` does not import ``diffusers``."""

from discern.core.lazy import lazy_names

_NAMES = {"ModelConfig": "config", "build_pipeline": "models", "load_pipeline": "models",
          "place": "models",
          "TextToImagePipeline": "models", "Denoiser": "denoise", "denoising_loss": "denoise",
          "elementwise_loss": "denoise", "sample": "sampling", "ddim_timesteps": "sampling",
          "ddim_sample": "sampling", "ddim_step": "sampling", "guided_eps": "sampling", "decode": "sampling",
          "initial_noise": "sampling",
          "clip_tokenizer": "tokenizer"}

__all__ = sorted(_NAMES)


__getattr__ = lazy_names(__name__, _NAMES)
