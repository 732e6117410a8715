"""Distillation targets with teacher annealing (paper section 3; the official code's
``get_prediction_module`` in ``bam/task_specific/classification/classification_tasks.py``).

lambda = step / total_steps rises linearly from 0 (pure distillation) to 1 (pure gold labels);
without annealing it stays at 0.5.  Classification target: lambda * onehot(y) + (1 - lambda) *
softmax(teacher logits) (temperature 1), loss = cross-entropy against it; regression target:
lambda * y + (1 - lambda) * teacher prediction, loss = squared error.  In a mixed batch every
example runs every task's head, and only its own task's loss counts.

Shapes: B examples in a batch, C classes of one task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def teacher_lambda(step: int, total_steps: int, anneal: bool = True, fixed: float = 0.5) -> float:
    """Weight of the gold label at ``step`` (0-based count of finished steps)."""
    if not anneal:
        return fixed
    if total_steps <= 0:
        return 1.0
    return min(1.0, max(0.0, step / total_steps))


def classification_targets(labels: torch.Tensor, teacher_logits: torch.Tensor | None, lam: float,
                           num_classes: int) -> torch.Tensor:
    """(B,) int labels and (B, C) teacher logits -> (B, C) soft targets."""
    onehot = F.one_hot(labels.long(), num_classes).float()
    if teacher_logits is None:
        return onehot
    return lam * onehot + (1.0 - lam) * teacher_logits.float().softmax(-1)


def regression_targets(labels: torch.Tensor, teacher_preds: torch.Tensor | None, lam: float) -> torch.Tensor:
    """(B,) labels and teacher predictions -> (B,) targets."""
    if teacher_preds is None:
        return labels.float()
    return lam * labels.float() + (1.0 - lam) * teacher_preds.float()


def distill_loss(outputs: dict[str, torch.Tensor], task_ids: torch.Tensor, tasks: list[str], kinds: dict[str, str],
                 targets: dict[str, torch.Tensor], weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Mean over the batch of each example's loss on its *own* task.

    ``outputs[t]``: (B, C_t) head outputs for every example; ``task_ids``: (B,) index into
    ``tasks`` (``len(tasks)`` marks padding, which contributes nothing); ``targets[t]``: (B, C_t)
    soft targets or (B,) regression targets, read only where ``task_ids`` selects ``t``;
    ``weights``: (B,) per-example loss weights (task weighting), default 1."""
    B = task_ids.shape[0]
    per_example = torch.zeros(B, device=task_ids.device)
    per_task: dict[str, torch.Tensor] = {}
    for i, t in enumerate(tasks):
        mine = task_ids == i  # (B,)
        if not mine.any():
            continue
        out = outputs[t][mine].float()
        if kinds[t] == "regression":
            loss = (out.reshape(-1) - targets[t][mine].float()) ** 2
        else:
            loss = -(targets[t][mine] * out.log_softmax(-1)).sum(-1)
        per_example = per_example.index_put((mine.nonzero()[:, 0],), loss)
        per_task[f"loss/{t}"] = loss.detach().mean()
    real = (task_ids < len(tasks)).float()
    w = real if weights is None else real * weights.float()
    n_real = real.sum().clamp_min(1.0)
    loss = (per_example * w).sum() / n_real
    return loss, {"loss": loss.detach(), "examples": n_real.detach(), **per_task}
