"""FWL reproduction configuration and presets.

``tiny`` (tests, seconds), ``quick`` (the real SmolLM2-135M fine-tuned for 50 steps on 2 CPU
cores), ``scratch`` (the paper's setting in miniature: a GPT-2-style LM trained from scratch with
the FWL in the paper's placement, section 3) and ``paper`` (SmolLM2, 1,000 steps, every test token).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from discern.core.config import check_ranges
from discern.core.errors import ConfigError


@dataclass
class ScratchModel:
    """The GPT-2-style LM trained from scratch (``model = "scratch"``), with the GPT-2 BPE."""
    layers: int = 4
    hidden: int = 256
    heads: int = 4


@dataclass
class Config:
    model: str = "smollm2"  # smollm2, scratch (a GPT-2-style LM trained from scratch), or a causal-LM folder
    residual: bool = True  # FWL added to the hidden state (pretrained LMs); False: the paper's placement
    attn_chunks: int = 4  # mixed-chunk attention inside the FWL
    scratch: ScratchModel = field(default_factory=ScratchModel)
    seq_len: int = 512  # training window and scored segment length
    train_fraction: float = 0.6  # of WikiText-2's articles
    dev_fraction: float = 0.05
    steps: int = 50
    batch_size: int = 1
    lr: float = 3e-5  # base-model parameters
    block_lr: float = 1e-3  # the new FWL block's weights (the control's block too)
    step_lr: float = 1e-2  # the FWL's learned step sizes (a short fine-tuning must move them from 0.01)
    warmup_fraction: float = 0.1
    eval_tokens: int = 8192  # test tokens scored per corpus (0 = all)
    dev_tokens: int = 2048
    dynamic_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)  # SGD, chosen on the dev text
    dynamic_steps: int = 1
    bf16: bool = False  # bf16 autocast while training (parameters stay float32)
    bootstrap: int = 10_000  # resamples of each bootstrap over scored segments
    seed: int = 0  # drives every random draw: model and block init, training windows, bootstrap

    def __post_init__(self) -> None:
        """A value no run can use is a one-line ConfigError before any work (preset, --config, --set)."""
        check_ranges(self, {
            "attn_chunks": "[1, inf)", "scratch.layers": "[1, inf)", "scratch.hidden": "[1, inf)",
            "scratch.heads": "[1, inf)", "seq_len": "[2, inf)", "train_fraction": "(0, 1)", "dev_fraction": "(0, 1)",
            "steps": "[1, inf)", "batch_size": "[1, inf)", "lr": "[0, inf)", "block_lr": "[0, inf)",
            "step_lr": "[0, inf)", "warmup_fraction": "[0, 1]", "eval_tokens": "[0, inf)", "dev_tokens": "[0, inf)",
            "dynamic_lrs": "(0, inf)", "dynamic_steps": "[1, inf)", "bootstrap": "[1, inf)"})
        if not self.dynamic_lrs:
            raise ConfigError("config key 'dynamic_lrs' must name at least one learning rate")
        if self.train_fraction + self.dev_fraction >= 1:
            raise ConfigError(f"config keys 'train_fraction' + 'dev_fraction' must be below 1 (the rest is the test "
                              f"text), got {self.train_fraction} + {self.dev_fraction}")
        if self.scratch.hidden % self.scratch.heads:
            raise ConfigError(f"config key 'scratch.heads' must divide scratch.hidden={self.scratch.hidden}, "
                              f"got {self.scratch.heads}")


def quick() -> Config:
    return Config()


def paper() -> Config:
    return Config(steps=1000, batch_size=4, eval_tokens=0, dev_tokens=8192)


def scratch() -> Config:
    """The paper's setting in miniature: a GPT-2-style LM trained from scratch with and without an FWL."""
    return Config(model="scratch", residual=False, steps=600, batch_size=8, seq_len=256, lr=1e-3, block_lr=1e-3,
                  dynamic_lrs=(1e-3, 3e-3, 1e-2))


def tiny() -> Config:
    return Config(model="scratch", residual=False, scratch=ScratchModel(1, 32, 2), steps=4,
                  batch_size=2, seq_len=32, lr=1e-3, block_lr=1e-3, eval_tokens=128, dev_tokens=64,
                  dynamic_lrs=(1e-3, 1e-2), attn_chunks=2, bootstrap=2000)


PRESETS = {"tiny": tiny, "quick": quick, "scratch": scratch, "paper": paper}
