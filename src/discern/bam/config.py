"""BAM configuration and presets: ``paper`` holds the official code's defaults (``bam/configure.py``:
teachers batch 32, LR 5e-5, 3 epochs; students batch 128, LR 1e-4, 6 epochs, layer-wise decay 0.9,
task weights |D|^0.75); ``quick`` and ``tiny`` are laptop scale."""

from __future__ import annotations

from dataclasses import dataclass, field

from discern.core.config import check_choices, check_ranges
from discern.core.errors import ConfigError

from .student import HEAD_INPUTS, StudentConfig


@dataclass
class TeacherConfig:
    """Single-task fine-tuning of each teacher (official defaults: batch 32, LR 5e-5, 3 epochs)."""

    lr: float = 5e-5
    layerwise_lr_decay: float = 0.9
    epochs: float = 3.0
    regression_epochs: float = 3.0
    batch_size: int = 32
    max_length: int = 128
    bf16: bool = False


@dataclass
class Config:
    encoder: str = "minilm"  # "minilm" (the packaged MiniLM-L6), or any Hugging Face encoder folder
    tasks: list[str] = field(default_factory=lambda: ["brown-genre", "spam", "sotu-party", "sotu-year"])
    seeds: int = 3  # training seeds seed, seed + 1, ...: each trains the teachers and all three students
    max_train: int = 2000  # train examples per task (teachers and students see the same ones)
    max_eval: int = 500  # dev and test examples per task
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    bootstrap: int = 10_000  # resamples of the paired bootstrap over tasks x seeds that decides each claim
    seed: int = 0

    def __post_init__(self) -> None:
        """A value no run can use is a one-line ConfigError before any work (preset, --config, --set)."""
        check_ranges(self, {
            "seeds": "[1, inf)", "max_train": "[1, inf)", "max_eval": "[1, inf)", "bootstrap": "[1, inf)",
            "teacher.lr": "[0, inf)", "teacher.layerwise_lr_decay": "(0, 1]", "teacher.epochs": "(0, inf)",
            "teacher.regression_epochs": "(0, inf)", "teacher.batch_size": "[1, inf)", "teacher.max_length": "[8, 512]",
            "student.lr": "[0, inf)", "student.layerwise_lr_decay": "(0, 1]", "student.warmup_fraction": "[0, 1]",
            "student.weight_decay": "[0, inf)", "student.batch_size": "[1, inf)", "student.epochs": "(0, inf)",
            "student.max_steps": "[0, inf)", "student.max_length": "[8, 512]", "student.dropout": "[0, 1)",
            "student.task_weight_exponent": "[0, inf)", "student.distill_weight": "[0, 1]",
            "student.clip_norm": "[0, inf)", "student.log_every": "[1, inf)", "student.eval_batch_size": "[1, inf)"})
        check_choices(self, {"student.head_input": HEAD_INPUTS, "student.optimizer": ("electra_adam", "adamw")})
        if not self.tasks:
            raise ConfigError("config key 'tasks' must name at least one task")


def paper() -> Config:
    """The official multi-task defaults: LR 1e-4, batch 128, 6 epochs, decay 0.9, |D|^0.75."""
    return Config()


def quick() -> Config:
    """Minutes on 2 CPU cores: MiniLM-L6, 4 tasks x 160 train examples, 3 seeds, bf16."""
    cfg = Config()
    cfg.max_train, cfg.max_eval = 160, 200
    t = cfg.teacher
    t.lr, t.epochs, t.regression_epochs, t.max_length, t.bf16 = 1e-4, 3.0, 3.0, 64, True
    s = cfg.student
    s.lr, s.batch_size, s.epochs, s.max_length, s.bf16 = 1e-4, 32, 3.0, 64, True
    return cfg


def tiny() -> Config:
    """Seconds, for tests: the real MiniLM on 2 tasks x 32 examples, 1 seed, one epoch."""
    cfg = Config()
    cfg.tasks = ["spam", "sotu-year"]
    cfg.seeds, cfg.max_train, cfg.max_eval = 1, 32, 24
    t = cfg.teacher
    t.lr, t.epochs, t.regression_epochs, t.batch_size, t.max_length = 1e-3, 1.0, 1.0, 8, 48
    s = cfg.student
    s.lr, s.batch_size, s.epochs, s.max_length, s.log_every = 1e-3, 8, 1.0, 48, 2
    return cfg


PRESETS = {"tiny": tiny, "quick": quick, "paper": paper}
