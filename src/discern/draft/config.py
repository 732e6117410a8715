"""All configurations of the package and their presets.

- :class:`SamplerConfig`: the DDIM sampler every method fine-tunes through.
- :class:`DraftConfig`: one reward fine-tuning run (any of the five methods), its evaluation.
- :class:`TrainCommandConfig` and ``TRAIN_PRESETS``: ``discern draft train``.
- :class:`Config` and ``PRESETS``: the small-scale reproduction (``discern reproduce --only draft``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from discern.core.config import check_choices, check_ranges
from discern.core.errors import ConfigError
from discern.diffusion.config import ModelConfig, check_model
from discern.train.text_to_image import TextToImageTrainConfig

METHODS = ("full", "k", "lv", "refl", "ddpo")


@dataclass
class SamplerConfig:
    steps: int = 50
    guidance_scale: float = 7.5
    eta: float = 0.0
    checkpoint: bool = True


@dataclass
class DraftConfig:
    method: str = "lv"  # full | k | lv | refl | ddpo
    K: int = 1  # DRaFT-K: steps with gradient
    n_lv: int = 2  # DRaFT-LV: re-noised copies
    refl_last: int = 10  # ReFL: the random step is among the last this many
    updates: int = 2000
    batch_size: int = 4
    lr: float = 4e-4
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    rank: int = 8
    lora_alpha: float = 8.0
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    # DDPO (Black et al. 2023; its released defaults): PPO ratio clip, passes over each rollout,
    # advantage clip, and the per-prompt reward statistics (a buffer of the last ``ddpo_buffer``
    # rewards of each prompt, used once it holds ``ddpo_min_count``; the batch's before that)
    ddpo_clip: float = 1e-4
    ddpo_inner: int = 1
    ddpo_adv_clip: float = 5.0
    ddpo_buffer: int = 32
    ddpo_min_count: int = 16
    ddpo_min_std: float = 0.0  # train only on policy steps whose sigma_t is at least this (0: every step)
    # evaluation: fixed prompts and noises, at every sampler eta in ``eval_etas``, after the updates
    # of ``eval_schedule`` (powers of two below ``eval_every``, then every ``eval_every``)
    eval_every: int = 10
    eval_prompts: int = 8
    eval_etas: list[float] = field(default_factory=lambda: [0.0, 1.0])
    eval_seed: int = 0  # the evaluation set's noises (the same for every run that compares)
    checkpoint_every: int = 50
    seed: int = 0
    bf16: bool = False  # bf16 autocast around the UNet, text encoder and VAE (LoRA weights stay float32)

    def check(self, prefix: str = "draft.") -> None:
        """A one-line ConfigError for a value no run can use (the sampler's included)."""
        check_ranges(self, {"sampler.steps": "[1, 1000]", "sampler.guidance_scale": "[0, inf)", "sampler.eta": "[0, 1]"},
                     prefix)
        check_choices(self, {"method": METHODS}, prefix)
        check_ranges(self, {
            "K": "[1, inf)", "n_lv": "[1, inf)", "refl_last": "[1, inf)", "updates": "[1, inf)",
            "batch_size": "[1, inf)", "lr": "[0, inf)", "weight_decay": "[0, inf)", "grad_clip": "[0, inf)",
            "rank": "[1, inf)", "lora_alpha": "(0, inf)", "ddpo_clip": "(0, inf)", "ddpo_inner": "[1, inf)",
            "ddpo_adv_clip": "(0, inf)", "ddpo_buffer": "[1, inf)", "ddpo_min_count": f"[1, {self.ddpo_buffer}]",
            "ddpo_min_std": "[0, inf)", "eval_every": "[1, inf)", "eval_prompts": "[1, inf)", "eval_etas": "[0, 1]",
            "checkpoint_every": "[0, inf)"}, prefix)


@dataclass
class TrainCommandConfig:
    draft: DraftConfig = field(default_factory=DraftConfig)
    reward: str = "contrast"  # contrast | brightness | compressibility | classifier:<class> | aesthetic | preference
    prompts: list[str] = field(default_factory=lambda: ["a photo of a bag", "a photo of a sneaker",
                                                        "a photo of a dress", "a photo of a coat"])

    def __post_init__(self) -> None:
        self.draft.check()
        if not self.prompts:
            raise ConfigError("config key 'prompts' must name at least one prompt")


def train_paper() -> TrainCommandConfig:
    """Clark et al. 2024 on SD 1.4 (small-scale runs): 50 DDIM steps, guidance 7.5, LoRA rank 8,
    AdamW lr 4e-4, weight decay 0.1, batch 4, 2k updates, n = 2 for DRaFT-LV."""
    return TrainCommandConfig(draft=DraftConfig(updates=2000, batch_size=4, lr=4e-4, weight_decay=0.1, rank=8,
                                                lora_alpha=8.0, sampler=SamplerConfig(steps=50, guidance_scale=7.5),
                                                n_lv=2))


def train_quick() -> TrainCommandConfig:
    return TrainCommandConfig(draft=DraftConfig(updates=200, batch_size=4, lr=4e-4, rank=4, lora_alpha=4.0,
                                                sampler=SamplerConfig(steps=10, guidance_scale=2.0), eval_every=20))


def train_tiny() -> TrainCommandConfig:
    return TrainCommandConfig(draft=DraftConfig(updates=2, batch_size=2, rank=2, lora_alpha=2.0, eval_every=1,
                                                eval_prompts=2, sampler=SamplerConfig(steps=2, guidance_scale=2.0),
                                                checkpoint_every=1))


TRAIN_PRESETS = {"tiny": train_tiny, "quick": train_quick, "paper": train_paper}


# --- the reproduction -------------------------------------------------------------------------


@dataclass
class Config:
    model: ModelConfig = field(default_factory=lambda: ModelConfig(image_size=16, block_out_channels=(16, 32)))
    base_train: TextToImageTrainConfig = field(default_factory=lambda: TextToImageTrainConfig(
        steps=500, batch_size=64, lr=2e-3, warmup_steps=50))
    train_images: int = 60000
    draft: DraftConfig = field(default_factory=lambda: DraftConfig(
        updates=60, batch_size=4, lr=1e-3, weight_decay=0.1, rank=4, lora_alpha=4.0, eval_every=10, eval_prompts=8,
        sampler=SamplerConfig(steps=10, guidance_scale=2.0), checkpoint_every=20))
    methods: list[str] = field(default_factory=lambda: ["full", "k", "lv", "refl", "ddpo"])
    # DDPO's own settings where they differ from the gradient methods' (Black et al. 2023's released
    # defaults: lr 3e-4, weight decay 1e-4); RL gets 5x the samples of the gradient methods.
    # ddpo_min_std: our 10-step schedule's last stochastic step (t = 100 -> 0) has sigma = 0.01; its
    # score term is ~30x the other steps' and, at batch 4, almost pure noise, so DDPO trains on the
    # steps with sigma >= 0.05 (Stable Diffusion's 50-step schedule that DDPO used has no such step)
    ddpo_updates: int = 300
    ddpo_lr: float = 3e-4
    ddpo_weight_decay: float = 1e-4
    ddpo_min_std: float = 0.05
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    classes: list[str] = field(default_factory=lambda: ["bag", "sneaker", "trouser", "dress"])
    # evaluation only: prompts never fine-tuned on, and a second reward model trained on the other
    # half of the images from another seed (reward hacking shows as a gap between the two rewards)
    heldout_classes: list[str] = field(default_factory=lambda: ["sandal", "pullover", "coat", "ankle boot"])
    alphas: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 1.5, 2.0])
    cnn_epochs: int = 1
    efficiency_ratio: float = 10.0  # the claim: DRaFT reaches DDPO's reward with >= this many times fewer samples
    bootstrap: int = 2000  # resamples of every interval
    seed: int = 0

    def __post_init__(self) -> None:
        """A value no run can use is a one-line ConfigError before any work (preset, --config, --set)."""
        check_model(self.model)
        self.base_train.check("base_train.")
        self.draft.check()
        check_ranges(self, {"train_images": "[1, inf)", "ddpo_updates": "[1, inf)", "ddpo_lr": "[0, inf)",
                            "ddpo_weight_decay": "[0, inf)", "ddpo_min_std": "[0, inf)", "alphas": "[0, inf)",
                            "cnn_epochs": "[1, inf)", "efficiency_ratio": "(0, inf)", "bootstrap": "[1, inf)"})
        for key in ("methods", "seeds", "classes", "alphas"):
            if not getattr(self, key):
                raise ConfigError(f"config key '{key}' must not be empty")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ConfigError(f"config key 'methods' must be among {', '.join(METHODS)}, got {bad[0]!r}")


def quick() -> Config:
    return Config()


def paper() -> Config:
    return Config(model=ModelConfig(image_size=32, block_out_channels=(32, 64, 64)),
                  base_train=TextToImageTrainConfig(steps=20000, batch_size=128, lr=1e-3),
                  draft=DraftConfig(updates=2000, batch_size=4, lr=4e-4, rank=8, lora_alpha=8.0, eval_every=50,
                                    sampler=SamplerConfig(steps=50, guidance_scale=7.5)),
                  seeds=[0, 1, 2], cnn_epochs=5, bootstrap=10000, ddpo_min_std=0.0)


def tiny() -> Config:
    return Config(model=ModelConfig(image_size=16, block_out_channels=(8, 16), cross_attention_dim=16,
                                    text_intermediate=32, attention_head_dim=4, max_length=8, text_layers=1),
                  base_train=TextToImageTrainConfig(steps=3, batch_size=8, lr=1e-3, warmup_steps=0),
                  train_images=256,
                  draft=DraftConfig(updates=2, batch_size=2, rank=2, lora_alpha=2.0, eval_every=1, eval_prompts=2,
                                    sampler=SamplerConfig(steps=2, guidance_scale=2.0), checkpoint_every=1),
                  seeds=[0], alphas=[0.0, 1.0], ddpo_updates=4, heldout_classes=["coat", "sandal"], bootstrap=200,
                  ddpo_min_std=0.0)  # two steps: the only policy step has sigma = 0.01


PRESETS = {"tiny": tiny, "quick": quick, "paper": paper}
