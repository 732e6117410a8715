"""A small supervised CNN: the discriminative reference of the diffusion classifier and of the
psychophysics comparison (the papers use ResNet-50 and CLIP; this is the laptop-scale analogue)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from discern.core import progress


class SmallCNN(nn.Module):
    """conv(32) -> pool -> conv(64) -> pool -> linear(128) -> classes, for (B, C, S, S) inputs."""

    def __init__(self, classes: int = 10, channels: int = 1, size: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU(),
                                  nn.Linear(128, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_cnn(images: torch.Tensor, labels, classes: int, epochs: int = 3, batch_size: int = 128, lr: float = 1e-3,
              seed: int = 0, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
              desc: str = "CNN") -> SmallCNN:
    """Adam on cross-entropy; images (N, C, H, W) in [-1, 1]; ``augment(x, generator)`` transforms
    each training batch (e.g. diffusion-style noise)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    y = torch.tensor(np.asarray(labels), dtype=torch.long)
    model = SmallCNN(classes, images.shape[1], images.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    steps = epochs * ((len(y) + batch_size - 1) // batch_size)
    bar = progress(total=steps, desc=desc)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for s in range(0, len(y), batch_size):
            idx = perm[s:s + batch_size]
            x = images[idx] if augment is None else augment(images[idx], g)
            loss = nn.functional.cross_entropy(model(x), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
    bar.close()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(N, classes) softmax probabilities."""
    return torch.cat([model(images[s:s + batch_size]).softmax(1) for s in range(0, len(images), batch_size)])


def accuracy(model: nn.Module, images: torch.Tensor, labels, batch_size: int = 512) -> float:
    y = torch.tensor(np.asarray(labels), dtype=torch.long)
    return 100.0 * float((predict(model, images, batch_size).argmax(1) == y).float().mean())
