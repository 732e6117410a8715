"""L2: text classification / regression tasks from real corpora, and ELECTRA-style fine-tuning.

Importing this package is light (no torch, no transformers); the fine-tuning names load on
first use.
"""

from .suite import (BROWN_COARSE, SPLITS, TASKS, Example, Task, build_task, get_task,
                    load_task_dir, split_of, tasks_root, write_task_dir)

_LAZY = {
    "FinetuneConfig": "finetune", "finetune_from_pretrained": "finetune",
    "EncoderHead": "finetune", "build_param_groups": "finetune", "predict": "finetune",
    "encode_examples": "finetune", "collate": "finetune", "encoder_layers": "finetune",
    "save_sequence_classifier": "finetune", "to_sequence_classification": "finetune",
    "add_task_commands": "cli", "run_task_command": "cli",
}

__all__ = [
    "BROWN_COARSE", "EncoderHead", "Example", "FinetuneConfig", "SPLITS", "TASKS", "Task",
    "add_task_commands", "build_param_groups", "build_task", "collate", "encode_examples", "encoder_layers",
    "finetune_from_pretrained", "get_task", "load_task_dir", "predict", "run_task_command",
    "save_sequence_classifier", "split_of", "tasks_root", "to_sequence_classification", "write_task_dir",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        # bind every name of that module here; this also replaces the submodule attribute
        # ``finetune`` that the import just set with the function of the same name
        for n, m in _LAZY.items():
            if m == _LAZY[name]:
                globals()[n] = getattr(mod, n)
        return globals()[name]
    raise AttributeError(f"module 'discern.tasks' has no attribute '{name}'")
