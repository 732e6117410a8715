"""L1: metrics as pure numpy functions (no torch)."""

from .glue import accuracy, binary_f1, macro_f1, matthews_corr, pearson, rankdata, spearman
from .wer import (bootstrap_wer_ci, edit_distance, normalize_words, paired_bootstrap, wer,
                  word_errors)

METRICS = {
    "accuracy": accuracy,
    "f1": binary_f1,
    "macro_f1": macro_f1,
    "mcc": matthews_corr,
    "pearson": pearson,
    "spearman": spearman,
}

__all__ = ["METRICS", "accuracy", "binary_f1", "bootstrap_wer_ci", "edit_distance", "macro_f1",
           "matthews_corr", "normalize_words", "paired_bootstrap", "pearson", "rankdata", "spearman",
           "wer", "word_errors"]
