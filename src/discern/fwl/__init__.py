"""Fast Weight Layers on top of any causal language model (Clark et al., EMNLP 2022).

Public names load lazily, so ``import discern.fwl`` stays light."""

from discern.core.lazy import lazy_names

from discern.core.paper import Paper

PAPER = Paper("fwl", title="Meta-Learning Fast Weight Language Models (Clark et al., EMNLP 2022)", package=__name__,
              number=5)

_NAMES = {"FastWeightBlock": "layer", "causal_linear_attention": "layer", "FWLCausalLM": "model", "evaluate": "dynamic"}

__all__ = sorted(_NAMES)


__getattr__ = lazy_names(__name__, _NAMES)
