"""L0: configs and presets, seeding, run folders, atomic checkpoints, progress, distributed helpers."""

from .checkpoint import (atomic_write_bytes, atomic_write_json, atomic_write_text, load_checkpoint,
                         save_checkpoint)
from .config import add_config_args, apply_overrides, build_config, config_from_dict, config_to_dict, parse_set
from .errors import CheckpointError, ConfigError, DataError, DiscernError
from .paper import Paper
from .results import VERDICTS, Claim, Result, ResultError
from .runs import Run, progress, runs_root
from .seed import derive_seed, generator, rng_state, seed_everything, set_rng_state

__all__ = [
    "add_config_args", "Claim", "Paper", "Result", "ResultError", "VERDICTS",
    "CheckpointError", "ConfigError", "DataError", "DiscernError", "Run", "apply_overrides",
    "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "build_config",
    "config_from_dict", "config_to_dict", "derive_seed", "generator", "load_checkpoint",
    "parse_set", "progress", "rng_state", "runs_root", "save_checkpoint", "seed_everything",
    "set_rng_state",
]
