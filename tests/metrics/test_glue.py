import math

import numpy as np
import pytest

from discern.metrics import (accuracy, binary_f1, macro_f1, matthews_corr, pearson, rankdata,
                             spearman)

GOLD = [1, 1, 1, 0, 0, 0, 0, 1]
PRED = [1, 0, 1, 0, 1, 0, 0, 1]  # TP 3, FN 1, FP 1, TN 3


def test_binary_hand_computed():
    assert accuracy(GOLD, PRED) == 0.75
    assert binary_f1(GOLD, PRED) == 0.75  # 2*3 / (2*3 + 1 + 1)
    assert matthews_corr(GOLD, PRED) == 0.5  # (3*3 - 1*1) / sqrt(4*4*4*4)
    assert binary_f1(GOLD, PRED, positive=0) == 0.75


def test_binary_f1_asymmetric():
    # TP 1, FP 2, FN 0 -> 2/(2+2) = 0.5
    assert binary_f1([1, 0, 0, 0], [1, 1, 1, 0]) == 0.5
    assert binary_f1([0, 0], [0, 0]) == 0.0  # no positives anywhere


def test_multiclass_mcc_and_macro_f1():
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    # C = [[1,1,0],[0,2,0],[1,0,1]]: s=6, c=4, t=[2,2,2], p=[2,3,1]
    # (4*6 - 12) / sqrt((36 - 14) * (36 - 12)) = 12 / sqrt(528)
    assert matthews_corr(gold, pred) == pytest.approx(12 / math.sqrt(528), abs=1e-15)
    # per-class F1: 2/4, 4/5, 2/3
    assert macro_f1(gold, pred) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, abs=1e-15)
    assert accuracy(gold, pred) == pytest.approx(4 / 6)


def test_mcc_degenerate_and_perfect():
    assert matthews_corr([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0
    assert matthews_corr([0, 1, 0, 1], [1, 0, 1, 0]) == -1.0
    assert matthews_corr([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0
    assert matthews_corr(["a", "b", "c"], ["a", "b", "c"]) == 1.0


def test_pearson_hand_and_scipy():
    x, y = [1, 2, 3, 4], [2, 4, 5, 9]
    assert pearson(x, y) == pytest.approx(11 / math.sqrt(130), abs=1e-15)
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = 0.3 * a + rng.normal(size=200)
    assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-12)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_spearman_ties_hand_and_scipy():
    assert list(rankdata([10, 20, 20, 30, 20])) == [1.0, 3.0, 3.0, 5.0, 3.0]
    # ranks [1, 2.5, 2.5, 4] vs [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9), abs=1e-15)
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 10, size=300)  # many ties
    b = a + rng.integers(0, 6, size=300)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)
    assert np.array_equal(rankdata(a), stats.rankdata(a))


def test_shape_errors():
    with pytest.raises(ValueError, match="length mismatch"):
        accuracy([1, 2], [1])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
