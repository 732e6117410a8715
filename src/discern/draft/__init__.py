"""DRaFT (Clark, Vicol, Swersky & Fleet, ICLR 2024): fine-tuning diffusion models by
back-propagating differentiable rewards through the sampler, with LoRA; ReFL and DDPO baselines."""

from discern.core.paper import Paper

PAPER = Paper("draft", title="Directly Fine-Tuning Diffusion Models on Differentiable Rewards (Clark et al., ICLR 2024)",
              package=__name__, number=8, data=("fashion-mnist",))

__all__ = ["PAPER", "config", "ddpo", "lora", "methods", "rewards", "samples", "train"]
