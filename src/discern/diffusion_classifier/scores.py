"""The class x (timestep, noise) score matrix, timestep weightings, and Li et al.'s timestep grids.

Clark & Jaini (2023), section 3: a label y is scored by the weighted denoising error
S(y) = E_{t, eps}[ w(t) ||eps - eps_theta(x_t, t, text(y))||^2 ] and the prediction is argmin_y S(y).
Every class is scored with the **same** (t, eps) pairs (common random numbers), so differences
between classes have low variance; the rows of one column are computed in one batch.
"""

from __future__ import annotations

import math

import torch

from discern.diffusion import Denoiser


def li_grid(num_train: int, n_max: int) -> list[int]:
    """Li et al.'s timestep grid for N = n_max samples: T//N//2 + k * (T//N), truncated to N points."""
    step = num_train // n_max
    return [step // 2 + k * step for k in range(n_max)][:n_max]


def li_stage(grid: list[int], n: int) -> list[int]:
    """The n evenly strided points of ``grid`` used by a stage with n samples: offset len//n//2,
    stride len//n."""
    stride = len(grid) // n
    return [grid[stride // 2 + k * stride] for k in range(n)]


def stratified_timesteps(num_train: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """n timesteps, one uniformly drawn from each of n equal strata of [0, T), in random order (so
    any prefix covers the whole range roughly evenly: pruning rounds see every noise level)."""
    edges = torch.linspace(0, num_train, n + 1)
    t = (edges[:-1] + torch.rand(n, generator=generator) * (edges[1:] - edges[:-1])).long().clamp_max(num_train - 1)
    return t[torch.randperm(n, generator=generator)]


def timestep_weights(ts: torch.Tensor, kind: str, alphas_cumprod: torch.Tensor,
                     fitted: torch.Tensor | None = None) -> torch.Tensor:
    """w(t) for each sampled timestep.

    - ``uniform``: 1 (the "simple" epsilon loss; Li et al.'s choice);
    - ``elbo``: the variational bound's weight of the epsilon error at t (Ho et al. 2020, eq. 12 with
      sigma_t^2 = beta_t): beta_t / (alpha_t (1 - abar_t)), up to a constant; it puts most weight on
      low noise, which Clark & Jaini found to classify poorly;
    - ``fitted``: per-bin weights learned on a validation set (:func:`fit_weights`), looked up by
      the bin of t.
    Weights are normalised to mean 1 over the timesteps given.
    """
    if kind == "uniform":
        w = torch.ones(len(ts))
    elif kind == "elbo":
        ab = alphas_cumprod.double()
        alpha = ab / torch.cat([ab.new_ones(1), ab[:-1]])  # alpha_t = abar_t / abar_{t-1}
        w = ((1 - alpha) / (alpha * (1 - ab)))[ts].float()
    elif kind == "fitted":
        if fitted is None:
            raise ValueError("timestep weighting 'fitted' needs the fitted bin weights")
        bins = (ts * len(fitted) // len(alphas_cumprod)).clamp_max(len(fitted) - 1)
        w = fitted[bins].float()
    else:
        raise ValueError(f"unknown timestep weighting {kind!r} (uniform, elbo, fitted)")
    return w / w.mean().clamp_min(1e-12)


@torch.no_grad()
def score_matrix(den: Denoiser, x0: torch.Tensor, conds: torch.Tensor, ts: torch.Tensor, eps: torch.Tensor,
                 loss: str = "mse", batch_size: int = 64) -> torch.Tensor:
    """Errors (K, N) of one image x0 (1, C, H, W) for K prompt encodings ``conds`` (K, L, D) at the N
    (timestep, noise) pairs ``ts`` (N,), ``eps`` (N, C, H, W); column j uses (ts[j], eps[j]) for
    every row.  All K x N (class, sample) pairs are evaluated in batches of ``batch_size``."""
    K, N = conds.shape[0], ts.shape[0]
    rows = torch.arange(K).repeat_interleave(N)  # class of each pair
    cols = torch.arange(N).repeat(K)  # sample of each pair
    out = torch.empty(K * N)
    dev = den.device
    for s in range(0, K * N, batch_size):
        r, c = rows[s:s + batch_size], cols[s:s + batch_size]
        xb = x0.expand(len(r), *x0.shape[1:]).to(dev)
        out[s:s + len(r)] = den.errors(xb, ts[c].to(dev), eps[c].to(dev), conds[r].to(dev), loss).cpu()
    return out.view(K, N)


def fit_weights(errors: torch.Tensor, ts: torch.Tensor, labels: torch.Tensor, num_train: int, bins: int = 10,
                steps: int = 300, lr: float = 0.05) -> torch.Tensor:
    """Per-bin timestep weights (bins,) >= 0 fitted on validation images.

    errors (M, K, N) score matrices of M images, ts (M, N) their timesteps, labels (M,).  The weighted
    score of class k is sum_b w_b * mean of the errors in bin b; w = softplus(theta) is fitted by
    minimising the cross-entropy of softmax(-score) against the labels (Adam), then rescaled to mean 1.
    """
    M, K, N = errors.shape
    b = (ts * bins // num_train).clamp_max(bins - 1)  # (M, N)
    onehot = torch.nn.functional.one_hot(b, bins).float()  # (M, N, B)
    count = onehot.sum(1).clamp_min(1)  # (M, B)
    per_bin = torch.einsum("mkn,mnb->mkb", errors.float(), onehot) / count[:, None, :]  # (M, K, B)
    # standardise per image so the fit sees relative errors, as the argmin does
    per_bin = (per_bin - per_bin.mean(1, keepdim=True)) / per_bin.std(1, keepdim=True).clamp_min(1e-8)
    theta = torch.zeros(bins, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    for _ in range(steps):
        w = torch.nn.functional.softplus(theta)
        logits = -(per_bin * w).sum(-1) * 4.0 / math.sqrt(bins)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = torch.nn.functional.softplus(theta).detach()
    return w / w.mean()
