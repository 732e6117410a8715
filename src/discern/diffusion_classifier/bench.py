"""Benchmark: images/s and UNet evaluations per image of the full score matrix, paired-test pruning
and Li et al.'s schedule, in one process, on the same Fashion-MNIST test images.

The model is the newest pipeline trained by ``discern reproduce --only diffusion_classifier`` under
``$DISCERN_RUNS`` (pruning needs a trained model to have something to prune); without one, a model
is trained here for a few hundred steps first (reported in the details).
"""

from __future__ import annotations

import time
from pathlib import Path


def _pipeline():
    from discern.core.runs import runs_root
    from discern.diffusion import load_pipeline

    found = sorted(Path(runs_root()).glob("diffusion_classifier/*/t2i/pipeline/model_index.json"))
    if found:
        return load_pipeline(found[-1].parent), str(found[-1].parent)
    import tempfile

    from discern.core import Run
    from discern.data.corpora import fashion_mnist
    from discern.diffusion import build_pipeline
    from discern.diffusion.captions import FASHION_NAMES, to_tensor
    from discern.train.text_to_image import TrainCommandConfig, train_text_to_image

    cfg = TrainCommandConfig()
    cfg.train.steps = 300
    imgs, labels = fashion_mnist("train")
    pipe = build_pipeline(cfg.model)
    with tempfile.TemporaryDirectory() as d:
        run = Run.create("diffusion", "bench", cfg, root=d)
        train_text_to_image(pipe, to_tensor(imgs, cfg.model.image_size), labels, FASHION_NAMES, cfg.train, run)
    return pipe, "trained here for 300 steps"


def bench(quick: bool = False) -> dict:
    import numpy as np
    import torch

    from discern.data.corpora import fashion_mnist
    from discern.diffusion import Denoiser
    from discern.diffusion.captions import FASHION_NAMES, class_prompts, to_tensor

    from .classify import classify_full, classify_li, classify_pruned, image_noise

    pipe, source = _pipeline()
    den = Denoiser(pipe)
    n_img = 4 if quick else 12
    imgs, labels = fashion_mnist("test")
    x = to_tensor(imgs[:n_img], pipe.unet.config.sample_size)
    y = np.asarray(labels[:n_img])
    with torch.no_grad():
        conds = den.encode_prompts(class_prompts(FASHION_NAMES))
    N = 128
    policies = {
        "full": lambda x0, ts, eps, i: classify_full(den, x0, conds, ts, eps, batch_size=320),
        "pruned": lambda x0, ts, eps, i: classify_pruned(den, x0, conds, ts, eps, batch_size=320, round_size=4,
                                                         alpha=0.01, min_samples=8),
        "li": lambda x0, ts, eps, i: classify_li(den, x0, conds, [16, N], [3, 1], batch_size=320, index=i),
    }
    stats = {k: {"seconds": 0.0, "evaluations": 0, "correct": 0} for k in policies}
    for i in range(n_img):
        with torch.no_grad():
            x0 = den.encode_images(x[i:i + 1])
        ts, eps = image_noise(den, x0, N, 0, i)
        for k, f in policies.items():  # interleaved, same image
            t0 = time.perf_counter()
            r = f(x0, ts, eps, i)
            stats[k]["seconds"] += time.perf_counter() - t0
            stats[k]["evaluations"] += r.evaluations
            stats[k]["correct"] += int(r.pred == y[i])
    ips = {k: n_img / v["seconds"] for k, v in stats.items()}
    evals = {k: v["evaluations"] / n_img for k, v in stats.items()}
    return {
        "bench": "diffusion_classifier",
        "ratios": {"pruned_over_full_images_per_s": ips["pruned"] / ips["full"],
                   "li_over_full_images_per_s": ips["li"] / ips["full"],
                   "full_over_pruned_evaluations": evals["full"] / evals["pruned"],
                   "full_over_li_evaluations": evals["full"] / evals["li"]},
        "goals": {"full_over_pruned_evaluations": ">= 5"},
        "details": {"model": source, "images": n_img, "samples": N,
                    "images_per_s": {k: round(v, 3) for k, v in ips.items()},
                    "evaluations_per_image": {k: round(v, 1) for k, v in evals.items()},
                    "correct": {k: v["correct"] for k, v in stats.items()}, "threads": torch.get_num_threads()},
    }
