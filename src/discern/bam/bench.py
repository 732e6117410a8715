"""Benchmark: training examples/s of one multi-task student vs the tasks trained one after another.

Same encoder (MiniLM-L6), tasks, batch size, sequence length, dtype and number of training
examples in one process: the student takes mixed batches through one model; the baseline
fine-tunes a fresh single-task model per task (what a user without a multi-task trainer does),
each for its share of the steps.  Wall time includes building each model and optimiser.
"""

from __future__ import annotations

import time


def bench(quick: bool = False) -> dict:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from discern.tasks import FinetuneConfig
    from discern.tasks.finetune import finetune

    from .config import quick as quick_preset
    from .train import encoder_folder, load_tasks
    from .student import StudentConfig, train_student

    cfg = quick_preset()
    cfg.max_train = 64
    tasks = load_tasks(cfg)
    folder = encoder_folder(cfg.encoder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    per_task = 2 if quick else 8
    steps = per_task * len(tasks)
    bs, length = 16 if quick else 32, cfg.student.max_length

    torch.manual_seed(0)
    t0 = time.perf_counter()
    enc = AutoModel.from_pretrained(str(folder))
    train_student(enc, tok, tasks, StudentConfig(batch_size=bs, max_steps=steps, max_length=length, bf16=True,
                                                 log_every=10**6))
    t_multi = time.perf_counter() - t0

    import dataclasses

    t0 = time.perf_counter()
    for task in tasks:
        train_only = dataclasses.replace(task, splits={**task.splits, "dev": [], "test": []})  # time training only
        enc = AutoModel.from_pretrained(str(folder))
        finetune(enc, tok, train_only, FinetuneConfig(batch_size=bs, max_steps=per_task, max_length=length, bf16=True,
                                                log_every=10**6, layerwise_lr_decay=0.9))
    t_seq = time.perf_counter() - t0
    n = steps * bs
    return {
        "bench": "bam",
        "ratios": {"multitask_vs_sequential_examples_per_s": t_seq / t_multi},
        "goals": {},
        "details": {"examples": n, "tasks": [t.name for t in tasks], "multitask_examples_per_s": n / t_multi,
                    "sequential_examples_per_s": n / t_seq, "batch": bs, "max_length": length},
    }
