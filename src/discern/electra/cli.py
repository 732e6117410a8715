"""``discern electra pretrain | flops``: parsing and printing only."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.config import add_config_args
from discern.core.device import add_device_args


def add_commands(sub) -> None:
    ep = sub.add_parser("electra", help="ELECTRA: pre-training, fine-tuning, FLOPs")
    esub = ep.add_subparsers(dest="electra_command", required=True)
    pt = esub.add_parser("pretrain", help="pre-train ELECTRA (or the MLM baseline)")
    add_config_args(pt)
    pt.add_argument("--objective", choices=["electra", "mlm"], default=None,
                    help="electra (replaced token detection, default) or mlm (the BERT-style baseline)")
    pt.add_argument("--text", default=None, metavar="PATH",
                    help="pre-train on your own UTF-8 .txt file or folder of them (streamed from disk: "
                         "bounded memory whatever the size; blank lines separate documents)")
    pt.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run folder")
    pt.add_argument("--name", default="pretrain", help="run name (the run folder is runs/electra/<date>-<name>)")
    add_device_args(pt, "the preset's autocast, train.bf16 (bfloat16 in quick and gpu, float32 in tiny and paper); "
                        "bfloat16 / float32 set train.bf16, float16 is refused")
    fl = esub.add_parser("flops", help="analytic pre-training FLOPs of a config")
    add_config_args(fl)


def run_command(args) -> int:
    from discern.core import build_config
    from discern.core import dist as ddist
    from discern.core.runs import run_training_command

    from .config import PRESETS
    from .pretrain import flops_per_step, pretrain

    if args.electra_command == "flops":
        from .flops import electra_small, train_flops

        cfg = build_config(PRESETS, args.preset, args.config, args.sets)
        per = flops_per_step(cfg, cfg.data.vocab_size)
        d, g = electra_small()
        print(json.dumps({"preset": args.preset, "objective": cfg.model.objective,
                          "flops_per_step": per, "train_flops": per * cfg.train.steps,
                          "electra_small_paper": train_flops(d, 128, 1_000_000, disc=True, generator=g)},
                         indent=2))
        return 0

    from discern.core.device import apply_training

    apply_training(args, ["train.bf16"])
    run, res = run_training_command(
        "electra", PRESETS, args, lambda cfg, run, resume: pretrain(cfg, run, resume=resume),
        name=lambda cfg: f"{args.name}-{cfg.model.objective}",
        adjust=lambda cfg: _adjust(cfg, args))
    if ddist.is_main():
        print(json.dumps({"run": str(run.path), **{k: res[k] for k in ("steps", "train_flops", "final")}},
                         indent=2, default=float))
    ddist.cleanup()
    return 0


def _adjust(cfg, args):
    from discern.core import DiscernError

    from .pretrain import with_objective

    if args.objective:
        cfg = with_objective(cfg, args.objective)
    if args.text:
        if not Path(args.text).exists():
            raise DiscernError(f"--text {args.text}: no such file or folder")
        cfg.data.corpora = [str(Path(args.text).resolve())]
    return cfg
