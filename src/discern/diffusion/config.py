"""The shape of a small text-to-image model (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelConfig:
    image_size: int = 32  # divisible by 2^(levels - 1): the UNet halves the size per level (28 works for 3)
    channels: int = 1
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    cross_attention_dim: int = 64  # = the text encoder's width
    text_layers: int = 2
    text_heads: int = 2
    text_intermediate: int = 128
    max_length: int = 16  # caption tokens (CLIP pads to 77; short captions need fewer positions)
    train_timesteps: int = 1000
    beta_schedule: str = "linear"
