"""The multi-task student (paper section 3, reference 1.4-1.6).

One shared encoder and one dense head per task on the [CLS] vector (dropout 0.1).  Training
examples of all tasks are pooled, repeated by their dataset multiples and shuffled into mixed
batches; every example runs every head and only its own task's loss counts, scaled by its
task's loss weight.  Targets mix gold labels and teacher outputs with the teacher-annealing
weight lambda of the current step (``targets.py``); without teachers the student is plain
multi-task learning on gold labels.  Optimisation: Adam without bias correction, layer-wise
LR decay, warm-up then linear decay, clipping 1.0 (the shared ``discern.train`` loop, so runs
resume and scale out under ``torchrun``).

Dimension legend: B batch, T tokens, H hidden size, C_t classes of task t.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from discern.core import DiscernError, Run, generator
from discern.tasks import Task, collate, encode_examples, encoder_layers
from discern.train import TrainConfig, epoch_batch, fit, layerwise_lr_scales, param_groups

from .targets import classification_targets, distill_loss, regression_targets, teacher_lambda
from .teachers import TeacherOutputs, align_teacher
from .weighting import loss_weights, task_multiples


@dataclass
class StudentConfig:
    lr: float = 1e-4
    layerwise_lr_decay: float = 0.9
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    batch_size: int = 128
    epochs: float = 6.0
    max_steps: int = 0  # > 0 overrides the epochs
    max_length: int = 128
    dropout: float = 0.1
    task_weight_exponent: float = 0.75
    dataset_multiples: bool = True
    teacher_annealing: bool = True  # lambda 0 -> 1 over training; else fixed at distill_weight
    distill_weight: float = 0.5
    optimizer: str = "electra_adam"
    bias_correction: bool = False
    clip_norm: float = 1.0
    bf16: bool = False
    seed: int = 0
    log_every: int = 10
    eval_batch_size: int = 64


class MultiTaskModel(nn.Module):
    """Shared encoder + ``heads[t] = linear(dropout(h_[CLS]))`` for every task t."""

    def __init__(self, encoder: nn.Module, num_outputs: dict[str, int], dropout: float = 0.1, seed: int = 0):
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, n) for t, n in num_outputs.items()})
        std = float(getattr(encoder.config, "initializer_range", 0.02))
        with torch.no_grad():
            for t, head in self.heads.items():
                w = torch.empty_like(head.weight)
                nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std, generator=generator(seed, "head", t))
                head.weight.copy_(w)
                head.bias.zero_()

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> dict[str, torch.Tensor]:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        h = self.dropout(self.encoder(**kwargs).last_hidden_state[:, 0])  # (B, H)
        return {t: head(h) for t, head in self.heads.items()}  # each (B, C_t)


@torch.no_grad()
def predict_task(model: MultiTaskModel, tokenizer, task: Task, examples: Sequence, max_length: int = 128,
                 batch_size: int = 64) -> np.ndarray:
    """Raw outputs (N, C_t) of ``task``'s head for ``examples``."""
    was = model.training
    model.eval()
    enc = encode_examples(tokenizer, examples, max_length)
    dev = next(model.parameters()).device
    out = np.zeros((len(enc), task.num_outputs), dtype=np.float32)
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]["input_ids"]))
    pad = tokenizer.pad_token_id or 0
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = collate([enc[i] for i in idx], pad, dev)
        out[idx] = model(**batch)[task.name].float().cpu().numpy()
    model.train(was)
    return out


def evaluate(model: MultiTaskModel, tokenizer, tasks: Sequence[Task], split: str = "dev",
             max_length: int = 128) -> dict[str, dict]:
    """Each task's metrics on ``split`` from its own head."""
    res = {}
    for task in tasks:
        exs = task.split(split)
        outs = predict_task(model, tokenizer, task, exs, max_length)
        if task.kind == "classification":
            preds = {ex.id: int(np.argmax(o)) for ex, o in zip(exs, outs)}
        else:
            preds = {ex.id: float(o[0]) for ex, o in zip(exs, outs)}
        res[task.name] = task.evaluate(preds, exs)
    return res


def train_student(encoder: nn.Module, tokenizer, tasks: Sequence[Task], cfg: StudentConfig | None = None,
                  teachers: dict[str, TeacherOutputs] | None = None, run: Run | None = None,
                  resume: bool = False, stop_after: int | None = None) -> tuple[MultiTaskModel, dict]:
    """Train the multi-task student; with ``teachers`` (one per task) it is BAM's distillation."""
    cfg = cfg or StudentConfig()
    tasks = list(tasks)
    names = [t.name for t in tasks]
    if teachers is not None:
        missing = [t for t in names if t not in teachers]
        if missing:
            raise DiscernError(f"no teacher outputs for task {missing[0]!r}")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = MultiTaskModel(encoder, {t.name: t.num_outputs for t in tasks}, cfg.dropout, cfg.seed).to(dev)
    for n, p in model.named_parameters():
        if ".pooler." in n:
            p.requires_grad_(False)

    encoded, labels, teach = {}, {}, {}
    for t in tasks:
        encoded[t.name] = encode_examples(tokenizer, t.train, cfg.max_length)
        labels[t.name] = [ex.label for ex in t.train]
        if teachers is not None:  # aligned by example id; a mismatch is a clear error
            teach[t.name] = align_teacher(teachers[t.name], t.name, [ex.id for ex in t.train])
    sizes = {t: len(encoded[t]) for t in names}
    mult = task_multiples(sizes, cfg.task_weight_exponent) if cfg.dataset_multiples else {t: 1 for t in names}
    weights = loss_weights(sizes, cfg.task_weight_exponent, cfg.dataset_multiples)
    pool = [(ti, i) for ti, t in enumerate(names) for _ in range(mult[t]) for i in range(sizes[t])]
    steps = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.epochs * len(pool) / cfg.batch_size))
    kinds = {t.name: t.kind for t in tasks}
    n_out = {t.name: t.num_outputs for t in tasks}
    pad = tokenizer.pad_token_id or 0
    order = (cfg.seed, "bam-order")

    def lam_at(step: int) -> float:
        if teachers is None:
            return 1.0
        return teacher_lambda(step, steps, cfg.teacher_annealing, cfg.distill_weight)

    def batch_fn(step: int, micro: int, rank: int, world: int) -> dict:
        idx = epoch_batch(len(pool), cfg.batch_size, step, micro, tc.accumulation, rank, world, order).tolist()
        rows = [pool[i] for i in idx]
        batch = collate([encoded[names[ti]][i] for ti, i in rows], pad, dev)
        task_ids = torch.tensor([ti for ti, _ in rows])
        lam = lam_at(step)
        targets = {}
        for ti, t in enumerate(names):
            mine = [r for r, (tj, _) in enumerate(rows) if tj == ti]
            ex = [rows[r][1] for r in mine]
            if kinds[t] == "regression":
                full = torch.zeros(len(rows))
                if mine:
                    y = torch.tensor([labels[t][i] for i in ex], dtype=torch.float32)
                    tp = torch.from_numpy(teach[t][ex]) if t in teach else None
                    full[mine] = regression_targets(y, tp, lam)
            else:
                full = torch.zeros(len(rows), n_out[t])
                if mine:
                    y = torch.tensor([labels[t][i] for i in ex])
                    tl = torch.from_numpy(teach[t][ex]) if t in teach else None
                    full[mine] = classification_targets(y, tl, lam, n_out[t])
            targets[t] = full.to(dev)
        batch["task_ids"] = task_ids.to(dev)
        batch["weights"] = torch.tensor([weights[names[ti]] for ti, _ in rows], device=dev)
        batch["targets"] = targets
        batch["lam"] = lam
        return batch

    def step_fn(m: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        outs = m(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        loss, met = distill_loss(outs, batch["task_ids"], names, kinds, batch["targets"], batch["weights"])
        return loss, {"lambda": batch["lam"], **{k: v for k, v in met.items() if k.startswith("loss/")}}

    tc = TrainConfig(steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_fraction=cfg.warmup_fraction,
                     schedule="electra", optimizer=cfg.optimizer, bias_correction=cfg.bias_correction,
                     weight_decay=cfg.weight_decay, clip_norm=cfg.clip_norm, bf16=cfg.bf16,
                     log_every=cfg.log_every, seed=cfg.seed)
    pnames = [n for n, p in model.named_parameters() if p.requires_grad]
    scales = None
    if cfg.layerwise_lr_decay < 1.0:  # heads at the top (n_layers + 2), embeddings at 0 (reference 1.6)
        scales = layerwise_lr_scales(pnames, encoder_layers(model.encoder), cfg.layerwise_lr_decay, bug_compat=True)
    groups = param_groups(model, cfg.weight_decay, scales)
    state = fit(model, step_fn, batch_fn, tc, run, groups=groups, resume=resume, desc="bam student",
                stop_after=stop_after)
    info = {"steps": state.step, "total_steps": steps, "finished": state.step >= steps, "sizes": sizes,
            "multiples": mult, "loss_weights": weights, "config": dataclasses.asdict(cfg),
            "distilled": teachers is not None, "train_seconds": state.elapsed}
    return model, info
