"""BAM's claims are strict comparisons decided by a paired bootstrap over tasks x seeds."""

import numpy as np
import pytest

from discern.bam.experiment import _claim, difference_grid, seeds_of
from discern.bam.config import tiny
from discern.core import Claim
from discern.metrics.stats import paired_bootstrap_grid

TASKS = ["a", "b", "c"]


def _scores(bam, single):
    return {"bam": dict(zip(TASKS, bam)), "single": dict(zip(TASKS, single))}


def _decide(bam, single, n_boot=2000):
    scores = _scores(bam, single)
    grid = paired_bootstrap_grid(difference_grid(scores, "bam", "single", TASKS), n_boot=n_boot, seed=5)
    avg = {k: float(np.mean([np.mean(v) for v in d.values()])) for k, d in scores.items()}
    return grid, _claim("s", "p", "BAM vs single", grid, avg, avg, "bam", "single")


def test_difference_grid_pairs_each_task_and_seed():
    scores = _scores([[70.0, 72.0], [50.0, 51.0], [60.0, 60.0]], [[69.0, 75.0], [40.0, 52.0], [60.0, 61.0]])
    assert difference_grid(scores, "bam", "single", TASKS) == [[1.0, -3.0], [10.0, -1.0], [0.0, -1.0]]
    with pytest.raises(ValueError):  # a missing seed is an error, never a silently shorter pair list
        difference_grid(_scores([[1.0], [1.0], [1.0, 2.0]], [[1.0], [1.0], [1.0]]), "bam", "single", TASKS)


def test_student_above_teachers_in_every_cell_is_held():
    grid, c = _decide([[71.0, 72.0], [55.0, 56.5], [62.0, 61.5]], [[70.0, 70.5], [54.0, 55.0], [60.0, 60.5]])
    assert grid["ci"][0] > 0 and c.verdict == "held"
    assert c.ci == tuple(grid["ci"]) and c.p_value == grid["p_value"] == 0.0
    assert grid["mean"] == pytest.approx(np.mean([1.0, 1.5, 1.0, 1.5, 2.0, 1.0]))
    assert "two-way paired bootstrap over 3 tasks x 2 seeds" in c.ours and "two-way paired bootstrap" in c.test


def test_student_below_teachers_in_every_cell_is_not_held():
    _, c = _decide([[60.0, 61.0], [50.0, 50.0], [40.0, 41.0]], [[62.0, 63.0], [51.0, 52.0], [43.0, 42.0]])
    assert c.verdict == "not held" and c.ci[1] < 0


def test_a_tie_or_mixed_signs_is_inconclusive():
    _, tie = _decide([[60.0, 61.0], [50.0, 50.0], [40.0, 41.0]], [[60.0, 61.0], [50.0, 50.0], [40.0, 41.0]])
    assert tie.verdict == "inconclusive" and tie.ci == (0.0, 0.0)
    _, mixed = _decide([[64.0, 58.0], [50.0, 53.0], [40.0, 38.0]], [[60.0, 61.0], [52.0, 50.0], [41.0, 39.0]])
    assert mixed.ci[0] < 0 < mixed.ci[1] and mixed.verdict == "inconclusive"


def test_one_seed_is_a_bootstrap_over_tasks_and_says_so():
    grid, c = _decide([[71.0], [55.0], [62.0]], [[70.0], [54.0], [60.0]])
    assert grid["n_seeds"] == 1 and grid["n_tasks"] == 3
    assert "bootstrap over the 3 tasks only (one seed" in c.ours
    assert Claim.from_dict(c.to_dict()) == c


def test_training_seeds_follow_the_run_seed():
    cfg = tiny()
    cfg.seeds, cfg.seed = 3, 7
    assert seeds_of(cfg) == [7, 8, 9]
