"""Electric: pre-training transformers as energy-based cloze models (Clark et al., 2020).

Public names load lazily, so ``import discern.electric`` stays light."""

from discern.core.paper import Paper

PAPER = Paper("electric", title="Pre-Training Transformers as Energy-Based Cloze Models (Clark et al., EMNLP 2020)", package=__name__, number=2, run="discern.reproduce.electric:run",
              data={"tiny": ("brown", "pocketsphinx-testdata"),
                    "*": ("austen", "brown", "sotu", "pocketsphinx-testdata")})

from discern.core.lazy import lazy_names

_NAMES = {
    "PRESETS": "config", "Config": "config", "ModelConfig": "config",
    "ElectricPretrainer": "model", "TwoTowerCloze": "model", "load_pretrainer": "model",
    "ElectricScorer": "pll", "TwoTowerScorer": "pll",
    "MaskedLMScorer": "scoring", "CausalLMScorer": "scoring", "Scorer": "scoring",
    "Hypothesis": "nbest", "Utterance": "nbest", "read_nbest": "nbest", "write_nbest": "nbest",
    "read_mlm_scoring": "nbest", "generate_nbest": "nbest",
    "rerank_report": "rerank",
    "held_out_sentences": "evaluate", "build_nbest": "evaluate", "score_all": "evaluate",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_names(__name__, _NAMES)
