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

Claims, each decided by a named test on the same test images:

- zero-shot classification: the full matrix's accuracy against chance (1/K) by an exact one-sided
  binomial test; held if p < 0.05;
- pruning: held when the evaluation cut is at least ``min_cut`` (5x) AND the upper end of the 95%
  interval of the accuracy drop (full matrix minus pruning, paired per image; Newcombe's paired
  score interval) is at most ``max_drop`` (1 point); not held when the cut is below 5x or the
  interval lies wholly above 1 point; otherwise inconclusive;
- binding: the diffusion model prefers the true caption above chance (exact one-sided binomial
  test vs 50%) AND more often than the contrastive model on the same scenes (exact one-sided
  McNemar test); held if both p < 0.05 (the larger p is reported: an intersection-union test);
  not held if the contrastive model is significantly better (the reverse McNemar test).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from discern.core import Run, config_to_dict, derive_seed, progress
from discern.core.results import Claim, Result

from .config import PRESETS, BindingConfig, Config, paper, quick, tiny  # noqa: F401  (their old home)

PAPER = {
    "zero_shot": "Imagen is competitive with CLIP on 13 zero-shot datasets (Clark & Jaini, Table 1); "
                 "SD 2.0: CIFAR-10 88.5 (Li et al.)",
    "pruning": "pruning and shared noise make classification up to ~1000x cheaper than the full score matrix "
               "(Clark & Jaini, Algorithm 1; the ~1000x figure as summarised, not checked against the paper)",
    "binding": "Imagen 'can successfully perform attribute binding while CLIP cannot' (Clark & Jaini, abstract; "
               "CLEVR test after Lewis et al. 2022)",
}


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


def run(cfg: Config, run: Run) -> Result:
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
    rows, correct = {}, {}
    for kind in ("uniform", "elbo", "fitted"):
        hits = []
        for r in test:
            w = timestep_weights(torch.tensor(r["ts"]), kind, ab, fitted)
            hits.append(int((torch.tensor(r["errors"]) * w).mean(1).argmin()) == r["label"])
        correct[kind] = np.array(hits, dtype=bool)
        rows[kind] = 100.0 * float(correct[kind].mean())

    def prune(weighting):
        hits, evals = [], 0
        for r in test:
            E = torch.tensor(r["errors"])
            w = timestep_weights(torch.tensor(r["ts"]), weighting, ab, fitted)
            res = paired_prune(lambda cl, co: E[cl][:, co], K, E.shape[1], w, cfg.round_size, cfg.alpha,
                               cfg.min_samples)
            hits.append(res.pred == r["label"])
            evals += res.evaluations
        hits = np.array(hits, dtype=bool)
        return hits, {"accuracy": 100.0 * float(hits.mean()), "evaluations_per_image": evals / len(test)}

    pruned_correct, pruned = prune("uniform")
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
    if "preferences" not in binding:  # a run resumed from before the per-scene preferences were kept
        (run.path / "binding.json").unlink()
        binding = run.stage("binding", lambda: run_binding(cfg.binding, run))
    claims = [_zero_shot_claim(correct["uniform"], K, cnn["accuracy"], cfg),
              _pruning_claim(correct["uniform"], pruned_correct, full_evals, pruned["evaluations_per_image"], cfg),
              _binding_claim(binding, cfg)]
    plots = _plots(run, table, fitted, pipe if cfg.sample_grid else None, FASHION_NAMES, cfg.seed)
    plots.append(_binding_plot(run, binding))
    result = Result(
        paper="diffusion_classifier", title="Diffusion models as zero-shot classifiers (Fashion-MNIST)",
        claims=claims, plots=plots, table=table,
        details={"preset_config": config_to_dict(cfg), "fitted_weights": fitted.tolist(), "binding": binding,
                 "per_image": {"label": [int(r["label"]) for r in test],
                               "full_uniform_correct": correct["uniform"].tolist(),
                               "pruned_correct": pruned_correct.tolist()},
                 "paper_numbers": PAPER,
                 "train": json.loads((sub.path / "metrics.jsonl").read_text().splitlines()[-1])
                 if (sub.path / "metrics.jsonl").is_file() else {}})
    run.save_results(result.to_dict())
    return result


def _zero_shot_claim(full_correct, n_classes: int, cnn_accuracy: float, cfg: Config) -> Claim:
    """Exact one-sided binomial test of the full matrix's accuracy against chance 1 / K."""
    from discern.metrics.stats import binomial_test, proportion_ci

    alpha = 1 - cfg.level
    k, n = int(np.sum(full_correct)), int(np.size(full_correct))
    up = binomial_test(k, n, 1 / n_classes, "greater")
    down = binomial_test(k, n, 1 / n_classes, "less")
    acc = proportion_ci(k, n, cfg.level)
    return Claim(
        statement="text-to-image diffusion models are zero-shot classifiers: the denoising error under each "
                  "label's prompt classifies images",
        paper=PAPER["zero_shot"],
        ours=f"{100 * k / n:.1f}% ({k} of {n} Fashion-MNIST test images; Wilson {int(round(cfg.level * 100))}% "
             f"[{100 * acc['ci'][0]:.1f}, {100 * acc['ci'][1]:.1f}]) against chance {100 / n_classes:.0f}%; "
             f"supervised CNN {cnn_accuracy:.1f}%",
        test=f"{up['test']} on {n} images; held if p < {alpha:.2g}, not held if the 'less' test has p < {alpha:.2g}",
        p_value=up["p_value"], ci=(100 * acc["ci"][0], 100 * acc["ci"][1]), level=cfg.level,
        verdict="held" if up["p_value"] < alpha else "not held" if down["p_value"] < alpha else "inconclusive")


def _pruning_claim(full_correct, pruned_correct, full_evals: float, pruned_evals: float, cfg: Config) -> Claim:
    """The evaluation cut and Newcombe's paired interval of the accuracy drop (full - pruned), points."""
    from .paired import paired_accuracy_difference

    drop = paired_accuracy_difference(full_correct, pruned_correct, cfg.level)
    lo, hi = 100 * drop["ci"][0], 100 * drop["ci"][1]
    cut = full_evals / max(pruned_evals, 1e-9)
    if cut >= cfg.min_cut and hi <= cfg.max_drop:
        verdict = "held"
    elif cut < cfg.min_cut or lo > cfg.max_drop:
        verdict = "not held"
    else:
        verdict = "inconclusive"
    return Claim(
        statement="class pruning with shared noise makes diffusion classification much cheaper at almost no cost "
                  f"in accuracy (here: >= {cfg.min_cut:g}x fewer UNet evaluations, accuracy drop <= "
                  f"{cfg.max_drop:g} point)",
        paper=PAPER["pruning"],
        ours=f"{cut:.1f}x fewer UNet evaluations ({pruned_evals:.0f} vs {full_evals:.0f} per image); accuracy "
             f"{100 * (drop['both'] + drop['b_only']) / drop['n']:.1f}% pruned vs "
             f"{100 * (drop['both'] + drop['a_only']) / drop['n']:.1f}% full, drop {100 * drop['difference']:+.1f} "
             f"[{lo:+.1f}, {hi:+.1f}] points on {drop['n']} images",
        test=f"{drop['test']} of the paired accuracy drop (full minus pruned); held if the cut is >= "
             f"{cfg.min_cut:g}x and the interval's upper end is <= {cfg.max_drop:g} point; not held if the cut is "
             f"< {cfg.min_cut:g}x or the interval lies above {cfg.max_drop:g} point",
        ci=(lo, hi), level=cfg.level, verdict=verdict)


def _binding_claim(binding: dict, cfg: Config) -> Claim:
    """Intersection-union test: the diffusion model binds (binomial vs 50%) and beats the contrastive
    model on the same scenes (McNemar)."""
    from discern.metrics.stats import binomial_test, mcnemar

    alpha = 1 - cfg.level
    bd, bc = binding["diffusion"], binding["contrastive"]
    prefs = binding["preferences"]
    binds = binomial_test(bd["preferred_true"], bd["scenes"], 0.5, "greater")
    beats = mcnemar(prefs["diffusion"], prefs["contrastive"], "greater")
    loses = mcnemar(prefs["diffusion"], prefs["contrastive"], "less")
    p = max(binds["p_value"], beats["p_value"])
    return Claim(
        statement="Imagen can successfully perform attribute binding while CLIP cannot",
        paper=PAPER["binding"],
        ours=f"true caption preferred over the colour-swapped one on {bd['scenes']} new scenes: diffusion "
             f"{bd['accuracy']:.1f}% (binomial p = {binds['p_value']:.2g}), contrastive {bc['accuracy']:.1f}% "
             f"(p = {bc['p_value']:.2g}); diffusion-only vs contrastive-only preferences {beats['a_only']} vs "
             f"{beats['b_only']} (McNemar p = {beats['p_value']:.2g}, reverse p = {loses['p_value']:.2g})",
        test=f"exact one-sided binomial test vs 50% (diffusion binds) and exact one-sided McNemar test on the same "
             f"scenes (diffusion beats contrastive); held if both p < {alpha:.2g} (p_value: the larger); not held "
             f"if the reverse McNemar test has p < {alpha:.2g}",
        p_value=p, level=cfg.level,
        verdict="held" if p < alpha else "not held" if loses["p_value"] < alpha else "inconclusive")


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
        from discern.diffusion import sample
        from discern.diffusion.captions import class_prompts

        prompts = [p for p in class_prompts(names) for _ in range(4)]
        with torch.no_grad():  # the samples in [-1, 1] behind the pipeline's images (TextToImagePipeline.__call__)
            imgs = sample(pipe, prompts, 50, guidance_scale=1.0,
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
