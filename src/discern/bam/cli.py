"""``discern bam teachers | distill | evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.config import add_config_args
from discern.core.device import add_device_args


def add_commands(sub) -> None:
    bp = sub.add_parser("bam", help="BAM!: single-task teachers distilled into one multi-task student")
    bs = bp.add_subparsers(dest="bam_command", required=True)
    te = bs.add_parser("teachers", help="fine-tune one teacher per task; save train-set outputs by example id")
    add_config_args(te)
    te.add_argument("--seed", type=int, default=None, help="training seed (default: the config's seed)")
    add_device_args(te, "the preset's autocast, teacher.bf16 (bfloat16 in quick, float32 in tiny and paper); "
                        "bfloat16 / float32 set teacher.bf16, float16 is refused")
    di = bs.add_parser("distill", help="train the multi-task student (BAM) from saved teachers")
    add_config_args(di)
    di.add_argument("--teachers", default=None, help="folder of <task>.json teacher outputs (omit: gold labels only)")
    di.add_argument("--no-anneal", action="store_true", help="fixed lambda (student.distill_weight) instead of 0 -> 1")
    di.add_argument("--seed", type=int, default=None, help="training seed (default: the config's seed)")
    add_device_args(di, "the preset's autocast, student.bf16 (bfloat16 in quick, float32 in tiny and paper); "
                        "bfloat16 / float32 set student.bf16, float16 is refused")
    ev = bs.add_parser("evaluate", help="evaluate a saved student on every task")
    ev.add_argument("--model", required=True,
                    help="a distill run folder (or its model/ folder, or a student saved in the earlier layout)")
    ev.add_argument("--split", default="dev", choices=["dev", "test"], help="the task split to evaluate on")
    add_device_args(ev, "float32 (the student is loaded in this precision)")


def run_command(args) -> int:
    from discern.core import Run, build_config

    from .config import PRESETS
    from .student import evaluate, is_student_folder, load_student, save_student
    from .train import distill, load_tasks, load_teachers, train_teacher

    if args.bam_command == "evaluate":
        from discern.core.device import apply

        device, dtype = apply(args, cpu="float32", cuda="float32")
        model, tok = load_student(Path(args.model))
        model.to(device=device, dtype=dtype)
        # the run's config (a distill run folder); a student folder's own config.json is the model's
        cfg_path = Path(args.model) / "config.json"
        run_config = cfg_path.is_file() and not is_student_folder(Path(args.model))
        cfg = build_config(PRESETS, "paper", str(cfg_path) if run_config else None, [])
        tasks = [t for t in load_tasks(cfg) if t.name in model.heads]
        print(json.dumps(evaluate(model, tok, tasks, args.split, cfg.student.max_length), indent=2))
        return 0
    from discern.core.device import apply_training

    apply_training(args, ["teacher.bf16" if args.bam_command == "teachers" else "student.bf16"])
    cfg = build_config(PRESETS, args.preset, args.config, args.sets)
    tasks = load_tasks(cfg)
    seed = cfg.seed if args.seed is None else args.seed
    if args.bam_command == "teachers":
        run = Run.create("bam", f"teachers-seed{seed}", cfg)
        out = {}
        for task in tasks:
            r = train_teacher(cfg, task, seed, run.path / "teachers" / f"{task.name}.json")
            out[task.name] = r["dev"]
        run.save_results({"dev": out, "teachers": str(run.path / "teachers")})
        print(json.dumps({"run": str(run.path), "teachers": str(run.path / "teachers"), "dev": out}, indent=2))
        return 0
    if args.bam_command == "distill":
        teachers = load_teachers(args.teachers, tasks) if args.teachers else None
        run = Run.create("bam", "distill" if teachers else "multitask", cfg)
        try:
            model, tok, scfg, info = distill(cfg, tasks, seed, teachers, anneal=not args.no_anneal, run=run)
        except Exception:
            run.remove_if_unstarted()
            raise
        save_student(model, tok, run.path / "model")
        dev = evaluate(model, tok, tasks, "dev", scfg.max_length)
        run.save_results({**info, "dev": dev})
        print(json.dumps({"run": str(run.path), "dev": dev}, indent=2))
        return 0
    raise AssertionError(args.bam_command)
