"""Trial plans: balanced Latin squares (Williams designs) and seeded random orders."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from discern.core.errors import DiscernError
from discern.nureality.design import balanced_latin_square, trial_plan, williams_first_row

IDS = [f"s{i}" for i in range(10)]


def test_williams_first_row_exact():
    assert williams_first_row(4) == [0, 1, 3, 2]
    assert williams_first_row(6) == [0, 1, 5, 2, 4, 3]
    assert williams_first_row(5) == [0, 1, 4, 2, 3]
    assert balanced_latin_square(4) == [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    assert balanced_latin_square(3) == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert balanced_latin_square(1) == [[0]]


@pytest.mark.parametrize("n", [2, 4, 6, 8, 10])
def test_williams_even_each_position_once_and_each_adjacent_pair_once(n):
    rows = balanced_latin_square(n)
    assert len(rows) == n
    for pos in range(n):
        assert sorted(r[pos] for r in rows) == list(range(n))
    pairs = Counter((r[j], r[j + 1]) for r in rows for j in range(n - 1))
    assert set(pairs) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert set(pairs.values()) == {1}


@pytest.mark.parametrize("n", [3, 5, 7, 9])
def test_williams_odd_two_squares_each_adjacent_pair_twice(n):
    rows = balanced_latin_square(n)
    assert len(rows) == 2 * n
    for square in (rows[:n], rows[n:]):
        for pos in range(n):
            assert sorted(r[pos] for r in square) == list(range(n))
    pairs = Counter((r[j], r[j + 1]) for r in rows for j in range(n - 1))
    assert set(pairs) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert set(pairs.values()) == {2}


@pytest.mark.parametrize("order", ["latin", "random"])
@pytest.mark.parametrize("n,reps", [(1, 3), (2, 2), (5, 3), (10, 2)])
def test_every_scenario_exactly_repetitions_times_and_blocks_are_permutations(order, n, reps):
    ids = IDS[:n]
    for p in range(12):
        plan = trial_plan(ids, order, reps, p, seed=7)
        assert len(plan) == n * reps
        assert Counter(plan) == {s: reps for s in ids}
        for b in range(reps):
            assert sorted(plan[b * n:(b + 1) * n]) == sorted(ids)


@pytest.mark.parametrize("n", [4, 10])
def test_latin_even_n_consecutive_participants_balanced_in_every_block(n):
    ids, reps = IDS[:n], 3
    for first in (0, 3, n):  # any n consecutive participants: the rows cycle
        plans = [trial_plan(ids, "latin", reps, p, seed=0) for p in range(first, first + n)]
        for b in range(reps):
            blocks = [plan[b * n:(b + 1) * n] for plan in plans]
            for pos in range(n):
                assert sorted(bl[pos] for bl in blocks) == sorted(ids)
            pairs = Counter((bl[j], bl[j + 1]) for bl in blocks for j in range(n - 1))
            assert len(pairs) == n * (n - 1) and set(pairs.values()) == {1}


def test_latin_odd_each_square_balanced_and_pairs_twice_over_2n_participants():
    n, ids, reps = 5, IDS[:5], 2
    plans = [trial_plan(ids, "latin", reps, p, seed=0) for p in range(2 * n)]
    for b in range(reps):
        blocks = [plan[b * n:(b + 1) * n] for plan in plans]
        for group in (blocks[:n], blocks[n:]):
            for pos in range(n):
                assert sorted(bl[pos] for bl in group) == sorted(ids)
        pairs = Counter((bl[j], bl[j + 1]) for bl in blocks for j in range(n - 1))
        assert len(pairs) == n * (n - 1) and set(pairs.values()) == {2}


def test_latin_rows_by_participant_and_shifted_per_block():
    ids = ["a", "b", "c", "d"]
    assert trial_plan(ids, "latin", 1, 0, seed=0) == ["a", "b", "d", "c"]
    assert trial_plan(ids, "latin", 1, 1, seed=0) == ["b", "c", "a", "d"]
    assert trial_plan(ids, "latin", 1, 4, seed=0) == ["a", "b", "d", "c"]  # row 0 again
    assert trial_plan(ids, "latin", 2, 3, seed=0) == ["d", "a", "c", "b", "a", "b", "d", "c"]
    # the seed does not matter for a Latin square
    assert trial_plan(ids, "latin", 2, 3, seed=99) == trial_plan(ids, "latin", 2, 3, seed=0)


def test_random_is_a_seeded_shuffle_per_block():
    ids = IDS[:6]
    plan = trial_plan(ids, "random", 3, 5, seed=11)
    assert plan == trial_plan(ids, "random", 3, 5, seed=11)
    rng = np.random.default_rng(np.random.SeedSequence([11, 5]))
    expected = [ids[int(i)] for _ in range(3) for i in rng.permutation(6)]
    assert plan == expected
    firsts = {tuple(trial_plan(ids, "random", 1, p, seed=11)) for p in range(20)}
    assert len(firsts) == 20  # 720 orders: 20 participants draw 20 different ones with this seed
    assert trial_plan(ids, "random", 3, 5, seed=12) != plan


@pytest.mark.parametrize("args,match", [
    (([], "latin", 1, 0, 0), "non-empty"),
    ((["a", "a"], "latin", 1, 0, 0), "distinct"),
    ((["a"], "blocked", 1, 0, 0), "order must be one of"),
    ((["a"], "latin", 0, 0, 0), "repetitions must be an integer >= 1"),
    ((["a"], "latin", 1, -1, 0), "participant_index must be an integer >= 0"),
    ((["a"], "random", 1, 0, -3), "seed must be an integer >= 0"),
    (("ab", "latin", 1, 0, 0), "non-empty list"),
])
def test_bad_arguments(args, match):
    with pytest.raises(DiscernError, match=match):
        trial_plan(*args)
