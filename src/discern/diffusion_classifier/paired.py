"""Paired comparison of two classifiers' right/wrong outcomes on the same images.

The accuracy difference of two decision rules scored on the same images is a difference of two
*paired* proportions; its interval here is Newcombe's hybrid score interval (Newcombe 1998,
"Improved confidence intervals for the difference between binomial proportions based on paired
data", Statistics in Medicine 17, method 10): the Wilson intervals of the two accuracies combined
with the estimated correlation of the pair.  Unlike a bootstrap, it does not collapse to a single
point when the two rules agree on every image: 40 images that both rules get right still leave
an interval of about +-8.8 points.
"""

from __future__ import annotations

import math

import numpy as np

from discern.metrics.stats import proportion_ci


def paired_accuracy_difference(a_correct, b_correct, level: float = 0.95) -> dict:
    """``accuracy(a) - accuracy(b)`` with Newcombe's paired interval (method 10).

    Cells: ``both`` right, ``a_only`` right, ``b_only`` right, ``neither``.  The correlation
    estimate is phi = C / sqrt((both + a_only)(b_only + neither)(both + b_only)(a_only + neither))
    with C = AD - BC - n/2 when AD - BC > n/2, AD - BC when it is negative, else 0 (AD - BC =
    both * neither - a_only * b_only), and phi = 0 when a margin is empty."""
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired_accuracy_difference: need two non-empty 1-D outcome arrays of one shape "
                         f"(got {a.shape} and {b.shape})")
    both, a_only, b_only, neither = (int(v) for v in ((a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()))
    n = a.size
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = proportion_ci(both + a_only, n, level)["ci"]
    l2, u2 = proportion_ci(both + b_only, n, level)["ci"]
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    ad_bc = both * neither - a_only * b_only
    c = ad_bc - n / 2 if ad_bc > n / 2 else (ad_bc if ad_bc < 0 else 0.0)
    phi = c / math.sqrt(margins) if margins > 0 else 0.0
    diff = p1 - p2
    lower = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = diff + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return {"difference": diff, "ci": [max(-1.0, lower), min(1.0, upper)], "n": n, "both": both, "a_only": a_only,
            "b_only": b_only, "neither": neither, "level": level,
            "test": f"Newcombe's paired score interval ({int(round(level * 100))}%, method 10; {a_only} vs {b_only} "
                    f"discordant of {n})"}
