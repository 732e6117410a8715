"""Configuration of the diffusion-classifier package: the reproduction's ``Config`` and presets, the
attribute-binding experiment's ``BindingConfig`` and the classification ``Policy`` of the CLI.

``tiny`` runs in seconds for the tests, ``quick`` in about 20 minutes on 2 cores, ``paper`` is a
longer run for a GPU (32 x 32, 20,000 steps, 2,000 test images)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from discern.core.config import check_ranges
from discern.core.errors import ConfigError
from discern.diffusion.config import ModelConfig, check_model
from discern.train.text_to_image import TextToImageTrainConfig, TrainCommandConfig


@dataclass
class BindingConfig:
    """The binding experiment: both models trained on the same captioned scenes, tested on new ones."""
    model: ModelConfig = field(default_factory=lambda: ModelConfig(
        image_size=16, channels=3, block_out_channels=(16, 32), cross_attention_dim=64, max_length=16))
    train: TextToImageTrainConfig = field(default_factory=lambda: TextToImageTrainConfig(
        steps=900, batch_size=64, lr=3e-3, warmup_steps=30))
    train_scenes: int = 6000
    test_scenes: int = 100
    samples: int = 48  # shared (t, eps) pairs per test scene for the diffusion model
    contrastive_steps: int = 300
    contrastive_batch: int = 64
    alpha: float = 0.05  # "binds" = preference accuracy above 50% by a one-sided binomial test at this level
    seed: int = 0


@dataclass
class Policy:
    """How ``discern diffusion-classifier classify`` scores an image."""
    kind: str = "pruned"  # full | pruned | li
    samples: int = 64  # (t, eps) pairs per image (full, pruned: the maximum)
    weighting: str = "uniform"  # uniform | elbo | fitted
    loss: str = "mse"
    round_size: int = 8  # pruned
    alpha: float = 0.01  # pruned: one-sided paired t-test level
    min_samples: int = 8  # pruned
    li_samples: list[int] = field(default_factory=lambda: [8, 64])  # li: n_samples per stage
    li_keep: list[int] = field(default_factory=lambda: [3, 1])  # li: to_keep per stage
    batch_size: int = 64
    seed: int = 0


@dataclass
class Config:
    # the model and training recipe of ``discern diffusion train --preset quick``, 600 steps instead of 700
    # to leave room for the binding experiment in 20 minutes
    model: ModelConfig = field(default_factory=lambda: TrainCommandConfig().model)
    train: TextToImageTrainConfig = field(default_factory=lambda: replace(TrainCommandConfig().train, steps=600))
    train_images: int = 60000
    val_images: int = 10  # from the training split's tail (not trained on), for the fitted weighting
    test_images: int = 40
    samples: int = 128  # (t, eps) pairs per image for the full matrix (and pruning's maximum)
    round_size: int = 4  # pruning: samples per round
    alpha: float = 0.01  # pruning: one-sided paired t-test level
    min_samples: int = 8  # pruning: samples before the first test
    li_samples: list[int] = field(default_factory=lambda: [16, 128])
    li_keep: list[int] = field(default_factory=lambda: [3, 1])
    weight_bins: int = 8
    cnn_epochs: int = 1
    batch_size: int = 320  # UNet batch when scoring
    sample_grid: bool = True  # a figure of generated samples per class
    binding: BindingConfig = field(default_factory=BindingConfig)
    level: float = 0.95  # confidence level of every claim's interval; tests at alpha = 1 - level
    min_cut: float = 5.0  # pruning claim: at least this many times fewer UNet evaluations ...
    max_drop: float = 1.0  # ... with the accuracy drop's upper confidence bound at most this many points
    seed: int = 0

    def __post_init__(self) -> None:
        """A value no run can use is a one-line ConfigError before any work (preset, --config, --set)."""
        check_model(self.model)
        self.train.check()
        check_model(self.binding.model, "binding.model.")
        self.binding.train.check("binding.train.")
        check_ranges(self, {
            "train_images": "[1, inf)", "val_images": "[1, inf)", "test_images": "[1, inf)", "samples": "[1, inf)",
            "round_size": f"[1, {self.samples}]", "alpha": "(0, 1)", "min_samples": f"[1, {self.samples}]",
            "li_samples": f"[1, {self.samples}]", "li_keep": "[1, inf)", "weight_bins": "[1, inf)",
            "cnn_epochs": "[1, inf)", "batch_size": "[1, inf)", "level": "(0, 1)", "min_cut": "(0, inf)",
            "max_drop": "[0, 100]", "binding.train_scenes": "[1, inf)", "binding.test_scenes": "[1, inf)",
            "binding.samples": "[1, inf)", "binding.contrastive_steps": "[1, inf)",
            "binding.contrastive_batch": "[1, inf)", "binding.alpha": "(0, 1)"})
        if not self.li_samples or len(self.li_samples) != len(self.li_keep):
            raise ConfigError(f"config keys 'li_samples' and 'li_keep' must be lists of one length (a stage each), "
                              f"got {len(self.li_samples)} and {len(self.li_keep)}")


def quick() -> Config:
    return Config()


def paper() -> Config:
    return Config(model=ModelConfig(image_size=32, block_out_channels=(32, 64, 64)),
                  train=TextToImageTrainConfig(steps=20000, batch_size=128, lr=1e-3),
                  val_images=500, test_images=2000, samples=256, li_samples=[32, 256], li_keep=[3, 1],
                  binding=BindingConfig(model=ModelConfig(image_size=32, channels=3, block_out_channels=(32, 64, 64)),
                                        train=TextToImageTrainConfig(steps=5000, batch_size=128, lr=1e-3),
                                        train_scenes=20000, test_scenes=1000, samples=128, contrastive_steps=2000))


def tiny() -> Config:
    return Config(model=ModelConfig(image_size=32, block_out_channels=(8, 16), cross_attention_dim=16,
                                    text_intermediate=32, attention_head_dim=4, max_length=8, text_layers=1),
                  train=TextToImageTrainConfig(steps=3, batch_size=8, lr=1e-3, warmup_steps=0),
                  train_images=256, val_images=6, test_images=6, samples=8, round_size=4, min_samples=4,
                  li_samples=[2, 8], li_keep=[2, 1], weight_bins=2, cnn_epochs=1, sample_grid=False,
                  binding=BindingConfig(model=ModelConfig(image_size=16, channels=3, block_out_channels=(8, 16),
                                                          cross_attention_dim=16, text_intermediate=32,
                                                          attention_head_dim=4, text_layers=1),
                                        train=TextToImageTrainConfig(steps=3, batch_size=8, lr=1e-3, warmup_steps=0),
                                        train_scenes=32, test_scenes=6, samples=4, contrastive_steps=3,
                                        contrastive_batch=8))


PRESETS = {"tiny": tiny, "quick": quick, "paper": paper}
