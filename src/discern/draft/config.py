"""Presets of ``discern draft train``: the paper's Stable Diffusion 1.4 settings, and small ones."""

from __future__ import annotations

from dataclasses import dataclass, field

from .methods import SamplerConfig
from .train import DraftConfig


@dataclass
class Config:
    draft: DraftConfig = field(default_factory=DraftConfig)
    reward: str = "contrast"  # contrast | brightness | compressibility | classifier:<class> | aesthetic | preference
    prompts: list[str] = field(default_factory=lambda: ["a photo of a bag", "a photo of a sneaker",
                                                        "a photo of a dress", "a photo of a coat"])


def paper() -> Config:
    """Clark et al. 2024 on SD 1.4 (small-scale runs): 50 DDIM steps, guidance 7.5, LoRA rank 8,
    AdamW lr 4e-4, weight decay 0.1, batch 4, 2k updates, n = 2 for DRaFT-LV."""
    return Config(draft=DraftConfig(updates=2000, batch_size=4, lr=4e-4, weight_decay=0.1, rank=8, lora_alpha=8.0,
                                    sampler=SamplerConfig(steps=50, guidance_scale=7.5), n_lv=2))


def quick() -> Config:
    return Config(draft=DraftConfig(updates=200, batch_size=4, lr=4e-4, rank=4, lora_alpha=4.0,
                                    sampler=SamplerConfig(steps=10, guidance_scale=2.0), eval_every=20))


def tiny() -> Config:
    return Config(draft=DraftConfig(updates=2, batch_size=2, rank=2, lora_alpha=2.0, eval_every=1, eval_prompts=2,
                                    sampler=SamplerConfig(steps=2, guidance_scale=2.0), checkpoint_every=1))


PRESETS = {"tiny": tiny, "quick": quick, "paper": paper}
