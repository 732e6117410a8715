"""Reproduction on Fashion-MNIST: a small text-to-image diffusion model as a zero-shot classifier.

1. Train a pixel-space text-to-image model (``discern.diffusion``) on the Fashion-MNIST training
   images with varied captions ("a photo of a {class}", attribute templates).
2. Classify test images zero-shot with the prompt "a photo of a {class}":
   - the full class x (t, eps) score matrix (N shared samples per image);
   - Clark & Jaini's paired-test pruning, run on the same errors (same noise, so it sees exactly
     what it would compute; it is charged only the evaluations it asks for);
   - Li et al.'s fixed top-k schedule on its own timestep grid (evaluated for real).
   Timestep weightings uniform, ELBO, and fitted on validation images (from the same matrices).
3. The discriminative reference: a small CNN trained with labels on the same training images.
4. Attribute binding (Clark & Jaini section 5): a small text-to-image model and a small CLIP
   trained on the same two-object scenes; on new scenes, which of the true and the colour-swapped
   caption each prefers (:mod:`.binding`; chance 50%).

Claims: "zero-shot accuracy far above chance" (at least 3x chance), "pruning cuts
evaluations >= 5x at <= 1 point of accuracy" and "the diffusion model binds attributes where
the contrastive model does not" (binds = preference accuracy above 50% by a one-sided binomial
test at level 0.01).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from discern.core import Run, config_to_dict, derive_seed, progress
from discern.diffusion.config import ModelConfig
from discern.train.text_to_image import TextToImageTrainConfig, TrainCommandConfig

from .binding import BindingConfig

PAPER = {
    "zero_shot": "Imagen is competitive with CLIP on 13 zero-shot datasets (Clark & Jaini, Table 1); "
                 "SD 2.0: CIFAR-10 88.5 (Li et al.)",
    "pruning": "pruning and shared noise make classification up to ~1000x cheaper than the full score matrix "
               "(Clark & Jaini, secondary summary)",
    "binding": "Imagen 'can successfully perform attribute binding while CLIP cannot' (Clark & Jaini, abstract; "
               "CLEVR test after Lewis et al. 2022)",
}


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
    seed: int = 0


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


def _matrices(den, conds, images, labels, cfg: Config, path: Path, offset: int, desc: str) -> list[dict]:
    """Full score matrices, one JSON line per image (resumable): index, label, ts, errors (K x N)."""
    from .classify import image_noise
    from .run import records_by_index
    from .scores import score_matrix

    done = records_by_index(path)
    with open(path, "a") as f:
        for i in progress([i for i in range(len(images)) if i not in done], desc=desc):
            with torch.no_grad():
                x0 = den.encode_images(images[i:i + 1])
            ts, eps = image_noise(den, x0, cfg.samples, cfg.seed, offset + i)
            e = score_matrix(den, x0, conds, ts, eps, "mse", cfg.batch_size)
            rec = {"index": i, "label": int(labels[i]), "ts": ts.tolist(), "errors": e.tolist()}
            f.write(json.dumps(rec) + "\n")
            f.flush()
            done[i] = rec
    return [done[i] for i in range(len(images))]


def run(cfg: Config, run: Run) -> dict:
    import numpy as np

    from discern.data.corpora import fashion_mnist
    from discern.diffusion import Denoiser
    from discern.diffusion.captions import FASHION_NAMES, class_prompts, to_tensor
    from discern.train.text_to_image import train_or_load

    from .baseline import accuracy, train_cnn
    from .classify import paired_prune
    from .run import Policy, classify_images, summary
    from .scores import fit_weights, timestep_weights

    size = cfg.model.image_size
    tr_imgs, tr_labels = fashion_mnist("train")
    te_imgs, te_labels = fashion_mnist("test")
    n_train = min(cfg.train_images, len(tr_labels) - cfg.val_images)
    x_train = to_tensor(tr_imgs[:n_train], size)
    y_train = np.asarray(tr_labels[:n_train])
    x_val = to_tensor(tr_imgs[len(tr_labels) - cfg.val_images:], size)
    y_val = np.asarray(tr_labels[len(tr_labels) - cfg.val_images:])
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "test-subset"))
    pick = torch.randperm(len(te_labels), generator=g)[:cfg.test_images].numpy()
    x_test = to_tensor(te_imgs[pick], size)
    y_test = np.asarray(te_labels[pick])
    K = len(FASHION_NAMES)

    cnn = run.stage("cnn", lambda: {"accuracy": accuracy(
        train_cnn(x_train, y_train, K, epochs=cfg.cnn_epochs, seed=cfg.seed), x_test, y_test)})

    sub = Run(run.path / "t2i")
    pipe = train_or_load(sub.path, cfg.model, cfg.train, x_train, y_train, FASHION_NAMES, cfg.seed)
    den = Denoiser(pipe)
    with torch.no_grad():
        conds = den.encode_prompts(class_prompts(FASHION_NAMES))

    val = _matrices(den, conds, x_val, y_val, cfg, run.path / "matrices_val.jsonl", 10**6, "score matrices (val)")
    test = _matrices(den, conds, x_test, y_test, cfg, run.path / "matrices_test.jsonl", 0, "score matrices (test)")
    E_val = torch.tensor([r["errors"] for r in val])
    T_val = torch.tensor([r["ts"] for r in val])
    fitted = fit_weights(E_val, T_val, torch.tensor(y_val), den.num_timesteps, bins=cfg.weight_bins)

    ab = den.alphas_cumprod
    rows = {}
    for kind in ("uniform", "elbo", "fitted"):
        correct = 0
        for r in test:
            w = timestep_weights(torch.tensor(r["ts"]), kind, ab, fitted)
            correct += int((torch.tensor(r["errors"]) * w).mean(1).argmin()) == r["label"]
        rows[kind] = 100.0 * correct / len(test)

    def prune(weighting):
        acc, evals = 0, 0
        for r in test:
            E = torch.tensor(r["errors"])
            w = timestep_weights(torch.tensor(r["ts"]), weighting, ab, fitted)
            res = paired_prune(lambda cl, co: E[cl][:, co], K, E.shape[1], w, cfg.round_size, cfg.alpha,
                               cfg.min_samples)
            acc += res.pred == r["label"]
            evals += res.evaluations
        return {"accuracy": 100.0 * acc / len(test), "evaluations_per_image": evals / len(test)}

    pruned = prune("uniform")
    li_policy = Policy(kind="li", li_samples=list(cfg.li_samples), li_keep=list(cfg.li_keep),
                       batch_size=cfg.batch_size, seed=cfg.seed)
    li = summary(classify_images(pipe, x_test, list(FASHION_NAMES), li_policy, run.path / "li.jsonl", labels=y_test))
    full_evals = K * cfg.samples
    chance = 100.0 / K
    table = [
        {"method": "full matrix, uniform w(t)", "accuracy": rows["uniform"], "evaluations_per_image": full_evals},
        {"method": "full matrix, ELBO w(t)", "accuracy": rows["elbo"], "evaluations_per_image": full_evals},
        {"method": "full matrix, fitted w(t)", "accuracy": rows["fitted"], "evaluations_per_image": full_evals},
        {"method": "paired-test pruning (Clark & Jaini)", **pruned},
        {"method": f"Li et al. schedule {cfg.li_samples}/{cfg.li_keep}", "accuracy": li["accuracy"],
         "evaluations_per_image": li["evaluations_per_image"]},
        {"method": "supervised CNN (reference)", "accuracy": cnn["accuracy"], "evaluations_per_image": 0},
        {"method": "chance", "accuracy": chance, "evaluations_per_image": 0},
    ]
    from .binding import run_binding

    binding = run.stage("binding", lambda: run_binding(cfg.binding, run))
    bd, bc = binding["diffusion"], binding["contrastive"]
    cut = full_evals / max(pruned["evaluations_per_image"], 1e-9)
    drop = rows["uniform"] - pruned["accuracy"]
    claims = [
        {"claim": "zero-shot accuracy far above chance", "paper": PAPER["zero_shot"],
         "ours": f"{rows['uniform']:.1f}% on {len(test)} Fashion-MNIST test images (chance {chance:.0f}%, "
                 f"supervised CNN {cnn['accuracy']:.1f}%)",
         "held": rows["uniform"] >= 3 * chance},
        {"claim": "pruning cuts evaluations >= 5x at <= 1 point of accuracy", "paper": PAPER["pruning"],
         "ours": f"{cut:.1f}x fewer UNet evaluations ({pruned['evaluations_per_image']:.0f} vs {full_evals} per image), "
                 f"accuracy {pruned['accuracy']:.1f}% vs {rows['uniform']:.1f}%",
         "held": cut >= 5 and drop <= 1.0},
        {"claim": "the diffusion model binds attributes where the contrastive model does not", "paper": PAPER["binding"],
         "ours": f"true caption preferred over the colour-swapped one on {bd['scenes']} new scenes: diffusion "
                 f"{bd['accuracy']:.1f}% (p = {bd['p_value']:.2g}), contrastive {bc['accuracy']:.1f}% "
                 f"(p = {bc['p_value']:.2g}); chance 50%",
         "held": bool(bd["binds"] and not bc["binds"])},
    ]
    plots = _plots(run, table, fitted, pipe if cfg.sample_grid else None, FASHION_NAMES, cfg.seed)
    plots.append(_binding_plot(run, binding))
    result = {"paper": "diffusion_classifier", "title": "Diffusion models as zero-shot classifiers (Fashion-MNIST)",
              "preset_config": config_to_dict(cfg), "table": table, "fitted_weights": fitted.tolist(),
              "binding": binding, "claims": claims, "plots": plots, "paper_numbers": PAPER,
              "train": json.loads((sub.path / "metrics.jsonl").read_text().splitlines()[-1])
              if (sub.path / "metrics.jsonl").is_file() else {}}
    run.save_results(result)
    return result


def _binding_plot(run: Run, binding: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run.plots.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    names = ["diffusion", "contrastive"]
    acc = [binding[n]["accuracy"] for n in names]
    ax.bar(names, acc, color=["tab:blue", "tab:orange"])
    ax.axhline(binding["chance"], ls="--", color="gray", lw=1)
    ax.annotate("chance", (1.4, binding["chance"]), fontsize=7, va="bottom", ha="right")
    for i, n in enumerate(names):
        ax.annotate(f"{acc[i]:.0f}%\np={binding[n]['p_value']:.1g}", (i, acc[i]), ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 110)
    ax.set_ylabel("true caption preferred (%)")
    ax.set_title(f"attribute binding, {binding['diffusion']['scenes']} scenes", fontsize=9)
    fig.tight_layout()
    fig.savefig(run.plots / "binding.png", dpi=110)
    plt.close(fig)
    return "plots/binding.png"


def _plots(run: Run, table, fitted, pipe, names, seed) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run.plots.mkdir(parents=True, exist_ok=True)
    out = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for r in table:
        if r["evaluations_per_image"] > 0:
            axes[0].scatter(r["evaluations_per_image"], r["accuracy"], s=50)
            axes[0].annotate(r["method"], (r["evaluations_per_image"], r["accuracy"]), fontsize=7,
                             textcoords="offset points", xytext=(4, 4))
        else:
            axes[0].axhline(r["accuracy"], ls="--", lw=1, color="gray")
            axes[0].annotate(r["method"], (0, r["accuracy"]), fontsize=7, textcoords="offset points", xytext=(4, 2))
    axes[0].set_xlabel("UNet evaluations per image")
    axes[0].set_ylabel("accuracy (%)")
    axes[0].set_xlim(left=0)
    axes[1].bar(range(len(fitted)), fitted.tolist())
    axes[1].set_xlabel(f"timestep bin (of {len(fitted)}, low noise -> high noise)")
    axes[1].set_ylabel("fitted weight")
    fig.tight_layout()
    fig.savefig(run.plots / "accuracy_vs_evaluations.png", dpi=110)
    plt.close(fig)
    out.append("plots/accuracy_vs_evaluations.png")
    if pipe is not None:
        from discern.diffusion.captions import class_prompts

        prompts = [p for p in class_prompts(names) for _ in range(4)]
        imgs = pipe(prompts, num_inference_steps=50, guidance_scale=1.0,
                    generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)
        fig, axes = plt.subplots(len(names), 4, figsize=(4, len(names)))
        for i, ax in enumerate(axes.flat):
            ax.imshow(imgs[i, 0].cpu().numpy(), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i % 4 == 0:
                ax.set_ylabel(names[i // 4], fontsize=6, rotation=0, ha="right")
        fig.tight_layout()
        fig.savefig(run.plots / "samples.png", dpi=110)
        plt.close(fig)
        out.append("plots/samples.png")
    return out
