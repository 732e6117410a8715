"""L2: one model-agnostic training loop, ELECTRA's optimiser and schedule, layer-wise LR decay.

Public names load lazily, so that importing the command line (``discern.train.cli``) does not import torch."""

from discern.core.lazy import lazy_names

_NAMES = {
    "epoch_batch": "batching", "held_out_batches": "batching", "held_out_token_counts": "batching",
    "token_counts": "batching", "TrainConfig": "loop", "TrainState": "loop", "fit": "loop",
    "ElectraAdam": "optim", "build_optimizer": "optim", "layer_depth": "optim", "layerwise_lr_scales": "optim",
    "lr_multiplier": "optim", "param_groups": "optim",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_names(__name__, _NAMES)
