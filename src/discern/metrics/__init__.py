"""L1: metrics as pure numpy functions (no torch)."""

from .glue import accuracy, binary_f1, macro_f1, matthews_corr, pearson, rankdata, spearman

METRICS = {
    "accuracy": accuracy,
    "f1": binary_f1,
    "macro_f1": macro_f1,
    "mcc": matthews_corr,
    "pearson": pearson,
    "spearman": spearman,
}

__all__ = ["METRICS", "accuracy", "binary_f1", "macro_f1", "matthews_corr", "pearson", "rankdata",
           "spearman"]
