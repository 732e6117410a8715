"""``discern tasks list | build [NAME...] | finetune --model DIR --task NAME [--set key=value]... [--no-save]``.

``finetune`` saves the fine-tuned model to ``RUN/model`` (an ``AutoModelForSequenceClassification``
folder with the tokenizer) unless ``--no-save``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from discern.core import DiscernError, apply_overrides, parse_set

__all__ = ["add_task_commands", "run_task_command"]


def _add_caps(p: argparse.ArgumentParser) -> None:
    for split, default in (("train", 2000), ("dev", 500), ("test", 500)):
        p.add_argument(f"--max-{split}", type=int, default=None, metavar="N",
                       help=f"cap on {split} examples of a built-in task (default {default}; 0 = all)")


def add_task_commands(subparsers) -> argparse.ArgumentParser:
    """Add the ``tasks`` command (``list``, ``build``, ``finetune``) to argparse subparsers."""
    p = subparsers.add_parser(
        "tasks", help="text tasks from real corpora; fine-tune an encoder on one",
        description="Built-in tasks are made from the Brown, State of the Union and SpamAssassin "
                    "corpora and cached under $DISCERN_DATA/tasks; a task may also be a folder "
                    "with task.json and train/dev/test.jsonl.")
    sub = p.add_subparsers(dest="tasks_command", metavar="{list,build,finetune}")
    sub.required = True
    ls = sub.add_parser("list", help="the built-in tasks")
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    b = sub.add_parser("build", help="build (or check) the cached task files")
    b.add_argument("names", nargs="*", metavar="NAME", help="tasks to build (default: all)")
    b.add_argument("--rebuild", action="store_true", help="rebuild even when cached")
    _add_caps(b)
    f = sub.add_parser("finetune", help="fine-tune a Hugging Face encoder folder on a task")
    f.add_argument("--model", required=False, metavar="DIR",
                   help="a save_pretrained folder (ELECTRA discriminator, BERT, MiniLM, ...) or a named encoder: "
                        "minilm, mpnet-base")
    f.add_argument("--task", required=False, metavar="NAME", help="a built-in task or a task folder")
    f.add_argument("--seed", type=int, default=None, help="seed of every random draw (default: the config's seed)")
    f.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a FinetuneConfig field, e.g. --set lr=1e-4 (repeatable)")
    f.add_argument("--name", default=None, help="run name (default: TASK-MODEL)")
    f.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run folder")
    f.add_argument("--json", action="store_true", help="print the whole result (with predictions)")
    f.add_argument("--no-save", action="store_true",
                   help="do not save the fine-tuned model (default: RUN/model, an "
                        "AutoModelForSequenceClassification folder with the tokenizer)")
    _add_caps(f)
    from discern.core.device import add_device_args

    add_device_args(f, "the config's autocast, bf16 (false: float32); bfloat16 / float32 set bf16, float16 is "
                       "refused")
    return p


def resolve_model(model: str) -> str:
    """An encoder folder, or a named one (``minilm``, ``mpnet-base``: ``discern.data.models``)."""
    if Path(model).is_dir():
        return model
    from discern.data.models import is_model_name, model_path

    if is_model_name(model):
        return str(model_path(model))
    raise DiscernError(f"--model {model}: no such folder (or a named encoder: minilm, mpnet-base)")


def _caps(args) -> dict:
    return {"max_train": args.max_train, "max_dev": args.max_dev, "max_test": args.max_test}


def _cmd_list(args) -> int:
    from .suite import TASKS, tasks_root

    root = tasks_root()
    rows = []
    for t in TASKS.values():
        rows.append({"name": t.name, "kind": t.kind, "labels": list(t.labels),
                     "metrics": list(t.metrics), "primary": t.primary,
                     "cached": (root / t.name / "task.json").is_file(),
                     "description": t.description})
    if args.json:
        print(json.dumps({"root": str(root), "tasks": rows}, indent=2))
        return 0
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        labels = ", ".join(r["labels"]) if r["labels"] else "(regression)"
        print(f"{r['name']:<{w}}  {r['kind']:<14}  {r['primary']:<8}  "
              f"{'cached' if r['cached'] else '      '}  {labels}")
        print(f"{'':<{w}}  {r['description']}")
    print(f"\ncache: {root}  (a task folder path also works wherever a task name does)")
    return 0


def _cmd_build(args) -> int:
    import time

    from .suite import SPLITS, TASKS, get_task

    names = args.names or list(TASKS)
    for name in names:
        if name not in TASKS:
            raise DiscernError(f"unknown task '{name}' (choose from: {', '.join(TASKS)})")
    for name in names:
        t0 = time.time()
        task = get_task(name, rebuild=args.rebuild, **_caps(args))
        sizes = " ".join(f"{s}={len(task.split(s))}" for s in SPLITS)
        print(f"{name}: {sizes}  ({time.time() - t0:.1f}s) -> {task.path}")
    return 0


def _cmd_finetune(args) -> int:
    from discern.core import Run

    from .finetune import FinetuneConfig, finetune_from_pretrained
    from .suite import get_task

    from discern.core.device import apply_training, check_resumed

    # --dtype becomes the override bf16=true|false (added to args.sets); --device the process's device
    apply_training(args, ["bf16"])
    if args.resume:
        run = Run.open(args.resume)
        saved = run.load_config()
        cfg = apply_overrides(FinetuneConfig(), saved.get("finetune", {}))
        check_resumed(cfg, args)
        if args.device != "auto":  # where it runs may change between sessions; the saved config keeps the first
            cfg.device = args.device
        model, task_name, caps = saved["model"], saved["task"], saved.get("caps", {})
        task = get_task(task_name, **{k: v for k, v in caps.items() if v is not None})
    else:
        if not args.model or not args.task:
            raise DiscernError("tasks finetune needs --model DIR and --task NAME (or --resume RUN_DIR)")
        cfg = FinetuneConfig()
        overrides = dict(parse_set(s) for s in args.sets)
        if args.seed is not None:
            overrides["seed"] = args.seed
        if args.device != "auto":
            overrides["device"] = args.device
        apply_overrides(cfg, overrides)
        model, task_name, caps = resolve_model(args.model), args.task, _caps(args)
        # the task is read and checked before the run folder is made: a bad task folder leaves nothing behind
        task = get_task(task_name, **{k: v for k, v in caps.items() if v is not None})
        name = args.name or f"{Path(task_name).name}-{Path(model).name}-s{cfg.seed}"
        run = Run.create("tasks", name, {"finetune": dataclasses.asdict(cfg), "model": str(model),
                                         "task": str(task_name), "caps": caps})
    save = None if args.no_save else run.path / "model"
    res = finetune_from_pretrained(model, task, cfg, run, resume=bool(args.resume), save=save)
    if args.json:
        print(json.dumps(res, default=float))
    else:
        summary = {"run": str(run.path), "task": res["task"], "steps": res["steps"]}
        if "model" in res:
            summary["model"] = res["model"]
        for split in ("dev", "test"):
            if split in res:
                summary[split] = res[split]
        print(json.dumps(summary, indent=2, default=float))
    return 0


def run_task_command(args) -> int:
    """Run a parsed ``discern tasks ...`` command; user errors print one line and return 2."""
    try:
        if args.tasks_command == "list":
            return _cmd_list(args)
        if args.tasks_command == "build":
            return _cmd_build(args)
        if args.tasks_command == "finetune":
            return _cmd_finetune(args)
    except DiscernError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("error: expected one of: discern tasks list | build | finetune", file=sys.stderr)
    return 2
