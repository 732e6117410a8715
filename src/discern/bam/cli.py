"""``discern bam teachers | distill | evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.config import add_config_args


def add_commands(sub) -> None:
    bp = sub.add_parser("bam", help="BAM!: single-task teachers distilled into one multi-task student")
    bs = bp.add_subparsers(dest="bam_command", required=True)
    te = bs.add_parser("teachers", help="fine-tune one teacher per task; save train-set outputs by example id")
    add_config_args(te)
    te.add_argument("--seed", type=int, default=0)
    di = bs.add_parser("distill", help="train the multi-task student (BAM) from saved teachers")
    add_config_args(di)
    di.add_argument("--teachers", default=None, help="folder of <task>.json teacher outputs (omit: gold labels only)")
    di.add_argument("--no-anneal", action="store_true", help="fixed lambda (student.distill_weight) instead of 0 -> 1")
    di.add_argument("--seed", type=int, default=0)
    ev = bs.add_parser("evaluate", help="evaluate a saved student on every task")
    ev.add_argument("--model", required=True, help="a distill run folder (or its model/ folder)")
    ev.add_argument("--split", default="dev", choices=["dev", "test"])


def save_student(model, tokenizer, folder: Path) -> None:
    import torch

    from discern.core import atomic_write_json

    model.encoder.save_pretrained(folder / "encoder")
    tokenizer.save_pretrained(str(folder / "encoder"))
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith("heads.")}, folder / "heads.pt")
    atomic_write_json(folder / "heads.json", {t: h.out_features for t, h in model.heads.items()})


def load_student(folder: Path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from discern.core import CheckpointError

    from .student import MultiTaskModel

    folder = folder / "model" if (folder / "model" / "heads.json").is_file() else folder
    if not (folder / "heads.json").is_file():
        raise CheckpointError(f"{folder}: not a BAM student (no heads.json); run: discern bam distill")
    heads = json.loads((folder / "heads.json").read_text())
    model = MultiTaskModel(AutoModel.from_pretrained(str(folder / "encoder")), heads)
    model.load_state_dict(torch.load(folder / "heads.pt", weights_only=True), strict=False)
    return model, AutoTokenizer.from_pretrained(str(folder / "encoder"))


def run_command(args) -> int:
    import dataclasses

    from discern.core import Run, build_config

    from .config import PRESETS
    from .experiment import encoder_folder, load_tasks, train_teacher
    from .student import evaluate

    if args.bam_command == "evaluate":
        model, tok = load_student(Path(args.model))
        cfg_path = Path(args.model) / "config.json"
        cfg = build_config(PRESETS, "paper", str(cfg_path) if cfg_path.is_file() else None, [])
        tasks = [t for t in load_tasks(cfg) if t.name in model.heads]
        print(json.dumps(evaluate(model, tok, tasks, args.split, cfg.student.max_length), indent=2))
        return 0
    cfg = build_config(PRESETS, args.preset, args.config, args.sets)
    tasks = load_tasks(cfg)
    if args.bam_command == "teachers":
        run = Run.create("bam", f"teachers-seed{args.seed}", cfg)
        out = {}
        for task in tasks:
            r = train_teacher(cfg, task, args.seed, run.path / "teachers" / f"{task.name}.json")
            out[task.name] = r["dev"]
        run.save_results({"dev": out, "teachers": str(run.path / "teachers")})
        print(json.dumps({"run": str(run.path), "teachers": str(run.path / "teachers"), "dev": out}, indent=2))
        return 0
    if args.bam_command == "distill":
        from transformers import AutoModel, AutoTokenizer

        from .student import train_student
        from .teachers import load_teacher

        teachers = None
        if args.teachers:
            teachers = {t.name: load_teacher(Path(args.teachers) / f"{t.name}.json") for t in tasks}
        run = Run.create("bam", "distill" if teachers else "multitask", cfg)
        folder = encoder_folder(cfg.encoder)
        tok = AutoTokenizer.from_pretrained(str(folder))
        scfg = dataclasses.replace(cfg.student, seed=args.seed, teacher_annealing=not args.no_anneal)
        try:
            model, info = train_student(AutoModel.from_pretrained(str(folder)), tok, tasks, scfg, teachers, run=run)
        except Exception:
            run.remove_if_unstarted()
            raise
        save_student(model, tok, run.path / "model")
        dev = evaluate(model, tok, tasks, "dev", scfg.max_length)
        run.save_results({**info, "dev": dev})
        print(json.dumps({"run": str(run.path), "dev": dev}, indent=2))
        return 0
    raise AssertionError(args.bam_command)
