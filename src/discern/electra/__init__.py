"""ELECTRA: pre-training text encoders as discriminators rather than generators (Clark et al., 2020)."""

from .config import PRESETS, Config, DataConfig, FinetuneSection, ModelConfig
from discern.nn import gumbel_sample

from .masking import Masked, mask_tokens, max_predictions
from .model import ElectraPretrainer, MLMPretrainer, load_pretrainer, tie_generator
from .pretrain import encoder_dir, flops_per_step, pretrain

__all__ = [
    "PRESETS", "Config", "DataConfig", "ElectraPretrainer", "FinetuneSection", "MLMPretrainer", "Masked",
    "ModelConfig", "encoder_dir", "flops_per_step", "gumbel_sample", "load_pretrainer", "mask_tokens",
    "max_predictions", "pretrain", "tie_generator",
]
