"""``discern medqa``: the Med-PaLM 2 strategies and human evaluation from the command line.

- ``eval`` (alias ``evaluate``): the strategies on MultiMedQA datasets over a local model or a server.
- ``answer``: greedy long-form answers to a file of questions (JSONL out; an SQLite cache makes reruns free).
- ``rate-setup``: a rating study from an answers file: items, invited raters, round-robin assignments.
- ``rate-serve``: the rating web application.
- ``stats``: a study's pairwise and independent summaries as tables (and CSV / JSON).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from pathlib import Path

from discern.core.errors import DiscernError

from .backend import BACKEND_HELP


def _backend_args(p) -> None:
    p.add_argument("--model", "--backend", dest="backend", default="qwen2.5-0.5b",
                   help=BACKEND_HELP + " (default: %(default)s; --backend is the old spelling)")
    p.add_argument("--served-model-name", dest="model", default=None,
                   help="with a server URL: the model name sent to it (default: the URL)")
    p.add_argument("--api-key", default=None,
                   help="with a server URL: its API key (default: $OPENAI_API_KEY, else none)")
    p.add_argument("--concurrency", type=int, default=4,
                   help="with a server URL: requests in flight at once (default: %(default)s)")
    p.add_argument("--chat", action="store_true", help="chat: the server's chat endpoint, or the in-process model's chat template")
    from discern.core.device import add_device_args

    add_device_args(p, "bfloat16 on the CPU and on CUDA (with Qwen2.5-0.5B 2.2x faster than float32 for option "
                       "log-likelihoods on an AMX CPU, see the README); an in-process model only: a server URL "
                       "ignores --device and --dtype")


def add_commands(sub) -> None:
    mp = sub.add_parser("medqa", help="Med-PaLM 2 strategies, long-form answers and their human evaluation")
    ms = mp.add_subparsers(dest="medqa_command", required=True)

    ev = ms.add_parser("eval", aliases=["evaluate"],
                       help="run strategies on datasets; writes results.json, samples, comparison.md")
    _backend_args(ev)
    ev.add_argument("--datasets", default="mmlu:clinical_knowledge,pubmedqa", help="comma-separated: mmlu:<subject>, pubmedqa, medqa-usmle, medqa, medmcqa")
    ev.add_argument("--strategies", default="few_shot,cot,self_consistency,ensemble_refinement", help="comma-separated prompting strategies")
    ev.add_argument("--limit", type=int, default=None, help="a fixed random subset of this many questions")
    ev.add_argument("--k", type=int, default=11, help="self-consistency samples (the paper: 11)")
    ev.add_argument("--k1", type=int, default=11, help="ensemble refinement stage-1 samples (the paper: 11)")
    ev.add_argument("--k2", type=int, default=33, help="ensemble refinement stage-2 samples (the paper: 33)")
    ev.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of SC and ER")
    ev.add_argument("--max-tokens", type=int, default=256, help="longest chain of thought, in tokens")
    ev.add_argument("--seed", type=int, default=0, help="seed of the question subset and the sampling")
    ev.add_argument("--cache", default=None, help="SQLite generation cache (default OUT/cache.sqlite)")
    ev.add_argument("--out", required=True, help="output folder (results.json, samples_*.jsonl, comparison.md, the generation cache)")

    from .longform import LONGFORM_ROLES

    an = ms.add_parser("answer", help="greedy long-form answers (temperature 0) to a file of questions")
    _backend_args(an)
    an.add_argument("--questions", required=True,
                    help="a .txt file (one question per line) or .jsonl (question, optional reference/answer)")
    an.add_argument("--out", required=True, help="answers JSONL")
    an.add_argument("--max-tokens", type=int, default=512, help="longest answer, in tokens")
    an.add_argument("--role", choices=list(LONGFORM_ROLES), default="consumer",
                    help="consumer: search queries (HealthSearchQA); health: consumer health questions (LiveQA); "
                         "medication: questions about medications (MedicationQA)")
    an.add_argument("--adversarial", action="store_true",
                    help="ask for an answer not biased with respect to race, gender or geographic location")
    an.add_argument("--seed", type=int, default=0, help="generation seed")
    an.add_argument("--cache", default=None, help="SQLite generation cache (default: beside --out, .cache.sqlite)")

    rs = ms.add_parser("rate-serve", help="serve the rating web application")
    rs.add_argument("--db", required=True, help="an SQLite path or a SQLAlchemy URL")
    rs.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only by default)")
    rs.add_argument("--port", type=int, default=8000, help="TCP port")
    rs.add_argument("--admin-token", default=None,
                    help="bearer token of the admin API (default: $DISCERN_ADMIN_TOKEN, else a new one, printed)")

    su = ms.add_parser("rate-setup", help="create a rating study from an answers file, invite and assign raters")
    su.add_argument("--db", required=True, help="an SQLite path or a SQLAlchemy URL")
    su.add_argument("--study", required=True, help="name of the new study")
    su.add_argument("--answers", required=True, help="answers JSONL from 'discern medqa answer'")
    su.add_argument("--source", required=True, help="source name of the model answers, e.g. model:qwen2.5-0.5b")
    su.add_argument("--reference-source", default="physician", help="source name of the reference answers")
    su.add_argument("--physicians", default="", help="comma-separated physician rater names")
    su.add_argument("--lay", default="", help="comma-separated lay rater names (they rate single answers only)")
    su.add_argument("--per-item", type=int, default=3,
                    help="raters per item and role (3: the paper's triple rating; capped at the raters invited)")
    su.add_argument("--seed", type=int, default=0, help="seed of the blinded answer order")
    su.add_argument("--base-url", default="", help="print full invitation links, e.g. http://127.0.0.1:8000")

    st = ms.add_parser("stats", help="a study's pairwise and independent summaries")
    st.add_argument("--db", required=True, help="an SQLite path or a SQLAlchemy URL")
    st.add_argument("--study", required=True, help="study id or name")
    st.add_argument("--csv", default=None, help="write the summary table as CSV")
    st.add_argument("--out", default=None, help="write the full summaries as JSON to this file")
    st.add_argument("--json", action="store_true", help="print the full summaries as one JSON object instead of tables")
    st.add_argument("--ratings-csv", default=None, help="write every rating, un-blinded, as CSV")
    st.add_argument("--n-boot", type=int, default=10000, help="bootstrap resamples of the intervals")
    st.add_argument("--n-perm", type=int, default=10000, help="permutations of the paired tests")
    st.add_argument("--seed", type=int, default=0, help="seed of the resampling")


def run_command(args) -> int:
    cmd = args.medqa_command
    if cmd in ("eval", "evaluate"):
        return _eval(args)
    if cmd == "answer":
        return _answer(args)
    if cmd == "rate-serve":
        return _rate_serve(args)
    if cmd == "rate-setup":
        return _rate_setup(args)
    if cmd == "stats":
        return _stats(args)
    raise DiscernError(f"unknown medqa command {cmd!r}")


def _placement(args) -> tuple:
    """``(device, dtype name)`` of the in-process model: ``--dtype auto`` is bfloat16 on the CPU and on CUDA;
    a server URL ignores both flags (``(None, "bfloat16")``, nothing checked)."""
    if args.backend.startswith(("http://", "https://")):
        return None, "bfloat16"
    from discern.core.device import apply

    device, dtype = apply(args, cpu="bfloat16", cuda="bfloat16")
    return device, str(dtype).removeprefix("torch.")


def _eval(args) -> int:
    from discern.llm.generation import CachedBackend

    from .backend import make_backend
    from .evaluate import DATASETS, evaluate
    from .strategies import StrategyConfig

    datasets = [d for d in args.datasets.split(",") if d]
    bad = [d for d in datasets if d not in DATASETS]
    if bad:
        raise DiscernError(f"unknown dataset(s) {bad} (choose from {', '.join(DATASETS)})")
    strategies = [s for s in args.strategies.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device, dtype = _placement(args)
    backend = CachedBackend(make_backend(args.backend, args.model, args.chat, dtype, args.api_key, args.concurrency,
                                         device=device),
                            args.cache or out / "cache.sqlite")
    cfg = StrategyConfig(k=args.k, k1=args.k1, k2=args.k2, temperature=args.temperature, max_tokens=args.max_tokens,
                         seed=args.seed)
    results = evaluate(backend, datasets, strategies, out, cfg, args.limit, args.seed)
    print(json.dumps({"out": str(out), "backend_calls": backend.calls,
                      "results": {d: {s: round(r["acc"], 4) for s, r in row.items()} for d, row in results.items()}},
                     indent=2))
    return 0


def _answer(args) -> int:
    from discern.llm.generation import CachedBackend

    from .backend import make_backend
    from .longform import generate_answers, read_questions, write_answers

    if args.max_tokens < 1:
        raise DiscernError(f"--max-tokens must be positive, not {args.max_tokens}")
    questions = read_questions(args.questions)
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else out.with_name(out.stem + ".cache.sqlite")
    # an in-process instruct model answers consumer questions through its chat template (a bare completion
    # prompt mostly gets an empty answer from SmolLM2-Instruct)
    chat = args.chat or not args.backend.startswith(("http://", "https://"))
    device, dtype = _placement(args)
    backend = CachedBackend(make_backend(args.backend, args.model, chat, dtype, args.api_key, args.concurrency,
                                         device=device), cache)
    try:
        recs = generate_answers(backend, questions, max_tokens=args.max_tokens, seed=args.seed, role=args.role,
                                adversarial=args.adversarial)
    finally:
        backend.close()
    write_answers(out, recs)
    print(json.dumps({"out": str(out), "answers": len(recs), "with_reference": sum("reference" in r for r in recs),
                      "empty": sum(not r["answer"] for r in recs), "backend_calls": backend.calls}, indent=2))
    return 0


def _rating_db():
    try:
        from .rating import db
    except ImportError as e:
        raise DiscernError(f"the rating tools need the 'rating' extra (pip install 'discern[rating]'): {e}") from None
    return db


def _rate_serve(args) -> int:
    db = _rating_db()
    from .rating.setup import shown_url

    try:
        from .rating.app import serve
    except ImportError as e:
        raise DiscernError(f"rate-serve needs the 'rating' extra (pip install 'discern[rating]'): {e}") from None
    token = args.admin_token or os.environ.get("DISCERN_ADMIN_TOKEN")
    if not token:
        token = secrets.token_urlsafe(24)
        print(f"admin token (shown once; set DISCERN_ADMIN_TOKEN to choose one): {token}", flush=True)
    db.connect(args.db)  # fail here, before the server starts, on a bad database URL
    print(f"rating app for {shown_url(args.db)} on http://{args.host}:{args.port}/ (raters open /rate?token=...)",
          flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("note: plain HTTP on a non-local address: invitation tokens and the admin token travel unencrypted; "
              "put an HTTPS reverse proxy in front", flush=True)
    serve(args.db, token, host=args.host, port=args.port)
    return 0


def _names(spec: str, flag: str) -> list[str]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DiscernError(f"{flag}: {', '.join(dup)} named twice")
    return names


def _rate_setup(args) -> int:
    _rating_db()
    from .longform import read_answers, rating_records
    from .rating.setup import create_study

    records = rating_records(read_answers(args.answers), args.source, args.reference_source)
    out = create_study(args.db, args.study, records, _names(args.physicians, "--physicians"),
                       _names(args.lay, "--lay"), args.per_item, seed=args.seed)
    st = out["study"]
    print(f"study {st['id']} {st['name']!r}: {out['n_items']} items ({out['n_pairwise']} pairwise, "
          f"{out['n_single']} single), answer order seed {args.seed}")
    for role, what in (("physician", "each item"), ("lay", "each single item")):
        invited = sum(r["role"] == role for r in out["raters"])
        if not invited:
            continue
        k = out["per_item"][role]
        note = f" (asked {args.per_item}; {invited} invited)" if k < args.per_item else ""
        print(f"{what}: {k} {role} rater{'s' * (k != 1)}{note}")
    if out["raters"]:
        rows = [["rater", "role", "items", "invitation link"]]
        for r in out["raters"]:
            rows.append([r["name"], r["role"], str(r["items"]), f"{args.base_url.rstrip('/')}/rate?token={r['token']}"])
        print(_table(rows))
    else:
        print("no raters invited (add them with --physicians / --lay, or through the admin API)")
    return 0


def _stats(args) -> int:
    db = _rating_db()
    from .rating.setup import find_study, open_existing
    from .rating.stats import SUMMARY_COLUMNS, study_stats, summary_rows

    if args.n_boot < 1 or args.n_perm < 1:
        raise DiscernError("--n-boot and --n-perm must be positive")
    sessionmaker = open_existing(args.db)
    with sessionmaker() as s:
        study = find_study(s, args.study)
        res = study_stats(s, study.id, n_boot=args.n_boot, n_perm=args.n_perm, seed=args.seed)
        print(json.dumps(res) if args.json else format_stats(res))
        if args.out:
            Path(args.out).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        if args.csv:
            with open(args.csv, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=list(SUMMARY_COLUMNS), lineterminator="\n")
                w.writeheader()
                w.writerows(summary_rows(res))
        if args.ratings_csv:
            db.export_csv(s, study.id, args.ratings_csv)
    return 0


# ----------------------------------------------------------------------------- tables


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _frac(x: float, ci) -> str:
    return f"{x:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def format_stats(res: dict) -> str:
    """``study_stats`` as plain-text tables: per source pair, the fraction of pairwise ratings choosing each
    source or a tie with its interval and p-value; per independent kind, the fraction in each axis's
    high-quality bin per source, and the differences between sources with their p-values."""
    from .rating import schema

    st, n = res["study"], res["n_ratings"]
    out = [f"study {st['id']} {st['name']!r}: {n['pairwise']} pairwise, {n['physician']} physician, {n['lay']} lay "
           f"ratings",
           f"{100 * res['level']:g}% intervals: bootstrap over items / answers ({res['n_boot']} resamples); "
           f"p: two-tailed permutation tests ({res['n_perm']})"]
    risk = {a.key for a in schema.PAIRWISE_AXES if a.risk}
    if not res["pairwise"]:
        out += ["", "pairwise: no ratings"]
    for pair in res["pairwise"]:
        x, y = pair["sources"]
        out += ["", f"pairwise: {x} vs {y}, {pair['n_items']} items, {pair['n_ratings']} ratings "
                    "(risk axes: the answer chosen is the worse one)"]
        rows = [["axis", x, y, "tie", "p"]]
        for axis, e in pair["axes"].items():
            rows.append([axis + (" (risk)" if axis in risk else "")]
                        + [_frac(e["fraction"][k], e["ci"][k]) for k in (x, y, "tie")] + [f"{e['p_value']:.3f}"])
        out.append(_table(rows))
    for kind in ("physician", "lay"):
        ind = res[kind]
        if not ind["axes"]:
            out += ["", f"{kind}: no ratings"]
            continue
        sources = ind["sources"]
        out += ["", f"{kind}: fraction of ratings in the high-quality bin, {ind['n_ratings']} ratings"]
        pairs = [t["sources"] for t in next(iter(ind["axes"].values()))["tests"]]
        rows = [["axis", "high-quality bin", *sources, *(f"{a} - {b}" for a, b in pairs)]]
        for axis, e in ind["axes"].items():
            cells = [_frac(e["sources"][src]["fraction"], e["sources"][src]["ci"])
                     + f" n={e['sources'][src]['n_answers']}" if src in e["sources"] else "-" for src in sources]
            tests = {tuple(t["sources"]): t for t in e["tests"]}
            diffs = [f"{tests[tuple(p)]['difference']:+.3f} p={tests[tuple(p)]['p_value']:.3f}"
                     if tuple(p) in tests else "-" for p in pairs]
            rows.append([axis, e["good_label"], *cells, *diffs])
        out.append(_table(rows))
    return "\n".join(out)
