"""Trial plans for a nuReality study: which scenario a participant sees in which trial.

From the publications: participants meet each vehicle-behaviour scenario in VR and are surveyed repeatedly
(Schmitt et al. 2022, arXiv 2201.04742; the companion RA-L 2022 study).  The papers do not state how the
scenario order was counterbalanced, so everything below is our reconstruction (assumption), using the
standard designs for repeated-measures studies:

- ``"latin"``: a balanced Latin square (Williams 1949).  For an even number n of scenarios one square of n
  rows, in which every scenario occupies every position once and every ordered pair of scenarios is adjacent
  exactly once.  For odd n no such single square exists; we use the two-square variant (the cyclic square
  and its mirror image, 2n rows), in which every ordered pair is adjacent exactly twice.  Participant ``p``
  gets row ``p mod rows``.  Each repetition is one block of all n scenarios; block ``b`` shifts the row
  cyclically by ``b`` *within the participant's square*, so that every block on its own stays a Latin square
  across the n participants of that square and a participant does not see the same order twice in a row.
- ``"random"``: an independent seeded shuffle per block; the generator is seeded with the study seed and
  the participant index (``numpy.random.SeedSequence([seed, participant_index])``), so a plan can always be
  recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from discern.core.errors import DiscernError

ORDERS = ("random", "latin")


def williams_first_row(n: int) -> list[int]:
    """The first row of a Williams square: 0, 1, n-1, 2, n-2, ... (its successive differences 1, -2, 3, -4,
    ... are all distinct mod n when n is even)."""
    row = []
    for j in range(n):
        if j == 0:
            row.append(0)
        elif j % 2 == 1:
            row.append((j + 1) // 2)
        else:
            row.append(n - j // 2)
    return row


def balanced_latin_square(n: int) -> list[list[int]]:
    """The rows of a balanced Latin square over ``range(n)``: n rows for even n (Williams design), 2n rows for
    odd n > 1 (the cyclic Williams square followed by its mirror image)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DiscernError(f"balanced_latin_square: n must be a positive integer, got {n!r}")
    first = williams_first_row(n)
    rows = [[(v + r) % n for v in first] for r in range(n)]
    if n % 2 == 1 and n > 1:
        rows += [list(reversed(row)) for row in rows]
    return rows


def _check(scenarios: Sequence[str], order: str, repetitions: int, participant_index: int, seed: int) -> None:
    if isinstance(scenarios, str) or not isinstance(scenarios, Sequence) or len(scenarios) == 0:
        raise DiscernError(f"trial_plan: scenarios must be a non-empty list of scenario ids, got {scenarios!r}")
    if len(set(scenarios)) != len(scenarios):
        dup = sorted({s for s in scenarios if list(scenarios).count(s) > 1})
        raise DiscernError(f"trial_plan: scenarios must be distinct, {dup} appear more than once")
    if order not in ORDERS:
        raise DiscernError(f"trial_plan: order must be one of {list(ORDERS)}, got {order!r}")
    for name, value, low in (("repetitions", repetitions, 1), ("participant_index", participant_index, 0),
                             ("seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise DiscernError(f"trial_plan: {name} must be an integer >= {low}, got {value!r}")


def trial_plan(scenarios: Sequence[str], order: str, repetitions: int, participant_index: int,
               seed: int) -> list[str]:
    """The scenario id of each trial (``repetitions`` blocks of ``len(scenarios)`` trials) for the participant
    with 0-based join index ``participant_index``; see the module docstring for the designs."""
    _check(scenarios, order, repetitions, participant_index, seed)
    n = len(scenarios)
    plan: list[str] = []
    if order == "latin":
        rows = balanced_latin_square(n)
        base = participant_index % len(rows)
        square, k = divmod(base, n)
        for block in range(repetitions):
            row = rows[square * n + (k + block) % n]
            plan += [scenarios[i] for i in row]
    else:
        rng = np.random.default_rng(np.random.SeedSequence([seed, participant_index]))
        for _block in range(repetitions):
            plan += [scenarios[int(i)] for i in rng.permutation(n)]
    return plan
