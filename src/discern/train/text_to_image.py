"""Train a small text-to-image diffusion model (UNet and text encoder together) on captioned images.

The objective is the simple epsilon loss of DDPM (Ho et al. 2020); a fraction ``caption_dropout``
of captions is replaced by the empty string so the model also learns the unconditional score
(classifier-free guidance at sampling time).  Runs on the shared loop (:func:`discern.train.fit`):
resumable, deterministic batches, DDP under ``torchrun``.  The trained model is written as a
``diffusers`` pipeline folder, ``<run>/pipeline``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from discern.core import Run, derive_seed
from discern.diffusion.captions import caption
from discern.diffusion.config import ModelConfig
from discern.diffusion.denoise import Denoiser, denoising_loss

from .loop import TrainConfig, fit


@dataclass
class TextToImageTrainConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    caption_dropout: float = 0.1
    seed: int = 0
    bf16: bool = False  # bf16 autocast for forward/backward (parameters stay float32)

    def check(self, prefix: str = "train.") -> None:
        """A one-line ConfigError for a value no run can train with."""
        from discern.core.config import check_ranges

        check_ranges(self, {"steps": "[1, inf)", "batch_size": "[1, inf)", "lr": "[0, inf)",
                            "warmup_steps": "[0, inf)", "caption_dropout": "[0, 1]"}, prefix)


@dataclass
class TrainCommandConfig:
    """``discern diffusion train``: a small text-to-image model on Fashion-MNIST or a folder of images."""
    model: ModelConfig = field(default_factory=lambda: ModelConfig(image_size=28, block_out_channels=(16, 32, 32)))
    train: TextToImageTrainConfig = field(default_factory=lambda: TextToImageTrainConfig(
        steps=700, batch_size=64, lr=2e-3, warmup_steps=50))
    max_images: int = 60000
    seed: int = 0

    def __post_init__(self) -> None:
        from discern.core.config import check_ranges
        from discern.diffusion.config import check_model

        check_model(self.model)
        self.train.check()
        check_ranges(self, {"max_images": "[1, inf)"})


class _Trainable(torch.nn.Module):
    def __init__(self, pipe):
        super().__init__()
        self.unet = pipe.unet
        self.text_encoder = pipe.text_encoder


def train_text_to_image(pipe, images: torch.Tensor, labels: list[int] | torch.Tensor, names, cfg: TextToImageTrainConfig,
                        run: Run, resume: bool = False, desc: str = "text-to-image", templates: bool = True):
    """Train ``pipe`` in place on ``images`` (N, C, H, W) in [-1, 1] with captions of ``names[label]``
    (drawn from the caption templates, or ``names[label]`` itself with ``templates=False``);
    saves ``<run>/pipeline`` and returns the fit state."""
    labels = [int(v) for v in labels]
    N = len(labels)
    den = Denoiser(pipe)
    model = _Trainable(pipe)

    def batch_fn(step, micro, rank, world):
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "t2i-batch", step, micro, rank))
        idx = torch.randint(0, N, (cfg.batch_size // world,), generator=g)
        k = torch.randint(0, 1 << 30, (len(idx),), generator=g).tolist()
        drop = (torch.rand(len(idx), generator=g) < cfg.caption_dropout).tolist()
        caps = ["" if d else caption(names[labels[i]], kk) if templates else names[labels[i]]
                for i, kk, d in zip(idx.tolist(), k, drop)]
        return images[idx], caps, derive_seed(cfg.seed, "t2i-noise", step, micro, rank)

    def step_fn(m, batch):
        x, caps, seed = batch
        return denoising_loss(den, x, caps, torch.Generator().manual_seed(seed)), {}

    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_steps=cfg.warmup_steps,
                     optimizer="adamw", bias_correction=True, weight_decay=0.0, schedule="electra",
                     log_every=10, checkpoint_every=max(50, cfg.steps // 10), seed=cfg.seed,
                     bf16=cfg.bf16)
    state = fit(model, step_fn, batch_fn, tc, run, resume=resume, desc=desc)
    pipe.unet.eval()
    pipe.text_encoder.eval()
    if run.main:
        pipe.save_pretrained(run.path / "pipeline")
    return state


def train_or_load(path, model_cfg: ModelConfig, cfg: TextToImageTrainConfig, images: torch.Tensor, labels, names,
                  seed: int = 0, desc: str = "text-to-image", templates: bool = True):
    """The pipeline saved in ``<path>/pipeline`` when that run finished; otherwise build one from
    ``model_cfg`` and train it there (resuming from ``<path>``'s last checkpoint).  On the device."""
    from pathlib import Path

    from discern.core import dist
    from discern.diffusion import build_pipeline, load_pipeline

    sub = Run(Path(path))
    if (sub.path / "pipeline" / "model_index.json").is_file():
        pipe = load_pipeline(sub.path / "pipeline")
    else:
        sub.checkpoints.mkdir(parents=True, exist_ok=True)
        pipe = build_pipeline(model_cfg, seed=seed)
        pipe.to(dist.device())
        train_text_to_image(pipe, images, labels, names, cfg, sub, resume=(sub.checkpoints / "last.pt").is_file(),
                            desc=desc, templates=templates)
    return pipe.to(dist.device())
