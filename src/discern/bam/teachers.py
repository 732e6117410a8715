"""Teacher outputs on the training set, saved and aligned by example id (the official code's
``write_distill_outputs``, keyed by ``eid``).

A teacher's file holds, for one task, the train-set outputs keyed by example id: logits for
classification, the predicted value for regression.  The student looks up every one of its
training examples; a missing id stops the run with an error naming the task and the first
missing id (the official code fails with a bare ``KeyError``, google-research#124).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from discern.core import DataError, atomic_write_json


@dataclass
class TeacherOutputs:
    task: str
    kind: str  # classification | regression
    outputs: dict[str, list[float]]  # example id -> logits (classification) or [value] (regression)


def save_teacher(path: str | Path, teacher: TeacherOutputs) -> None:
    atomic_write_json(Path(path), {"task": teacher.task, "kind": teacher.kind, "outputs": teacher.outputs})


def load_teacher(path: str | Path) -> TeacherOutputs:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no teacher outputs (run: discern bam teachers)")
    try:
        d = json.loads(p.read_text())
        out = {str(k): [float(x) for x in (v if isinstance(v, list) else [v])] for k, v in d["outputs"].items()}
        return TeacherOutputs(str(d["task"]), str(d["kind"]), out)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{p}: malformed teacher outputs ({type(e).__name__}: {e})") from None


def align_teacher(teacher: TeacherOutputs, task: str, ids: Sequence[str]) -> np.ndarray:
    """Teacher outputs in the order of ``ids``: (N, C) logits or (N,) values."""
    if teacher.task != task:
        raise DataError(f"teacher outputs are for task {teacher.task!r}, not {task!r}")
    missing = next((i for i in ids if i not in teacher.outputs), None)
    if missing is not None:
        n_missing = sum(1 for i in ids if i not in teacher.outputs)
        raise DataError(f"task {task!r}: the teacher has no output for example id {missing!r} "
                        f"({n_missing} of {len(ids)} student examples missing); the student must train on "
                        "the teacher's own training examples (same task build and max_train)")
    arr = np.array([teacher.outputs[i] for i in ids], dtype=np.float32)
    return arr[:, 0] if teacher.kind == "regression" else arr
