"""DRaFT (Clark, Vicol, Swersky & Fleet, ICLR 2024): fine-tuning diffusion models by
back-propagating differentiable rewards through the sampler, with LoRA; ReFL and DDPO baselines."""

__all__ = ["lora", "methods", "rewards"]
