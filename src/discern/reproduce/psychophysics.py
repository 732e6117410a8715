"""The psychophysics reproduction, wired to the diffusion classifier (the two L3 packages meet here)."""

from __future__ import annotations

import numpy as np
import torch

from discern.core import Run
from discern.core.results import Result
from discern.psychophysics.config import PAPER_PROMPT


class DiffusionClassifier:
    """A text-to-image pipeline as a :class:`discern.psychophysics.decisions.Classifier`: Clark &
    Jaini's denoising-error rule with shared noise and paired-test pruning, prompted with the
    generative-classifiers paper's "A bad photo of a {}" by default.  ``predict_proba``
    returns a softmax over the negated weighted mean errors, with the pruned winner on top."""

    def __init__(self, pipe, classes, template: str = PAPER_PROMPT, samples: int = 64, round_size: int = 4,
                 min_samples: int = 8, alpha: float = 0.01, seed: int = 0, batch_size: int = 256):
        from discern.diffusion import Denoiser

        self.den = Denoiser(pipe)
        self.classes = list(classes)
        self.samples, self.round_size, self.min_samples, self.alpha = samples, round_size, min_samples, alpha
        self.seed, self.batch_size = seed, batch_size
        with torch.no_grad():
            self.conds = self.den.encode_prompts([template.format(c) for c in self.classes])
        self.images_seen = 0

    @torch.no_grad()
    def predict_proba(self, images) -> np.ndarray:
        from discern.diffusion_classifier.classify import classify_pruned, image_noise

        out = []
        for img in images:
            x0 = self.den.encode_images(img[None])
            ts, eps = image_noise(self.den, x0, self.samples, self.seed, self.images_seen)
            self.images_seen += 1
            r = classify_pruned(self.den, x0, self.conds, ts, eps, batch_size=self.batch_size,
                                round_size=self.round_size, alpha=self.alpha, min_samples=self.min_samples)
            s = torch.tensor([v if v == v else float("inf") for v in r.scores])  # nan: dropped before a sample
            logits = -s
            logits[r.pred] = logits[torch.isfinite(logits)].max() + 1e-6  # the pruned winner on top
            out.append(torch.softmax(logits, 0).numpy())
        return np.stack(out)


def make_generative(pipe, classes, cfg) -> DiffusionClassifier:
    return DiffusionClassifier(pipe, classes, cfg.template, cfg.samples, cfg.round_size, cfg.min_samples, cfg.alpha,
                               cfg.seed)


def run(cfg, run: Run) -> Result:
    from discern.psychophysics.experiment import run as psychophysics_run

    return psychophysics_run(cfg, run, generative=make_generative)
