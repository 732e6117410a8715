"""Fast Weight Layers on top of any causal language model (Clark et al., EMNLP 2022).

Public names load lazily, so ``import discern.fwl`` stays light.  Importing it registers the saved
model's type (``discern_fwl``) with ``AutoConfig`` / ``AutoModelForCausalLM`` as soon as
``transformers`` is imported (now, if it already is), so ``AutoModelForCausalLM.from_pretrained(folder)``
works after ``import discern.fwl``."""

from discern.core.lazy import lazy_names, register_with_transformers

from discern.core.paper import Paper

PAPER = Paper("fwl", title="Meta-Learning Fast Weight Language Models (Clark et al., EMNLP 2022)", package=__name__,
              number=5, data={"tiny": ("wikitext-2", "moby-dick", "gpt2-bpe"),
                              "scratch": ("wikitext-2", "moby-dick", "gpt2-bpe"), "*": ("wikitext-2", "moby-dick")})

_NAMES = {"FastWeightBlock": "layer", "causal_linear_attention": "layer", "FWLCausalLM": "model", "FWLConfig": "model",
          "evaluate": "dynamic"}

__all__ = sorted(_NAMES)


__getattr__ = lazy_names(__name__, _NAMES)


register_with_transformers(__name__, "model")
