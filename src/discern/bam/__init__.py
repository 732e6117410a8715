"""BAM!: born-again multi-task networks with teacher annealing (Clark et al., ACL 2019).

Public names load lazily, so ``import discern.bam`` stays light."""

from discern.core.paper import Paper

PAPER = Paper("bam", title="BAM! Born-Again Multi-Task Networks for Natural Language Understanding (Clark et al., ACL 2019)", package=__name__, number=3)

from discern.core.lazy import lazy_names

_NAMES = {
    "task_multiples": "weighting", "loss_weights": "weighting", "sampling_shares": "weighting",
    "teacher_lambda": "targets", "classification_targets": "targets", "regression_targets": "targets",
    "distill_loss": "targets",
    "TeacherOutputs": "teachers", "align_teacher": "teachers", "load_teacher": "teachers",
    "save_teacher": "teachers",
    "MultiTaskModel": "student", "StudentConfig": "student", "train_student": "student", "evaluate": "student",
    "save_student": "student", "load_student": "student",
    "train_teacher": "train", "distill": "train",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_names(__name__, _NAMES)
