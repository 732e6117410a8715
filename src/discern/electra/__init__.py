"""ELECTRA: pre-training text encoders as discriminators rather than generators (Clark et al., 2020).

Public names load lazily, so ``import discern.electra`` stays light."""

from discern.core.lazy import lazy_names

from discern.core.paper import Paper

PAPER = Paper("electra", title="ELECTRA: Pre-training Text Encoders as Discriminators Rather Than Generators "
              "(Clark et al., ICLR 2020)", package=__name__, number=1,
              data={"tiny": ("brown", "spam-assassin", "sotu"),
                    "*": ("brown", "sotu", "moby-dick", "spam-assassin")})

_NAMES = {
    "PRESETS": "config", "Config": "config", "DataConfig": "config", "FinetuneSection": "config",
    "ModelConfig": "config", "Masked": "masking", "mask_tokens": "masking", "max_predictions": "masking",
    "ElectraPretrainer": "model", "MLMPretrainer": "model", "load_pretrainer": "model", "tie_generator": "model",
    "encoder_dir": "pretrain", "flops_per_step": "pretrain",
}

__all__ = sorted(_NAMES) + ["PAPER"]


__getattr__ = lazy_names(__name__, _NAMES)
