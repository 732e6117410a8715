"""Configuration of the psychophysics reproduction and its presets.

``tiny`` runs in seconds for the tests, ``quick`` in about 11 minutes on 2 cores, ``paper`` is a
longer run for a GPU (32 x 32, 50,000 training images, 20 cue-conflict images per pair)."""

from __future__ import annotations

from dataclasses import dataclass, field

from discern.core.config import check_ranges
from discern.core.errors import ConfigError
from discern.diffusion.config import ModelConfig, check_model
from discern.train.text_to_image import TextToImageTrainConfig

# The generative classifier's prompt in Jaini, Clark & Geirhos (2024), Figure 2 and its decision rule:
# "A bad photo of a <class>".  (The CLIP tokenizer of our text encoder lower-cases it.)
PAPER_PROMPT = "A bad photo of a {}"


@dataclass
class Config:
    size: int = 24  # 24 x 24 keeps the quick preset in 20 minutes (32 x 32 trains 1.7x slower)
    train_images: int = 6000
    texture_match: float = 0.9  # P(training texture = the class's own texture)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(image_size=24, block_out_channels=(16, 32, 32)))
    train: TextToImageTrainConfig = field(default_factory=lambda: TextToImageTrainConfig(
        steps=600, batch_size=64, lr=2e-3, warmup_steps=50))
    template: str = PAPER_PROMPT  # the generative classifier's prompt, {} = the class name
    samples: int = 64  # generative classifier: maximum (t, eps) pairs per image (paired-test pruning)
    round_size: int = 4
    min_samples: int = 8
    alpha: float = 0.01  # generative classifier: the pruning test's level (not a claim test)
    cnn_epochs: int = 4
    noise_max_t: int = 600  # noise augmentation: x_t of the diffusion schedule with t ~ U[0, noise_max_t)
    cue_conflict_per_pair: int = 4  # images per (shape, texture) pair
    outline_per_class: int = 8  # silhouettes and edges per class
    parametric_per_class: int = 2  # base images per class in each distortion condition
    clean_per_class: int = 10  # undistorted test images per class (in-distribution accuracy)
    level: float = 0.95  # confidence level of the claims' intervals
    n_boot: int = 10_000  # bootstrap resamples over cue-conflict stimuli
    seed: int = 0

    def __post_init__(self) -> None:
        """A value no run can use is a one-line ConfigError before any work (preset, --config, --set)."""
        check_model(self.model)
        self.train.check()
        check_ranges(self, {
            "train_images": "[1, inf)", "texture_match": "[0, 1]", "samples": "[1, inf)",
            "round_size": f"[1, {self.samples}]", "min_samples": f"[1, {self.samples}]", "alpha": "(0, 1)",
            "cnn_epochs": "[1, inf)", "noise_max_t": f"[1, {self.model.train_timesteps}]",
            "cue_conflict_per_pair": "[1, inf)", "outline_per_class": "[1, inf)", "parametric_per_class": "[1, inf)",
            "clean_per_class": "[1, inf)", "level": "(0, 1)", "n_boot": "[1, inf)"})
        if self.size != self.model.image_size:
            raise ConfigError(f"config keys 'size' and 'model.image_size' must be equal (the stimuli are drawn at "
                              f"the model's size), got {self.size} and {self.model.image_size}")
        if self.template.count("{}") != 1:
            raise ConfigError(f"config key 'template' must hold one '{{}}' for the class name, got {self.template!r}")


def quick() -> Config:
    return Config()


def paper() -> Config:
    return Config(size=32, train_images=50000, model=ModelConfig(image_size=32, block_out_channels=(32, 64, 64)),
                  train=TextToImageTrainConfig(steps=10000, batch_size=128, lr=1e-3), samples=256, cnn_epochs=20,
                  cue_conflict_per_pair=20, outline_per_class=40, parametric_per_class=20, clean_per_class=100)


def tiny() -> Config:
    return Config(size=16, train_images=64,
                  model=ModelConfig(image_size=16, block_out_channels=(8, 16), cross_attention_dim=16,
                                    text_intermediate=32, attention_head_dim=4, max_length=8, text_layers=1),
                  train=TextToImageTrainConfig(steps=3, batch_size=8, lr=1e-3, warmup_steps=0), samples=8,
                  round_size=4, min_samples=4, cnn_epochs=1, cue_conflict_per_pair=1, outline_per_class=1,
                  parametric_per_class=1, clean_per_class=1, n_boot=1000)


PRESETS = {"tiny": tiny, "quick": quick, "paper": paper}
