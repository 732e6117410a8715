"""BAM's three steps as the command line and the reproduction both run them.

1. fine-tune one single-task teacher per task (the recipe of ``discern.tasks``) and save its
   train-set outputs by example id (``teachers.py``);
2. train the multi-task student on gold labels only (plain multi-task learning), or
3. distil the teachers into it, with teacher annealing or a fixed lambda (``student.py``,
   ``targets.py``; paper section 3).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .config import Config
from .teachers import TeacherOutputs, load_teacher, save_teacher

VARIANTS = ("single", "multi-task", "bam-no-anneal", "bam")  # the reproduction's four models


def encoder_folder(name: str) -> Path:
    """A named encoder (``minilm``, the packaged MiniLM-L6; ``mpnet-base``) or any Hugging Face encoder folder."""
    from discern.data.models import is_model_name, model_path

    if is_model_name(name) and not Path(name).exists():
        return model_path(name)
    return Path(name)


def load_tasks(cfg: Config):
    from discern.tasks import get_task

    return [get_task(n, max_train=cfg.max_train, max_dev=cfg.max_eval, max_test=cfg.max_eval) for n in cfg.tasks]


def train_teacher(cfg: Config, task, seed: int, out: Path) -> dict:
    """Fine-tune one single-task teacher; save its train-set outputs by example id at ``out``."""
    from discern.tasks import FinetuneConfig, finetune_from_pretrained

    t = cfg.teacher
    ft = FinetuneConfig(lr=t.lr, layerwise_lr_decay=t.layerwise_lr_decay, epochs=t.epochs,
                        regression_epochs=t.regression_epochs, batch_size=t.batch_size, max_length=t.max_length,
                        bf16=t.bf16, seed=seed, predict_train=True)
    res = finetune_from_pretrained(encoder_folder(cfg.encoder), task, ft)
    if task.kind == "classification":
        outputs = res["logits"]["train"]
    else:
        outputs = {k: [v] for k, v in res["predictions"]["train"].items()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_teacher(out, TeacherOutputs(task.name, task.kind, outputs))
    return {"dev": res["dev"], "test": res["test"], "outputs": str(out)}


def load_teachers(folder: str | Path, tasks) -> dict[str, TeacherOutputs]:
    """``folder/<task>.json`` for every task (a missing file is one clear error)."""
    return {t.name: load_teacher(Path(folder) / f"{t.name}.json") for t in tasks}


def distill(cfg: Config, tasks, seed: int, teachers: dict[str, TeacherOutputs] | None, anneal: bool = True,
            run=None):
    """Train the multi-task student from ``cfg.encoder``: BAM with ``teachers`` (lambda 0 -> 1 with
    ``anneal``, else fixed at ``student.distill_weight``), plain multi-task learning without.
    Returns ``(model, tokenizer, config used, training info)``."""
    from transformers import AutoModel, AutoTokenizer

    from .student import train_student

    folder = encoder_folder(cfg.encoder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    scfg = dataclasses.replace(cfg.student, seed=seed, teacher_annealing=anneal)
    model, info = train_student(AutoModel.from_pretrained(str(folder)), tok, tasks, scfg, teachers, run=run)
    return model, tok, scfg, info


def train_variant(cfg: Config, tasks, seed: int, variant: str, teachers: dict[str, TeacherOutputs] | None) -> dict:
    """One student of the reproduction (``multi-task``, ``bam-no-anneal`` or ``bam``): its dev and
    test metrics per task and its training record."""
    from .student import evaluate

    if variant not in VARIANTS[1:]:
        raise ValueError(f"unknown student variant {variant!r}")
    model, tok, scfg, info = distill(cfg, tasks, seed, None if variant == "multi-task" else teachers,
                                     anneal=variant == "bam")
    return {"dev": evaluate(model, tok, tasks, "dev", scfg.max_length),
            "test": evaluate(model, tok, tasks, "test", scfg.max_length),
            "steps": info["steps"], "train_seconds": info["train_seconds"], "multiples": info["multiples"],
            "loss_weights": info["loss_weights"]}
