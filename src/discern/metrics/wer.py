"""Word error rate for speech recognition, with bootstrap confidence intervals.

Corpus-level WER as ASR papers report it: the summed word-level edit distance over all
utterances divided by the summed number of reference words, in percent.  Uncertainty comes
from resampling utterances (Bisani & Ney 2004, "Bootstrap estimates for confidence intervals
in ASR performance evaluation"): each resample draws utterances with replacement and
recomputes the corpus WER.  The resampling is :mod:`discern.metrics.stats`'s
(``cluster_bootstrap_ratio`` and ``paired_bootstrap``); this module adds the word alignment.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

__all__ = ["bootstrap_wer_ci", "edit_distance", "normalize_words", "paired_bootstrap", "wer",
           "word_errors"]

# Hyphens, dashes and slashes join words ("well-known", "and/or"): they become spaces.
_SPLITTERS = re.compile(r"[-\u2010-\u2015/]")
_APOSTROPHES = re.compile(r"[\u2018\u2019\u02bc`]")
# An apostrophe is kept only between two word characters ("don't", "o'clock").
_INWORD_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)")
_PUNCT = re.compile(r"[^\w\s\x00]|_")


def normalize_words(text: str) -> list[str]:
    """Lower-case words with punctuation removed, for references and hypotheses alike.

    Hyphens, dashes and slashes separate words; other punctuation is deleted; an apostrophe
    survives only inside a word (``"Don't 'go' -- well-known!"`` -> ``don't go well known``).
    """
    text = _APOSTROPHES.sub("'", text.lower())
    text = _SPLITTERS.sub(" ", text)
    text = _INWORD_APOSTROPHE.sub("\x00", text)  # protect in-word apostrophes
    text = _PUNCT.sub("", text)
    return text.replace("\x00", "'").split()


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (substitution, insertion, deletion: 1)."""
    if len(ref) < len(hyp):  # keep the row short; the distance is symmetric
        ref, hyp = hyp, ref
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1,  # r deleted
                           cur[j - 1] + 1,  # h inserted
                           prev[j - 1] + (r != h)))  # match or substitution
        prev = cur
    return prev[-1]


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(word edit distance, number of reference words) of two strings after normalisation."""
    r, h = normalize_words(ref), normalize_words(hyp)
    return edit_distance(r, h), len(r)


def _percent(errors: float, words: float) -> float:
    if words <= 0:
        raise ValueError("WER is undefined: the references hold no words")
    return 100.0 * float(errors) / float(words)


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER in percent: total word errors / total reference words * 100."""
    if len(refs) != len(hyps):
        raise ValueError(f"wer: {len(refs)} references but {len(hyps)} hypotheses")
    errs = words = 0
    for r, h in zip(refs, hyps):
        e, n = word_errors(r, h)
        errs += e
        words += n
    return _percent(errs, words)


def _as_counts(errors, words) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    w = np.asarray(words, dtype=np.float64).reshape(-1)
    if e.shape != w.shape:
        raise ValueError(f"errors has {e.size} utterances but words has {w.size}")
    if e.size == 0:
        raise ValueError("no utterances to resample")
    return e, w


def bootstrap_wer_ci(errors, words, n_boot: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of corpus WER (percent) over utterances.

    ``errors[i]`` and ``words[i]`` are utterance i's edit distance and reference length; the corpus
    WER is a ratio of sums, so this is :func:`discern.metrics.stats.cluster_bootstrap_ratio` with the
    utterance as the cluster (a resample without reference words has no WER and is left out).
    """
    from . import stats

    e, w = _as_counts(errors, words)
    if w.sum() <= 0:
        raise ValueError("WER is undefined: the references hold no words")
    lo, hi = stats.cluster_bootstrap_ratio(e, w, n_resamples=n_boot, level=1 - alpha, seed=seed)["ci"]
    return 100.0 * lo, 100.0 * hi


def paired_bootstrap(errors_a, errors_b, words, n_boot: int = 1000, seed: int = 0) -> float:
    """Probability of improvement: the fraction of utterance resamples in which system b has a
    strictly lower corpus WER than system a (both scored on the same resampled utterances).

    Both systems share the denominator, so this is the share of resamples in which the mean of the
    paired error differences ``a - b`` is above 0: ``share_positive`` of
    :func:`discern.metrics.stats.paired_bootstrap`."""
    from . import stats

    ea, _ = _as_counts(errors_a, words)
    eb, _ = _as_counts(errors_b, words)
    if ea.shape != eb.shape:
        raise ValueError(f"errors_a has {ea.size} utterances but errors_b has {eb.size}")
    return stats.paired_bootstrap(ea, eb, n_resamples=n_boot, seed=seed)["share_positive"]
