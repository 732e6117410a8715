"""GLUE-style metrics as pure numpy functions.

Each takes array-likes of gold labels and predictions (class ids for classification, floats
for regression) and returns a Python ``float``.  Degenerate cases follow the usual
conventions (scikit-learn / GLUE): a zero denominator gives 0.0 for F1 and MCC; a constant
input gives ``nan`` for Pearson and Spearman, which are undefined there.
"""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "binary_f1", "macro_f1", "matthews_corr", "pearson", "rankdata", "spearman"]


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true)
    b = np.asarray(y_pred)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"expected 1-D arrays, got shapes {a.shape} and {b.shape}")
    if a.shape != b.shape:
        raise ValueError(f"length mismatch: {a.shape[0]} gold vs {b.shape[0]} predicted")
    if a.size == 0:
        raise ValueError("empty input")
    return a, b


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(a == b))


def _f1(tp: float, fp: float, fn: float) -> float:
    denom = 2 * tp + fp + fn
    return float(2 * tp / denom) if denom > 0 else 0.0


def binary_f1(y_true, y_pred, positive=1) -> float:
    """F1 of the ``positive`` class: 2·TP / (2·TP + FP + FN); 0.0 when there is no positive at all."""
    a, b = _pair(y_true, y_pred)
    tp = float(np.sum((a == positive) & (b == positive)))
    fp = float(np.sum((a != positive) & (b == positive)))
    fn = float(np.sum((a == positive) & (b != positive)))
    return _f1(tp, fp, fn)


def macro_f1(y_true, y_pred, labels=None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: classes seen in either array)."""
    a, b = _pair(y_true, y_pred)
    classes = np.unique(np.concatenate([a, b])) if labels is None else np.asarray(list(labels))
    return float(np.mean([binary_f1(a, b, positive=c) for c in classes]))


def matthews_corr(y_true, y_pred) -> float:
    """Matthews correlation coefficient; multi-class by the general (Gorodkin R_K) formula.

    With confusion matrix C (rows gold, columns predicted), s = N, c = trace(C),
    t_k = row sums, p_k = column sums::

        MCC = (c·s − Σ t_k p_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))

    which reduces to (TP·TN − FP·FN)/sqrt(...) for two classes.  0.0 when a factor is 0.
    """
    a, b = _pair(y_true, y_pred)
    classes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = len(classes)
    ia, ib = inv[: a.size], inv[a.size:]
    cm = np.zeros((k, k), dtype=np.float64)
    np.add.at(cm, (ia, ib), 1.0)
    s = cm.sum()
    c = np.trace(cm)
    t = cm.sum(axis=1)
    p = cm.sum(axis=0)
    cov = c * s - float(t @ p)
    var_p = s * s - float(p @ p)
    var_t = s * s - float(t @ t)
    if var_p == 0 or var_t == 0:
        return 0.0
    return float(cov / np.sqrt(var_p * var_t))


def pearson(x, y) -> float:
    """Pearson correlation coefficient; ``nan`` when either input is constant."""
    a, b = _pair(x, y)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    da = a - a.mean()
    db = b - b.mean()
    denom = np.sqrt(float(da @ da) * float(db @ db))
    if denom == 0:
        return float("nan")
    r = float(da @ db) / denom
    return float(max(-1.0, min(1.0, r)))


def rankdata(x) -> np.ndarray:
    """1-based ranks with ties given their average rank (scipy's ``method='average'``)."""
    a = np.asarray(x)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    n = a.size
    # boundaries of runs of equal values in sorted order
    new_run = np.concatenate([[True], sorted_a[1:] != sorted_a[:-1]])
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.concatenate([starts[1:], [n]])  # exclusive
    avg = (starts + 1 + ends) / 2.0  # mean of 1-based positions start+1 .. end
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = avg[run_id]
    return ranks


def spearman(x, y) -> float:
    """Spearman rank correlation: Pearson of average ranks (ties handled)."""
    a, b = _pair(x, y)
    return pearson(rankdata(a), rankdata(b))
