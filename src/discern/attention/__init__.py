"""What does BERT look at?  Attention analysis for any Hugging Face encoder (Clark et al., 2019).

Public names load lazily, so ``import discern.attention`` stays light."""

from discern.core.paper import Paper

PAPER = Paper("attention", title="What Does BERT Look At? An Analysis of BERT's Attention (Clark et al., BlackboxNLP 2019)", package=__name__, number=4)

from importlib import import_module

_NAMES = {
    "Example": "extract", "load_encoder": "extract", "ensure_attentions": "extract", "extract": "extract",
    "extract_cached": "extract", "word_level": "extract", "word_units": "extract",
    "token_type_attention": "surface", "token_type_per_example": "surface", "entropies": "surface",
    "Config": "config", "PRESETS": "config",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'discern.attention' has no attribute {name!r}")
    return getattr(import_module(f".{_NAMES[name]}", __name__), name)
