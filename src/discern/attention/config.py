"""Configuration of the attention analysis reproduction and its presets.

``tiny`` runs in seconds for the tests, ``quick`` in about a minute on 2 cores (MiniLM-L6), and
``paper`` is the largest run the offline data allows (every 3-40 word sentence of UD English-EWT
dev, 2,000 GAP passages)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    model: str = "minilm"  # a Hugging Face encoder folder, or a packaged one: "minilm" (MiniLM-L6), "mpnet-base"
    treebank: str = "ud-ewt-dev"
    max_sentences: int = 2000  # treebank sentences of 3-40 words for the head-as-parser analysis
    probe_train: int = 1000
    probe_eval: int = 600
    gap_examples: int = 2000
    mode: str = "mean"  # attention from a split word: mean over its pieces (the paper) or "first"
    vectors: str = "glove"  # word vectors of the attention + words probe: "glove" (GloVe 6B 50d, section 5) or "model"
    sep_threshold: float = 0.5  # the paper's "over half" of the attention in the middle layers goes to [SEP]
    min_relations: int = 3  # relations whose head must beat its offset baseline (Holm-adjusted McNemar)
    min_count: int = 25  # dependencies a relation needs in each half of the treebank to be tested
    level: float = 0.95  # confidence level of every interval; tests at alpha = 1 - level
    n_boot: int = 10_000  # bootstrap resamples over sentences
    seed: int = 0  # the one seed of the run: probe initialisation and order, random-init model, bootstraps

    def __post_init__(self):
        from discern.core.errors import ConfigError

        if self.vectors not in ("glove", "model"):
            raise ConfigError(f"config key 'vectors' must be 'glove' or 'model', got {self.vectors!r}")
        if self.mode not in ("mean", "first"):
            raise ConfigError(f"config key 'mode' must be 'mean' or 'first', got {self.mode!r}")
        from discern.core.config import check_ranges

        check_ranges(self, {"max_sentences": "[1, inf)", "probe_train": "[1, inf)", "probe_eval": "[1, inf)",
                            "gap_examples": "[1, inf)", "sep_threshold": "[0, 1]", "min_relations": "[0, inf)",
                            "min_count": "[1, inf)", "level": "(0, 1)", "n_boot": "[1, inf)"})


def quick() -> Config:
    return Config(max_sentences=1000, probe_train=600, probe_eval=400, gap_examples=400)


def tiny() -> Config:
    return Config(max_sentences=60, probe_train=30, probe_eval=30, gap_examples=40, n_boot=500)


PRESETS = {"tiny": tiny, "quick": quick, "paper": Config}
