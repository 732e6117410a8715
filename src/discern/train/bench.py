"""Shared pieces of the pre-training throughput benchmarks (ELECTRA, Electric).

- the machine: its CPU name and a bf16 matmul peak measured in the same run;
- model FLOPs of one training step counted by ``torch.utils.flop_counter`` (every matmul and
  attention product of the forward and backward passes), so MFU = FLOPs / time / peak needs no
  hand formula;
- the previous training path, kept as the in-run baseline: PyTorch SDPA attention (whose CPU
  flash kernel has a slow backward), replacements drawn by Gumbel-max (one exponential draw and
  logarithm per vocabulary entry), accuracy by ``argmax`` over the vocabulary, cross-entropy on an
  fp32 copy of the logits, and an Adam that loops over parameters in Python.
"""

from __future__ import annotations

import platform
import time
from typing import Callable

import torch

from .optim import ElectraAdam


#: the encoder shape of ELECTRA's and Electric's quick presets when the 3x throughput goal was
#: set (both have since become smaller); each paper's bench also measures its model at this shape
GOAL_ENCODER = {"layers": 4, "hidden": 128, "embedding": 128, "heads": 2, "ffn": 512}
GOAL_VOCAB = 8192


def matmul_peak(dtype: torch.dtype = torch.bfloat16, n: int = 2048, repeats: int = 20) -> float:
    """FLOP/s of an ``n^3`` matmul in ``dtype`` (best of ``repeats``).  On shared virtual machines
    this drifts by up to 3x over minutes: benchmarks measure it before and after their timed
    steps and keep the higher value, so an MFU errs low."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gumbel_max_before(logits: torch.Tensor, temperature: float = 1.0, generator=None) -> torch.Tensor:
    """The previous sampler: ``argmax(logits/T - log E)``, ``E ~ Exponential(1)`` per entry."""
    with torch.no_grad():
        x = logits.detach().float() / temperature
        e = torch.empty(x.shape).exponential_(generator=generator).clamp_min_(1e-20).to(x.device)
        return (x - e.log_()).argmax(-1)


def cross_entropy_before(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The previous per-row loss: ``F.cross_entropy`` on an fp32 copy of the logits."""
    return torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")


def argmax_hit_before(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The previous accuracy metric: ``argmax`` over the vocabulary, compared with the target."""
    with torch.no_grad():
        return (logits.argmax(-1) == targets).float()


class LoopAdam(ElectraAdam):
    """The previous optimiser step: the same update, one parameter at a time in Python."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v, g = state["step"], state["exp_avg"], state["exp_avg_sq"], p.grad
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                if group["bias_correction"]:
                    update = (m / (1 - b1**t)).div_((v / (1 - b2**t)).sqrt_().add_(eps))
                else:
                    update = m / v.sqrt().add_(eps)
                if wd != 0:
                    update.add_(p, alpha=wd)
                p.add_(update, alpha=-lr)


def train_step(model, opt, batch: dict, bf16: bool = True, foreach_clip: bool | None = None) -> float:
    """One optimiser step of ``model(batch) -> (loss, metrics)``; returns its seconds.
    ``foreach_clip``: the gradient norm in one foreach call (as :func:`discern.train.fit` does
    now) rather than one call per parameter (PyTorch's default on the CPU, the previous path)."""
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, _ = model(batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=foreach_clip)
    opt.step()
    return time.perf_counter() - t


def step_flops(model, batch: dict) -> float:
    """FLOPs of one forward + backward of ``model(batch)``, counted by torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss, _ = model(batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def compare(ours: tuple, before: tuple, batches: list[dict],
            patch: Callable[[bool], None]) -> tuple[list[float], list[float]]:
    """Seconds of each of ``len(batches) - 1`` timed steps per side, alternating sides after one
    warm-up step each; ``patch(True)`` installs our code path, ``patch(False)`` the previous one."""
    (m_ours, o_ours), (m_before, o_before) = ours, before
    patch(True)
    train_step(m_ours, o_ours, batches[0], foreach_clip=True)
    patch(False)
    train_step(m_before, o_before, batches[0])
    t_ours, t_before = [], []
    for b in batches[1:]:
        patch(False)
        t_before.append(train_step(m_before, o_before, b))
        patch(True)
        t_ours.append(train_step(m_ours, o_ours, b, foreach_clip=True))
    return t_ours, t_before


def step_ratio(t_ours: list[float], t_before: list[float], seed: int = 0) -> dict:
    """Examples/s of our path over the previous one (equal batches: the previous path's total step
    seconds over ours) with a 95% percentile bootstrap interval over the alternating step pairs
    (:func:`discern.metrics.stats.cluster_bootstrap_ratio`).  The interval is the precision of one
    run; runs hours apart on a shared machine differ by more (the READMEs record such runs)."""
    from discern.metrics.stats import cluster_bootstrap_ratio

    res = cluster_bootstrap_ratio(t_before, t_ours, seed=seed)
    return {"ratio": res["estimate"], "ci": res["ci"], "pairs": res["n"], "test": res["test"]}
