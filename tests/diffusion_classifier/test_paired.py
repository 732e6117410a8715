"""Newcombe's paired interval of an accuracy difference (the pruning claim's test)."""

import numpy as np
import pytest

from discern.diffusion_classifier.paired import paired_accuracy_difference


def _outcomes(both, a_only, b_only, neither):
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return np.array(a), np.array(b)


def test_agreement_on_every_image_still_leaves_the_wilson_margin():
    # 40 of 40 right for both: the interval is +- (1 - Wilson lower bound of 40/40) = +- z^2 / (40 + z^2)
    z2 = 1.959963984540054 ** 2
    r = paired_accuracy_difference(*_outcomes(40, 0, 0, 0))
    assert r["difference"] == 0.0
    assert r["ci"] == pytest.approx([-z2 / (40 + z2), z2 / (40 + z2)], rel=1e-9)
    assert (r["both"], r["a_only"], r["b_only"], r["neither"], r["n"]) == (40, 0, 0, 0, 40)


def test_worked_examples():
    # Altman et al., Statistics with Confidence (2000), Table 6.2: 14 / 5 / 0 / 22 -> 0.122, 0.011 to 0.226
    r = paired_accuracy_difference(*_outcomes(14, 5, 0, 22))
    assert r["difference"] == pytest.approx(5 / 41)
    assert [round(v, 3) for v in r["ci"]] == [0.011, 0.226]
    # Newcombe (1998), the paired example 36 / 12 / 2 / 0 -> 0.2, 0.0569 to 0.3404 (method 10)
    r = paired_accuracy_difference(*_outcomes(36, 12, 2, 0))
    assert r["difference"] == pytest.approx(0.2)
    assert [round(v, 4) for v in r["ci"]] == [0.0569, 0.3404]


def test_direction_symmetry_and_errors():
    a, b = _outcomes(20, 7, 2, 11)
    ab, ba = paired_accuracy_difference(a, b), paired_accuracy_difference(b, a)
    assert ab["difference"] == pytest.approx(-ba["difference"])
    assert ab["ci"] == pytest.approx([-ba["ci"][1], -ba["ci"][0]])
    assert ab["ci"][0] < ab["difference"] < ab["ci"][1]
    assert "Newcombe" in ab["test"] and "7 vs 2" in ab["test"]
    with pytest.raises(ValueError):
        paired_accuracy_difference([True, False], [True])
