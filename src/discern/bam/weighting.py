"""Task sampling for the multi-task student (the official ``bam/data/task_weighting.py``).

Each task's share of the mixed training stream should be proportional to |D|^0.75.  As in the
official code this is done with integer *dataset multiples* (a small dataset is repeated) plus
per-example *loss weights* that correct the rounding:

* multiple_t = max(1, round((|D_max| / |D_t|) ^ (1 - exponent))), so the largest task appears
  once and every task's repeated size approximates |D_max|^(1-e) * |D_t|^e;
* weight_t = c * |D_t|^e / (multiple_t * |D_t|), with c chosen so that the expected weight of an
  example of the mixed stream is 1.

For GLUE sizes (MRPC and STS counted after ``double_unordered``) this gives the multiples
CoLA x3, MNLI x1, MRPC x3, QNLI x1, QQP x1, SST x2, STS x2, RTE x4 and weights 0.77-1.37.
Without multiples every task appears once and weight_t = c / |D_t|^(1-e).
"""

from __future__ import annotations

from typing import Mapping

from discern.core import DiscernError


def _check(sizes: Mapping[str, int]) -> None:
    if not sizes:
        raise DiscernError("task weighting: no tasks")
    bad = [t for t, s in sizes.items() if int(s) < 1]
    if bad:
        raise DiscernError(f"task weighting: task {bad[0]!r} has no training examples")


def sampling_shares(sizes: Mapping[str, int], exponent: float = 0.75) -> dict[str, float]:
    """The target share of each task in the mixed stream, proportional to |D|^exponent."""
    _check(sizes)
    raw = {t: float(s) ** exponent for t, s in sizes.items()}
    total = sum(raw.values())
    return {t: v / total for t, v in raw.items()}


def task_multiples(sizes: Mapping[str, int], exponent: float = 0.75) -> dict[str, int]:
    """How many times each task's training set is repeated in one pass of the mixed stream."""
    _check(sizes)
    biggest = max(sizes.values())
    return {t: max(1, round((biggest / s) ** (1.0 - exponent))) for t, s in sizes.items()}


def loss_weights(sizes: Mapping[str, int], exponent: float = 0.75, multiples: bool = True) -> dict[str, float]:
    """Per-example loss weight of each task; the mean weight over the mixed stream is 1."""
    _check(sizes)
    mult = task_multiples(sizes, exponent) if multiples else {t: 1 for t in sizes}
    stream = {t: mult[t] * s for t, s in sizes.items()}  # examples of t in one pass
    target = {t: float(s) ** exponent for t, s in sizes.items()}
    c = sum(stream.values()) / sum(target.values())
    return {t: c * target[t] / stream[t] for t in sizes}
