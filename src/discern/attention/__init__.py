"""What does BERT look at?  Attention analysis for any Hugging Face encoder (Clark et al., 2019).

Public names load lazily, so ``import discern.attention`` stays light."""

from discern.core.paper import Paper

PAPER = Paper("attention", title="What Does BERT Look At? An Analysis of BERT's Attention (Clark et al., BlackboxNLP 2019)", package=__name__, number=4,
              data=("ud-english-ewt", "gap-coreference", "glove-6b-50d"))

from discern.core.lazy import lazy_names

_NAMES = {
    "Example": "extract", "load_encoder": "extract", "ensure_attentions": "extract",
    "extract_cached": "extract", "word_level": "extract", "word_units": "extract", "resolve_model": "extract",
    "complete": "extract", "PACKAGED_MODELS": "extract",
    "token_type_attention": "surface", "token_type_per_example": "surface", "entropies": "surface",
    "special_tokens": "surface", "Glove": "glove", "load_glove": "glove",
    "Config": "config", "PRESETS": "config",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_names(__name__, _NAMES)
