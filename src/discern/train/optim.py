"""Optimisers, learning-rate schedules and parameter groups, as ELECTRA implements them.

ELECTRA (``model/optimization.py`` of the official code) uses BERT's ``AdamWeightDecayOptimizer``:
Adam **without bias correction**, eps 1e-6, decoupled weight decay 0.01 that skips LayerNorm
and bias parameters, and a learning rate that is the *product* of a linear warm-up ramp and a
linear decay (both run from step 0), not a warm-up followed by decay.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Iterable

import torch

NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias", "layer_norm", "layernorm", "norm.weight")


class ElectraAdam(torch.optim.Optimizer):
    """Adam with decoupled weight decay; ``bias_correction=False`` is ELECTRA/BERT's variant.

    Update for each parameter ``p`` with gradient ``g``::

        m = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g^2
        u = m_hat / (sqrt(v_hat) + eps) + wd * p      (m_hat = m, v_hat = v without bias correction)
        p = p - lr * u

    With ``bias_correction=True`` this equals ``torch.optim.AdamW``.

    ``fused`` (default: on): one pass over each parameter, its gradient and both moments per
    step (PyTorch's fused AdamW kernel, CPU and CUDA), instead of nine foreach passes; the same
    update up to float rounding.  The kernel always divides by the bias corrections
    ``1 - b^t``; without bias correction it is given a step count at which ``1 - b^t`` rounds
    to exactly 1 for both betas.  Groups whose parameters do not share a step count
    (e.g. after a parameter was frozen and thawed) or whose dtypes the kernel does not take
    use the foreach path.
    """

    #: step count handed to the fused kernel for ``bias_correction=False``: 0.999**1e5 is about
    #: 4e-44, so 1 - b^t is exactly 1 in float32 and float64 for both betas
    NO_CORRECTION_STEP = 1e5

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0, bias_correction: bool = False,
                 fused: bool = True):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction, fused=fused)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            params, grads, ms, vs, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                params.append(p)
                grads.append(p.grad)
                ms.append(state["exp_avg"])
                vs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if not params:
                continue
            if group.get("fused", True) and len(set(steps)) == 1 and _fusable(params, grads):
                t = float(steps[0]) if group["bias_correction"] else self.NO_CORRECTION_STEP
                step_t = torch.tensor(t, device=params[0].device)
                torch._fused_adamw_(params, grads, ms, vs, [], [step_t] * len(params), lr=float(group["lr"]),
                                    beta1=b1, beta2=b2, weight_decay=wd, eps=eps, amsgrad=False, maximize=False)
                continue
            # one fused (foreach) kernel per operation over the whole group instead of a Python
            # loop of small ops per parameter: the same arithmetic, in the same order
            torch._foreach_lerp_(ms, grads, 1 - b1)  # m = b1*m + (1-b1)*g
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
            if group["bias_correction"] and len(set(steps)) == 1:
                t = steps[0]
                denom = torch._foreach_div(vs, 1 - b2**t)
                torch._foreach_sqrt_(denom)
                torch._foreach_add_(denom, eps)
                updates = torch._foreach_div(ms, 1 - b1**t)
                torch._foreach_div_(updates, denom)
            elif group["bias_correction"]:
                denom = [(v / (1 - b2**t)).sqrt_().add_(eps) for v, t in zip(vs, steps)]
                updates = [(m / (1 - b1**t)).div_(d) for m, t, d in zip(ms, steps, denom)]
            else:
                denom = torch._foreach_sqrt(vs)
                torch._foreach_add_(denom, eps)
                updates = torch._foreach_div(ms, denom)
            if wd != 0:
                torch._foreach_add_(updates, params, alpha=wd)
            torch._foreach_add_(params, updates, alpha=-lr)
        return loss


def _fusable(params: list[torch.Tensor], grads: list[torch.Tensor]) -> bool:
    """Whether PyTorch's fused Adam kernel takes these tensors: dense floating-point tensors on
    one CPU or CUDA device, each gradient of its parameter's dtype."""
    dev = params[0].device
    return dev.type in ("cpu", "cuda") and all(
        p.device == dev and p.is_floating_point() and g.dtype == p.dtype and not g.is_sparse
        for p, g in zip(params, grads))


def lr_multiplier(step: int, total: int, warmup: int, kind: str = "electra") -> float:
    """Schedule value at ``step`` (0-based, the step about to be taken).

    - ``electra``: ``(1 - t/T) * min(1, t/W)`` — warm-up and linear decay run simultaneously
      (TF ``polynomial_decay`` power 1 multiplied by the warm-up ramp, ELECTRA ``optimization.py``).
    - ``sequential``: linear warm-up to 1 at ``W``, then linear decay to 0 at ``T``.
    - ``constant``: warm-up, then 1.
    """
    t = float(step)
    warm = min(1.0, t / warmup) if warmup > 0 else 1.0
    if kind == "electra":
        return max(0.0, 1.0 - t / total) * warm
    if kind == "sequential":
        if warmup > 0 and t < warmup:
            return warm
        return max(0.0, (total - t) / max(1.0, total - warmup))
    if kind == "constant":
        return warm
    raise ValueError(f"unknown schedule '{kind}' (electra, sequential, constant)")


_LAYER_RE = re.compile(r"(?:^|\.)(?:layer|layers|h|blocks)\.(\d+)\.")


def layer_depth(name: str, n_layers: int, head_depth: int) -> int:
    """Depth used by layer-wise LR decay: embeddings 0, transformer layer i -> i+1, others head."""
    m = _LAYER_RE.search(name)
    if m:
        return int(m.group(1)) + 1
    if "embed" in name:
        return 0
    return head_depth


def layerwise_lr_scales(names: Iterable[str], n_layers: int, decay: float,
                        bug_compat: bool = True) -> dict[str, float]:
    """Per-parameter LR multipliers for layer-wise decay (ELECTRA fine-tuning).

    ELECTRA uses ``decay ** (n_layers + 2 - depth)`` with the task head at depth
    ``n_layers + 2``; the top transformer layer therefore gets ``decay**2`` instead of
    ``decay**1`` (left over from a removed pooler; google-research/electra#51).
    ``bug_compat=False`` puts the head at ``n_layers + 1`` so the top layer gets ``decay**1``.
    """
    top = n_layers + 2 if bug_compat else n_layers + 1
    return {n: decay ** (top - layer_depth(n, n_layers, top)) for n in names}


def param_groups(model: torch.nn.Module, weight_decay: float, lr_scales: dict[str, float] | None = None,
                 no_decay: tuple[str, ...] = NO_DECAY) -> list[dict]:
    """Groups by (weight decay on/off, LR scale); each group carries ``lr_scale``."""
    groups: dict[tuple[float, float], dict] = {}
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:  # tied weights appear once
            continue
        seen.add(id(p))
        wd = 0.0 if any(nd in name for nd in no_decay) else weight_decay
        scale = (lr_scales or {}).get(name, 1.0)
        key = (wd, scale)
        if key not in groups:
            groups[key] = {"params": [], "names": [], "weight_decay": wd, "lr_scale": scale}
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    return list(groups.values())


def build_optimizer(groups: list[dict], name: str, lr: float, betas: tuple[float, float], eps: float,
                    bias_correction: bool) -> torch.optim.Optimizer:
    clean = [{k: v for k, v in g.items() if k != "names"} for g in groups]
    if name == "electra_adam":
        return ElectraAdam(clean, lr=lr, betas=betas, eps=eps, bias_correction=bias_correction)
    if name == "adamw":
        return torch.optim.AdamW(clean, lr=lr, betas=betas, eps=eps)
    raise ValueError(f"unknown optimizer '{name}' (electra_adam, adamw)")


def global_grad_norm(params: Iterable[torch.Tensor]) -> float:
    total = 0.0
    for p in params:
        if p.grad is not None:
            total += float(p.grad.detach().float().pow(2).sum())
    return math.sqrt(total)
