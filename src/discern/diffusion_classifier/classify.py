"""Zero-shot classification of one image by denoising error: the full score matrix, Clark & Jaini's
paired-test pruning, and Li et al.'s fixed top-k schedule.  Every policy counts its UNet evaluations.

Pruning (Clark & Jaini 2023, Algorithm 1): scores are computed in rounds of ``round_size`` shared
(t, eps) samples for the classes still in play; after each round every class is compared with
the current best (lowest weighted mean error) by a one-sided **paired** t-test on the per-sample
differences, and dropped when the best is better with p < ``alpha``.  Sampling stops when one
class is left or ``max_samples`` is reached; the prediction is the best remaining class.

Li et al. (2023, ``eval_prob_adaptive.py``): stages with n_s timesteps of their strided grid,
keeping the ``to_keep[s]`` prompts with the lowest mean error so far; only new timesteps are
evaluated in a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from scipy import stats

from discern.core import derive_seed
from discern.diffusion import Denoiser

from .scores import li_grid, li_stage, score_matrix, stratified_timesteps, timestep_weights


@dataclass
class Result:
    pred: int  # index into the class list
    evaluations: int  # UNet evaluations spent on this image
    scores: list[float]  # weighted mean error per class (nan for classes dropped before any sample)
    samples: list[int] = field(default_factory=list)  # samples each class received


def image_noise(den: Denoiser, x0: torch.Tensor, n: int, seed: int, index: int, timesteps: str = "stratified"):
    """The (timesteps, noise) pairs of one image: a function of (seed, image index) only, shared by
    every class and every policy."""
    g = torch.Generator().manual_seed(derive_seed(seed, "diffusion-classifier", index))
    if timesteps == "stratified":
        ts = stratified_timesteps(den.num_timesteps, n, g)
    elif timesteps == "li":
        ts = torch.tensor(li_grid(den.num_timesteps, n))
    else:
        raise ValueError(f"unknown timestep policy {timesteps!r} (stratified, li)")
    eps = torch.randn((n, *x0.shape[1:]), generator=g)
    return ts, eps


def classify_full(den, x0, conds, ts, eps, weighting="uniform", fitted=None, loss="mse", batch_size=64) -> Result:
    """Every class at every sample: K x N evaluations."""
    e = score_matrix(den, x0, conds, ts, eps, loss, batch_size)
    w = timestep_weights(ts, weighting, den.alphas_cumprod, fitted)
    s = (e * w).mean(1)
    K, N = e.shape
    return Result(int(s.argmin()), K * N, s.tolist(), [N] * K)


def paired_prune(errors_fn, K: int, N: int, w: torch.Tensor, round_size: int = 16, alpha: float = 0.01,
                 min_samples: int = 16) -> Result:
    """Successive elimination with a paired t-test.  ``errors_fn(classes, cols)`` returns the errors
    (len(classes), len(cols)) of those classes at those sample columns."""
    alive = list(range(K))
    e = torch.full((K, N), float("nan"))
    used = 0
    evals = 0
    while used < N:
        cols = list(range(used, min(N, used + round_size)))
        e[torch.tensor(alive)[:, None], torch.tensor(cols)[None, :]] = errors_fn(alive, cols)
        evals += len(alive) * len(cols)
        used = cols[-1] + 1
        if len(alive) == 1:
            break
        we = e[alive, :used] * w[:used]
        means = we.mean(1)
        best = alive[int(means.argmin())]
        if used < min_samples:
            continue
        keep = []
        for c in alive:
            if c == best:
                keep.append(c)
                continue
            d = (e[c, :used] - e[best, :used]) * w[:used]  # > 0 where the best denoises better
            sd = d.std()
            if sd == 0:
                p = 0.0 if d.mean() > 0 else 1.0
            else:
                tstat = float(d.mean() / (sd / used ** 0.5))
                p = float(stats.t.sf(tstat, df=used - 1))
            if p >= alpha:
                keep.append(c)
        alive = keep
        if len(alive) == 1:
            break
    samples = [int((~torch.isnan(e[k])).sum()) for k in range(K)]
    score = [float((e[k, :samples[k]] * w[:samples[k]]).mean()) if samples[k] else float("nan") for k in range(K)]
    final = min(alive, key=lambda k: score[k])
    return Result(final, evals, score, samples)


def classify_pruned(den, x0, conds, ts, eps, weighting="uniform", fitted=None, loss="mse", batch_size=64,
                    round_size: int = 16, alpha: float = 0.01, min_samples: int = 16) -> Result:
    w = timestep_weights(ts, weighting, den.alphas_cumprod, fitted)

    def errors_fn(classes, cols):
        c = torch.tensor(cols)
        return score_matrix(den, x0, conds[classes], ts[c], eps[c], loss, batch_size)

    return paired_prune(errors_fn, conds.shape[0], len(ts), w, round_size, alpha, min_samples)


def li_evaluations(K: int, n_samples: list[int], to_keep: list[int], num_train: int = 1000) -> int:
    """UNet evaluations per image of a Li et al. schedule (only new timesteps are evaluated per stage)."""
    grid = li_grid(num_train, max(n_samples))
    seen: set[int] = set()
    alive, total = K, 0
    for n, k in zip(n_samples, to_keep):
        new = [t for t in li_stage(grid, n) if t not in seen]
        seen.update(new)
        total += alive * len(new)
        alive = k
    return total


def classify_li(den, x0, conds, n_samples: list[int], to_keep: list[int], eps_bank: torch.Tensor | None = None,
                loss="mse", batch_size=64, seed: int = 0, index: int = 0) -> Result:
    """Li et al.'s fixed schedule; ``eps_bank`` (max(n_samples), C, H, W): one noise per grid slot,
    shared by every prompt (drawn from (seed, index) when not given)."""
    if len(n_samples) != len(to_keep) or to_keep[-1] != 1:
        raise ValueError("Li schedule: n_samples and to_keep must have equal length and to_keep must end with 1")
    grid = li_grid(den.num_timesteps, max(n_samples))
    if eps_bank is None:
        g = torch.Generator().manual_seed(derive_seed(seed, "li-noise", index))
        eps_bank = torch.randn((len(grid), *x0.shape[1:]), generator=g)
    slot = {t: i for i, t in enumerate(grid)}
    K = conds.shape[0]
    err: dict[int, dict[int, float]] = {k: {} for k in range(K)}
    alive = list(range(K))
    evals = 0
    for n, keep in zip(n_samples, to_keep):
        stage = li_stage(grid, n)
        for_class = [t for t in stage if t not in err[alive[0]]]
        if for_class:
            idx = torch.tensor([slot[t] for t in for_class])
            e = score_matrix(den, x0, conds[alive], torch.tensor(for_class), eps_bank[idx], loss, batch_size)
            evals += e.numel()
            for r, k in enumerate(alive):
                for j, t in enumerate(for_class):
                    err[k][t] = float(e[r, j])
        mean = {k: sum(err[k].values()) / len(err[k]) for k in alive}
        alive = sorted(alive, key=lambda k: mean[k])[:keep]
    scores = [sum(err[k].values()) / len(err[k]) if err[k] else float("nan") for k in range(K)]
    return Result(alive[0], evals, scores, [len(err[k]) for k in range(K)])
