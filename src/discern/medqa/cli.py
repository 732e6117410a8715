"""``discern medqa evaluate``: the strategies on MultiMedQA datasets over a local model or a server."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.errors import DiscernError


def add_medqa_commands(sub) -> None:
    mp = sub.add_parser("medqa", help="Med-PaLM 2 strategies on MultiMedQA")
    ms = mp.add_subparsers(dest="medqa_command", required=True)
    ev = ms.add_parser("evaluate", help="run strategies on datasets; writes results.json, samples, comparison.md")
    ev.add_argument("--backend", default="smollm2",
                    help="smollm2, a model folder or hub id (in-process), or an http(s):// OpenAI-compatible URL")
    ev.add_argument("--model", default=None, help="model name sent to a server (default: the backend string)")
    ev.add_argument("--chat", action="store_true", help="use the server's chat endpoint")
    ev.add_argument("--datasets", default="mmlu:clinical_knowledge,pubmedqa")
    ev.add_argument("--strategies", default="few_shot,cot,self_consistency,ensemble_refinement")
    ev.add_argument("--limit", type=int, default=None, help="a fixed random subset of this many questions")
    ev.add_argument("--k", type=int, default=11)
    ev.add_argument("--k1", type=int, default=11)
    ev.add_argument("--k2", type=int, default=33)
    ev.add_argument("--temperature", type=float, default=0.7)
    ev.add_argument("--max-tokens", type=int, default=256)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--cache", default=None, help="SQLite generation cache (default OUT/cache.sqlite)")
    ev.add_argument("--out", required=True)


def make_backend(spec: str, model: str | None = None, chat: bool = False):
    if spec.startswith(("http://", "https://")):
        from discern.llm.client import OpenAIClient

        return OpenAIClient(spec, model or spec, chat=chat)
    from discern.llm import load_causal_lm
    from discern.llm.generation import TransformersBackend

    m, tok = load_causal_lm(spec)
    return TransformersBackend(m, tok, model or spec)


def run_medqa_command(args) -> int:
    from discern.llm.generation import CachedBackend

    from .evaluate import DATASETS, evaluate
    from .strategies import StrategyConfig

    datasets = [d for d in args.datasets.split(",") if d]
    bad = [d for d in datasets if d not in DATASETS]
    if bad:
        raise DiscernError(f"unknown dataset(s) {bad} (choose from {', '.join(DATASETS)})")
    strategies = [s for s in args.strategies.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    backend = CachedBackend(make_backend(args.backend, args.model, args.chat), args.cache or out / "cache.sqlite")
    cfg = StrategyConfig(k=args.k, k1=args.k1, k2=args.k2, temperature=args.temperature, max_tokens=args.max_tokens,
                         seed=args.seed)
    results = evaluate(backend, datasets, strategies, out, cfg, args.limit, args.seed)
    print(json.dumps({"out": str(out), "backend_calls": backend.calls,
                      "results": {d: {s: round(r["acc"], 4) for s, r in row.items()} for d, row in results.items()}},
                     indent=2))
    return 0
