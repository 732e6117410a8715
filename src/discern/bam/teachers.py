"""Teacher outputs on the training set, saved and aligned by example id (the official code's
``write_distill_outputs``, keyed by ``eid``).

A teacher's file holds, for one task, the train-set outputs keyed by example id: logits for
classification, the predicted value for regression.  The student looks up every one of its
training examples; a missing id stops the run with an error naming the task and the first
missing id (the official code fails with a bare ``KeyError``, google-research#124).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from discern.core import DataError, atomic_write_json
from discern.core.files import brief, is_finite_number, read_json


@dataclass
class TeacherOutputs:
    task: str
    kind: str  # classification | regression
    outputs: dict[str, list[float]]  # example id -> logits (classification) or [value] (regression)


def save_teacher(path: str | Path, teacher: TeacherOutputs) -> None:
    atomic_write_json(Path(path), {"task": teacher.task, "kind": teacher.kind, "outputs": teacher.outputs})


def load_teacher(path: str | Path) -> TeacherOutputs:
    """Read a file written by :func:`save_teacher`.  Anything else (bad bytes or JSON, a missing or mistyped
    field, a non-finite output, rows of different lengths) is a one-line DataError
    ``<path>: malformed teacher outputs (...)``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no teacher outputs (run: discern bam teachers)")
    bad = f"{p}: malformed teacher outputs"
    try:
        d = read_json(p, label=str(p))
    except DataError as e:  # bad bytes, broken or too deeply nested JSON
        raise DataError(f"{bad} ({str(e)[len(str(p)) + 2:]})") from None
    if not isinstance(d, dict):
        raise DataError(f"{bad} (expected a JSON object, got {_json_type(d)})")
    for key in ("task", "kind", "outputs"):
        if key not in d:
            raise DataError(f"{bad} (KeyError: {key!r})")  # the wording older versions gave
    if not isinstance(d["task"], str) or not d["task"]:
        raise DataError(f"{bad} ('task' must be a task name, got {brief(d['task'])})")
    if d["kind"] not in ("classification", "regression"):
        raise DataError(f"{bad} ('kind' must be 'classification' or 'regression', got {brief(d['kind'])})")
    if not isinstance(d["outputs"], dict):
        raise DataError(f"{bad} ('outputs' must be an object keyed by example id, got {_json_type(d['outputs'])})")
    out: dict[str, list[float]] = {}
    width = None
    for k, v in d["outputs"].items():
        row = v if isinstance(v, list) else [v]
        if not row or not all(is_finite_number(x) for x in row):
            raise DataError(f"{bad} (example {brief(k)}: expected finite numbers, got {brief(v)})")
        if width is None:
            width = len(row)
        if len(row) != width or (d["kind"] == "regression" and width != 1):
            want = "1 value (regression)" if d["kind"] == "regression" else f"{width} logits like the first example"
            raise DataError(f"{bad} (example {brief(k)}: expected {want}, got {len(row)})")
        out[str(k)] = [float(x) for x in row]
    return TeacherOutputs(d["task"], d["kind"], out)


def _json_type(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(
        type(v), "a number")


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
