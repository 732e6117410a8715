"""Captions for training small text-to-image models on labelled images, and the images themselves
as tensors in [-1, 1].

Training captions vary ("a photo of a {c}", attribute templates such as "a black and white photo
of a {c}") so that the model learns the class word rather than one sentence; zero-shot
classification then uses one fixed template (``CLASSIFY_TEMPLATE``) per class.
"""

from __future__ import annotations

import numpy as np
import torch

FASHION_NAMES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                 "ankle boot")

TEMPLATES = (
    "a photo of a {}",
    "a black and white photo of a {}",
    "a picture of a {}",
    "a {}",
    "a grayscale image of the {}",
    "a small photo of a {}",
    "a product photo of a {}",
    "a centred photo of the {}",
)

CLASSIFY_TEMPLATE = "a photo of a {}"


def caption(name: str, k: int) -> str:
    """Caption ``k`` (mod the number of templates) of class ``name``."""
    return TEMPLATES[k % len(TEMPLATES)].format(name)


def class_prompts(names, template: str = CLASSIFY_TEMPLATE) -> list[str]:
    return [template.format(n) for n in names]


def to_tensor(images: np.ndarray, size: int = 32) -> torch.Tensor:
    """uint8 images (N, H, W) or (N, H, W, C) -> float (N, C, size, size) in [-1, 1], zero-padded
    (background -1) to ``size`` when smaller, so 28 x 28 Fashion-MNIST sits centred in 32 x 32."""
    x = torch.from_numpy(np.array(images, dtype=np.float32))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    x = x / 127.5 - 1.0
    H, W = x.shape[-2:]
    if H > size or W > size:
        raise ValueError(f"images of {H}x{W} are larger than the model's {size}x{size}")
    top, left = (size - H) // 2, (size - W) // 2
    return torch.nn.functional.pad(x, (left, size - W - left, top, size - H - top), value=-1.0)
