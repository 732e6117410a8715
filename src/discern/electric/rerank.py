"""N-best re-ranking with a language-model score (paper section 5.2, Table 3).

x* = argmax_{x in n-best} f(x | s) + lambda * LM(x), with f the first-pass (acoustic + first-pass
LM) log score and LM(x) the re-ranker's score: Electric's PLL = -sum_t E(x)_t, a masked LM's
PLL, or a causal LM's log-probability.  lambda is chosen on a dev split from the paper's grid
{0.05, ..., 1.0}; WER is then reported on the test split with bootstrap confidence intervals.
"""

from __future__ import annotations

import random
import zlib
from typing import Sequence

import numpy as np

from discern.metrics import bootstrap_wer_ci, edit_distance, normalize_words, paired_bootstrap

from .nbest import Utterance


def split_dev_test(utterances: Sequence[Utterance], dev_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded split of utterance ids into dev (tuning lambda) and test (reporting)."""
    ids = sorted(u.id for u in utterances)
    random.Random(zlib.crc32(f"{seed}:dev-test".encode())).shuffle(ids)
    n_dev = int(round(dev_fraction * len(ids)))
    return sorted(ids[:n_dev]), sorted(ids[n_dev:])


def error_table(utterances: Sequence[Utterance]) -> tuple[list[np.ndarray], np.ndarray]:
    """Word errors of every hypothesis (one array per utterance) and reference lengths."""
    errs, words = [], []
    for u in utterances:
        ref = normalize_words(u.reference)
        errs.append(np.array([edit_distance(ref, normalize_words(h.text)) for h in u.hypotheses], dtype=np.int64))
        words.append(len(ref))
    return errs, np.array(words, dtype=np.int64)


def choose(first_pass: np.ndarray, lm: np.ndarray | None, lam: float) -> int:
    """Index of argmax f + lambda * LM (the first hypothesis wins ties)."""
    total = first_pass if lm is None else first_pass + lam * lm
    return int(np.argmax(total))


def chosen_errors(utterances: Sequence[Utterance], errs: list[np.ndarray], lm: Sequence[np.ndarray] | None,
                  lam: float) -> np.ndarray:
    """Word errors of the re-ranked choice in each utterance."""
    out = np.empty(len(utterances), dtype=np.int64)
    for i, u in enumerate(utterances):
        f = np.array([h.score for h in u.hypotheses], dtype=np.float64)
        out[i] = errs[i][choose(f, None if lm is None else lm[i], lam)]
    return out


def tune_lambda(utterances: Sequence[Utterance], errs: list[np.ndarray], words: np.ndarray,
                lm: Sequence[np.ndarray], grid: Sequence[float]) -> tuple[float, dict[float, float]]:
    """The grid value with the lowest dev WER (the smallest such value on ties) and the curve."""
    curve = {float(lam): 100.0 * chosen_errors(utterances, errs, lm, lam).sum() / words.sum() for lam in grid}
    best = min(curve, key=lambda lam: (round(curve[lam], 9), lam))
    return best, curve


def rerank_report(utterances: Sequence[Utterance], lm_scores: dict[str, Sequence[Sequence[float]]],
                  grid: Sequence[float], dev_fraction: float = 0.5, n_boot: int = 1000, seed: int = 0) -> dict:
    """WER on the test split for no re-ranking, the oracle and each LM re-ranker.

    ``lm_scores[name][i][j]`` is the LM score of hypothesis j of utterance i.  Each row of the
    result has the test WER, its 95% bootstrap interval, the tuned lambda, the dev WER, and the
    probability (paired bootstrap) that it beats no re-ranking."""
    by_id = {u.id: i for i, u in enumerate(utterances)}
    dev_ids, test_ids = split_dev_test(utterances, dev_fraction, seed)
    errs, words = error_table(utterances)
    lm = {name: [np.asarray(s, dtype=np.float64) for s in scores] for name, scores in lm_scores.items()}
    for name, scores in lm.items():
        for u, s in zip(utterances, scores):
            if len(s) != len(u.hypotheses):
                raise ValueError(f"scores of {name!r} for utterance {u.id!r}: {len(s)} values for "
                                 f"{len(u.hypotheses)} hypotheses")

    def subset(ids):
        idx = [by_id[i] for i in ids]
        return [utterances[i] for i in idx], [errs[i] for i in idx], words[idx], idx

    dev_u, dev_e, dev_w, dev_idx = subset(dev_ids)
    test_u, test_e, test_w, test_idx = subset(test_ids)
    base = chosen_errors(test_u, test_e, None, 0.0)
    rows: dict[str, dict] = {}

    def row(errors: np.ndarray, **extra) -> dict:
        lo, hi = bootstrap_wer_ci(errors, test_w, n_boot=n_boot, seed=seed)
        return {"wer": 100.0 * errors.sum() / test_w.sum(), "ci95": [lo, hi], **extra}

    rows["none"] = row(base, passes="0")
    oracle = np.array([e.min() for e in test_e], dtype=np.int64)
    rows["oracle"] = row(oracle)
    curves = {}
    for name, scores in lm.items():
        lam, curve = tune_lambda(dev_u, dev_e, dev_w, [scores[i] for i in dev_idx], grid)
        curves[name] = curve
        chosen = chosen_errors(test_u, test_e, [scores[i] for i in test_idx], lam)
        rows[name] = row(chosen, **{"lambda": lam, "dev_wer": curve[lam],
                                     "p_better_than_none": paired_bootstrap(base, chosen, test_w, n_boot=n_boot,
                                                                            seed=seed)})
    return {
        "dev_utterances": len(dev_ids), "test_utterances": len(test_ids),
        "dev_words": int(dev_w.sum()), "test_words": int(test_w.sum()),
        "dev_wer_none": 100.0 * chosen_errors(dev_u, dev_e, None, 0.0).sum() / dev_w.sum(),
        "rows": rows, "lambda_curves": {k: {str(lam): v for lam, v in c.items()} for k, c in curves.items()},
    }
