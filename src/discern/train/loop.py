"""One model-agnostic training loop.

A method hands in three plain things:

- ``model``: an ``nn.Module`` (wrapped in DDP here when launched by ``torchrun``);
- ``step_fn(model, batch) -> (loss, metrics)``: the method's objective for one micro-batch;
- ``batch_fn(step, micro, rank, world) -> batch``: a deterministic function of its arguments,
  so a resumed run sees exactly the data it would have seen.

Every optimiser step re-seeds torch's global generator from ``(seed, step, rank)``, so dropout
and sampling inside ``step_fn`` are a function of the step too: ``--resume`` continues
bit-for-bit.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from discern.core import Run, derive_seed, load_checkpoint, progress, save_checkpoint
from discern.core import dist as ddist
from discern.core.config import check_choices, check_ranges
from discern.core.errors import CheckpointError, ConfigError
from discern.nn.kernels import KERNELS

from .optim import build_optimizer, lr_multiplier, param_groups as make_param_groups


@dataclass
class TrainConfig:
    steps: int = 1000  # optimiser steps
    batch_size: int = 32  # global examples per optimiser step (split over ranks and micro-batches)
    lr: float = 5e-4  # peak learning rate
    warmup_steps: int = 0  # linear warm-up length in steps (used when warmup_fraction is 0)
    warmup_fraction: float = 0.0  # warm-up as a fraction of steps (fine-tuning: 0.1)
    schedule: str = "electra"  # electra (warm-up x linear decay), sequential, constant
    optimizer: str = "electra_adam"  # electra_adam (BERT Adam, no bias correction) or adamw
    bias_correction: bool = False  # Adam bias correction (official ELECTRA: off)
    weight_decay: float = 0.01  # decoupled; LayerNorm and biases excluded
    adam_eps: float = 1e-6
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    clip_norm: float = 1.0  # global gradient-norm clipping (0 = off)
    accumulation: int = 1  # micro-batches per optimiser step
    bf16: bool = False  # bf16 autocast for forward/backward (parameters stay fp32)
    log_every: int = 10  # steps between metrics.jsonl records
    eval_every: int = 0  # steps between eval_fn calls (0 = only at the end)
    checkpoint_every: int = 0  # steps between checkpoints (0 = only at the end)
    seed: int = 0

    def check(self, prefix: str = "train.") -> None:
        """A one-line :class:`~discern.core.errors.ConfigError` for a value no run can train with
        (a step count below 1, a negative learning rate, beta outside [0, 1), an unknown schedule)."""
        check_ranges(self, {
            "steps": "[1, inf)", "batch_size": "[1, inf)", "lr": "[0, inf)", "warmup_steps": "[0, inf)",
            "warmup_fraction": "[0, 1]", "weight_decay": "[0, inf)", "adam_eps": "(0, inf)", "adam_b1": "[0, 1)",
            "adam_b2": "[0, 1)", "clip_norm": "[0, inf)", "accumulation": "[1, inf)", "log_every": "[1, inf)",
            "eval_every": "[0, inf)", "checkpoint_every": "[0, inf)"}, prefix)
        check_choices(self, {"schedule": ("electra", "sequential", "constant"),
                             "optimizer": ("electra_adam", "adamw")}, prefix)

    @property
    def warmup(self) -> int:
        if self.warmup_fraction > 0:
            return int(round(self.warmup_fraction * self.steps))
        return self.warmup_steps


def check_pretraining(cfg) -> None:
    """The checks ELECTRA's and Electric's configs share (one-line ConfigErrors): the encoder's
    shape, dropout, loss weights and temperature, the pre-training data, and the training loop."""
    m = cfg.model
    check_choices(cfg, {"model.attention": KERNELS})
    check_ranges(cfg, {
        "model.layers": "[1, inf)", "model.hidden": "[1, inf)", "model.embedding": "[1, inf)",
        "model.heads": "[1, inf)", "model.ffn": "[1, inf)", "model.max_len": "[3, inf)",
        "model.init_std": "[0, inf)", "model.dropout": "[0, 1)", "model.attention_dropout": "[0, 1)",
        "model.disc_weight": "[0, inf)", "model.gen_weight": "[0, inf)", "model.temperature": "(0, inf)",
        "data.vocab_size": "[16, inf)", "data.seq_len": f"[3, {m.max_len}]", "data.max_documents": "[0, inf)",
        "data.eval_examples": "[0, inf)"})
    if m.hidden % m.heads:
        raise ConfigError(f"config key 'model.heads' must divide model.hidden={m.hidden}, got {m.heads}")
    cfg.train.check()


@dataclass
class TrainState:
    step: int = 0
    last_metrics: dict = field(default_factory=dict)
    last_eval: dict = field(default_factory=dict)
    elapsed: float = 0.0  # seconds spent in training steps across resumes
    examples: int = 0


CKPT_NAME = "last.pt"


def fit(
    model: torch.nn.Module,
    step_fn: Callable[[torch.nn.Module, Any], tuple[torch.Tensor, dict]],
    batch_fn: Callable[[int, int, int, int], Any],
    cfg: TrainConfig,
    run: Run | None = None,
    *,
    groups: list[dict] | None = None,
    eval_fn: Callable[[torch.nn.Module], dict] | None = None,
    resume: bool = False,
    desc: str = "train",
    stop_after: int | None = None,
) -> TrainState:
    """Train ``model`` for ``cfg.steps`` optimiser steps; returns the final :class:`TrainState`.

    ``groups`` are parameter groups with optional ``lr_scale`` (layer-wise LR decay); default:
    weight decay on everything but LayerNorm and biases.  ``stop_after`` ends the call after
    that many steps (used to simulate an interrupted run); the checkpoint is written first.
    """
    rank, world = ddist.rank(), ddist.world_size()
    if cfg.batch_size % (world * cfg.accumulation) != 0:
        raise ValueError(f"train.batch_size={cfg.batch_size} is not divisible by "
                         f"world size {world} x accumulation {cfg.accumulation}")
    if groups is None:
        groups = make_param_groups(model, cfg.weight_decay)
    opt = build_optimizer(groups, cfg.optimizer, cfg.lr, (cfg.adam_b1, cfg.adam_b2), cfg.adam_eps,
                          cfg.bias_correction)
    params = [p for g in opt.param_groups for p in g["params"]]
    state = TrainState()

    ckpt_path = run.checkpoints / CKPT_NAME if run is not None else None
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {ckpt_path} does not match this model: "
                                  f"{str(e).splitlines()[0][:160]}") from None
        state = TrainState(**ck["state"])
        run.truncate_metrics(state.step)

    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model)

    device_type = "cuda" if next(model.parameters()).is_cuda else "cpu"
    autocast = (lambda: torch.autocast(device_type, dtype=torch.bfloat16)) if cfg.bf16 \
        else contextlib.nullcontext
    window: dict[str, list[float]] = {}
    bar = progress(total=cfg.steps, initial=state.step, desc=desc, enabled=ddist.is_main())

    def save() -> None:
        if run is not None and ddist.is_main():
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "state": state.__dict__,
                "train_config": cfg.__dict__,
            })
        ddist.barrier()

    def evaluate() -> None:
        if eval_fn is None:
            return
        model.eval()
        with torch.no_grad(), autocast():
            res = eval_fn(model)
        model.train()
        state.last_eval = {k: float(v) for k, v in res.items()}
        if run is not None:
            run.log({"step": state.step, **{f"eval/{k}": v for k, v in state.last_eval.items()}})

    model.train()
    steps_this_call = 0
    while state.step < cfg.steps:
        t0 = time.perf_counter()
        step = state.step
        torch.manual_seed(derive_seed(cfg.seed, "step", step, rank))
        mult = lr_multiplier(step, cfg.steps, cfg.warmup, cfg.schedule)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * g.get("lr_scale", 1.0) * mult
        opt.zero_grad(set_to_none=True)
        for micro in range(cfg.accumulation):
            batch = batch_fn(step, micro, rank, world)
            sync = micro == cfg.accumulation - 1 or world == 1
            ctx = contextlib.nullcontext() if sync else ddp_model.no_sync()
            with ctx:
                with autocast():
                    loss, metrics = step_fn(ddp_model, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss.item()} at step {step}")
                (loss / cfg.accumulation).backward()
            window.setdefault("loss", []).append(float(loss.detach()))
            for k, v in metrics.items():
                window.setdefault(k, []).append(float(v))
        if cfg.clip_norm > 0:
            gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm, foreach=True)  # one call (PyTorch's default loops on the CPU)
            window.setdefault("grad_norm", []).append(float(gnorm))
        opt.step()
        state.step += 1
        state.examples += cfg.batch_size
        state.elapsed += time.perf_counter() - t0
        steps_this_call += 1
        bar.update(1)
        if ddist.is_main():
            bar.set_postfix(loss=f"{window['loss'][-1]:.3f}", refresh=False)
        if state.step % cfg.log_every == 0 or state.step == cfg.steps:
            rec = {k: sum(v) / len(v) for k, v in window.items()}
            rec["lr"] = cfg.lr * mult
            rec["examples_per_s"] = state.examples / max(state.elapsed, 1e-9)
            state.last_metrics = rec
            if run is not None:
                run.log({"step": state.step, **rec})
            window.clear()
        if cfg.eval_every and state.step % cfg.eval_every == 0 and state.step < cfg.steps:
            evaluate()
        if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and state.step < cfg.steps:
            save()
        if stop_after is not None and steps_this_call >= stop_after and state.step < cfg.steps:
            save()
            bar.close()
            return state
    bar.close()
    evaluate()
    save()
    return state

