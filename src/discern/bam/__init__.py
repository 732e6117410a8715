"""BAM!: born-again multi-task networks with teacher annealing (Clark et al., ACL 2019).

Public names load lazily, so ``import discern.bam`` stays light.  Importing it registers the saved
student's model type (``discern_bam_student``) with ``AutoConfig`` / ``AutoModel`` as soon as
``transformers`` is imported (now, if it already is), so ``AutoModel.from_pretrained(student_folder)``
works after ``import discern.bam``."""

from discern.core.paper import Paper

PAPER = Paper("bam", title="BAM! Born-Again Multi-Task Networks for Natural Language Understanding (Clark et al., ACL 2019)", package=__name__, number=3,
              data={"tiny": ("spam-assassin", "sotu"), "*": ("brown", "spam-assassin", "sotu")})

from discern.core.lazy import lazy_names, register_with_transformers

_NAMES = {
    "task_multiples": "weighting", "loss_weights": "weighting", "sampling_shares": "weighting",
    "teacher_lambda": "targets", "classification_targets": "targets", "regression_targets": "targets",
    "distill_loss": "targets",
    "TeacherOutputs": "teachers", "align_teacher": "teachers", "load_teacher": "teachers",
    "save_teacher": "teachers",
    "MultiTaskModel": "student", "StudentConfig": "student", "train_student": "student", "evaluate": "student",
    "save_student": "student", "load_student": "student", "MultiTaskStudent": "student",
    "MultiTaskStudentConfig": "student",
    "train_teacher": "train", "distill": "train",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_names(__name__, _NAMES)


register_with_transformers(__name__, "student")
