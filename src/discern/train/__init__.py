"""L2: one model-agnostic training loop, ELECTRA's optimiser and schedule, layer-wise LR decay.

Public names load lazily, so that importing the command line (``discern.train.cli``) does not import torch."""

from importlib import import_module

_NAMES = {
    "epoch_batch": "batching", "held_out_batches": "batching", "held_out_token_counts": "batching",
    "token_counts": "batching", "TrainConfig": "loop", "TrainState": "loop", "fit": "loop",
    "ElectraAdam": "optim", "build_optimizer": "optim", "layer_depth": "optim", "layerwise_lr_scales": "optim",
    "lr_multiplier": "optim", "param_groups": "optim",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'discern.train' has no attribute {name!r}")
    return getattr(import_module(f".{_NAMES[name]}", __name__), name)
