"""The shape of a small text-to-image model (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from discern.core.config import check_choices, check_ranges
from discern.core.errors import ConfigError

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


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


def check_model(m: ModelConfig, prefix: str = "model.") -> None:
    """A shape no UNet or text encoder can be built with is a one-line ConfigError naming the key
    (diffusers' own errors come late and name its arguments, not ours)."""
    check_ranges(m, {"image_size": "[4, 4096]", "channels": "[1, 4]", "block_out_channels": "[1, inf)",
                     "layers_per_block": "[1, inf)", "attention_head_dim": "[1, inf)",
                     "cross_attention_dim": "[1, inf)", "text_layers": "[1, inf)", "text_heads": "[1, inf)",
                     "text_intermediate": "[1, inf)", "max_length": "[3, 77]", "train_timesteps": "[2, 10000]"},
                 prefix)
    check_choices(m, {"beta_schedule": BETA_SCHEDULES}, prefix)
    levels = len(m.block_out_channels)
    if levels == 0:
        raise ConfigError(f"config key '{prefix}block_out_channels' must name at least one level")
    if m.image_size % 2 ** (levels - 1):
        times = "once" if levels == 2 else f"{levels - 1} times"
        raise ConfigError(f"config key '{prefix}image_size' must be divisible by {2 ** (levels - 1)} (the UNet "
                          f"halves it {times}), got {m.image_size}")
    groups = min(8, m.block_out_channels[0])  # the GroupNorm groups of build_pipeline
    attending = set(m.block_out_channels[1:]) | {m.block_out_channels[-1]}  # cross-attention levels, mid block
    for c in m.block_out_channels:
        if c % groups or (c in attending and c % m.attention_head_dim):
            raise ConfigError(f"config key '{prefix}block_out_channels' must be multiples of {groups} (GroupNorm "
                              f"groups) and of {prefix}attention_head_dim={m.attention_head_dim}, got "
                              f"{list(m.block_out_channels)}")
    if m.cross_attention_dim % m.text_heads:
        raise ConfigError(f"config key '{prefix}text_heads' must divide {prefix}cross_attention_dim="
                          f"{m.cross_attention_dim}, got {m.text_heads}")
