"""Configuration of the Med-PaLM 2 reproduction (Singhal et al. 2023): the model, the datasets, the four
prompting strategies of section 3.3 with the paper's sample counts (self-consistency 11; ensemble
refinement 11 + 33), and the presets ``tiny`` (tests), ``quick`` (``discern reproduce``) and ``paper``."""

from __future__ import annotations

from dataclasses import dataclass, field

from discern.core.config import check_choices, check_ranges
from discern.core.errors import ConfigError

from .data import MMLU_CLINICAL

STRATEGIES = ("few_shot", "cot", "self_consistency", "ensemble_refinement")


@dataclass
class Config:
    model: str = "qwen2.5-0.5b"  # qwen2.5-0.5b, qwen2.5-1.5b, smollm2 (registry), a causal-LM folder or hub id
    mmlu_subjects: list[str] = field(default_factory=lambda: list(MMLU_CLINICAL))
    mmlu_per_subject: int | None = None  # a fixed random subset of each topic's val questions (None: all)
    pubmedqa: int | None = None  # a fixed random subset of PQA-L (None: all but the 3 exemplars)
    medqa: int | None = None  # MedQA-USMLE questions (the registry's 273, less 5 exemplars; None: all; 0: none)
    # few-shot accuracy by option log-likelihood (no generation), tested against chance per dataset; the
    # question counts as above (None: all, 0: skip)
    loglik_mmlu_per_subject: int | None = None
    loglik_pubmedqa: int | None = None
    loglik_medqa: int | None = None
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    k: int = 11  # self-consistency samples
    k1: int = 11  # ensemble refinement, stage 1
    k2: int = 33  # ensemble refinement, stage 2
    temperature: float = 0.7  # not stated in the paper
    max_tokens: int = 256
    max_sequences: int = 48  # sequences decoded together
    dtype: str = "bfloat16"  # weights and activations; bfloat16 is ~3.5x faster than float32 on AVX-512 CPUs
    seed: int = 0
    alpha: float = 0.05  # level of the claim's tests

    def __post_init__(self) -> None:
        """A value no run can use is a one-line ConfigError before any work (preset, --config, --set)."""
        counts = ("mmlu_per_subject", "pubmedqa", "medqa", "loglik_mmlu_per_subject", "loglik_pubmedqa", "loglik_medqa")
        check_ranges(self, {k: "[0, inf)" for k in counts if getattr(self, k) is not None})
        check_ranges(self, {"k": "[1, inf)", "k1": "[1, inf)", "k2": "[1, inf)", "temperature": "[0, inf)",
                            "max_tokens": "[1, inf)", "max_sequences": "[1, inf)", "alpha": "(0, 1)"})
        check_choices(self, {"dtype": ("bfloat16", "float32", "float16")})
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad:
            raise ConfigError(f"config key 'strategies' must be among {', '.join(STRATEGIES)}, got {bad[0]!r}")


def paper() -> Config:
    """Every question of the installed sets, the paper's sample counts, on Qwen2.5-Coder-1.5B-Instruct
    (``discern data fetch qwen2.5-1.5b``; its cost per question is in the README)."""
    return Config(model="qwen2.5-1.5b")


def quick() -> Config:
    """Qwen2.5-Coder-0.5B-Instruct in bf16 on 2 CPU cores, sized by measurement to about 20 minutes (README):
    few-shot accuracy by option log-likelihood on 8 questions per clinical topic (48), 30 PubMedQA and 50 MedQA
    questions; the four strategies on 2 questions per topic (12), 6 PubMedQA and 6 MedQA questions with
    5 samples for self-consistency and for each ensemble-refinement stage (the paper: 11, 11 + 33) and
    96-token reasoning."""
    return Config(mmlu_per_subject=2, pubmedqa=6, medqa=6, k=5, k1=5, k2=5, max_tokens=96,
                  loglik_mmlu_per_subject=8, loglik_pubmedqa=30, loglik_medqa=50)


def tiny() -> Config:
    """Seconds, for tests: SmolLM2-135M, two questions per set, two samples."""
    return Config(model="smollm2", mmlu_subjects=["anatomy"], mmlu_per_subject=2, pubmedqa=1, medqa=1, k=2, k1=2,
                  k2=2, max_tokens=8, loglik_mmlu_per_subject=2, loglik_pubmedqa=2, loglik_medqa=2)


PRESETS = {"tiny": tiny, "quick": quick, "paper": paper}
