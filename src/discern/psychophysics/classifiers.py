"""The discriminative classifiers of the reproduction, behind the
:class:`~discern.psychophysics.decisions.Classifier` protocol, and the diffusion-style input noise
of the control raised by the paper's reviewers (a CNN trained on noised inputs)."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float (N, 1, H, W) in [-1, 1]."""
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)


def noise_augment(alphas_cumprod: torch.Tensor, max_t: int):
    """Diffusion-style input noise: x -> sqrt(abar_t) x + sqrt(1 - abar_t) eps, t ~ U[0, max_t)."""
    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        t = torch.randint(0, max_t, (len(x),), generator=g)
        ab = alphas_cumprod[t].view(-1, 1, 1, 1)
        return ab.sqrt() * x + (1 - ab).sqrt() * torch.randn(x.shape, generator=g)
    return augment


class CNNClassifier:
    """A trained CNN behind the :class:`~discern.psychophysics.decisions.Classifier` protocol."""

    def __init__(self, model, classes):
        self.model, self.classes = model, list(classes)

    def predict_proba(self, images):
        from discern.nn.cnn import predict

        return predict(self.model, images).numpy()
