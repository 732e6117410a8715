"""L2: one model-agnostic training loop, ELECTRA's optimiser and schedule, layer-wise LR decay."""

from .batching import epoch_batch, held_out_batches, held_out_token_counts, token_counts
from .loop import TrainConfig, TrainState, fit
from .optim import (ElectraAdam, build_optimizer, layer_depth, layerwise_lr_scales, lr_multiplier,
                    param_groups)

__all__ = [
    "held_out_batches",
    "held_out_token_counts",
    "token_counts",
    "ElectraAdam", "TrainConfig", "epoch_batch", "TrainState", "build_optimizer", "fit", "layer_depth",
    "layerwise_lr_scales", "lr_multiplier", "param_groups",
]
