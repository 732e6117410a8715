"""The discriminative reference: a small CNN trained with labels on the same images the diffusion
model saw (the paper compares with supervised ResNet-50 and CLIP; this is the laptop-scale analogue).
The network and its training live in :mod:`discern.nn.cnn`, shared with the psychophysics package."""

from __future__ import annotations

from discern.nn.cnn import SmallCNN, accuracy, predict, train_cnn

__all__ = ["SmallCNN", "accuracy", "predict", "train_cnn"]
