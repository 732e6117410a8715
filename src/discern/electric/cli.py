"""``discern electric pretrain | score | nbest | rerank``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from discern.core.config import add_config_args
from discern.core.device import add_device_args


SCORER_HELP = ("KIND:PATH, repeatable: electric:RUN/model (one pass), two-tower:RUN/model, "
               "mlm:HF_MASKED_LM_DIR (n passes), causal:smollm2 or causal:HF_CAUSAL_LM")


def add_commands(sub) -> None:
    ep = sub.add_parser("electric", help="Electric: energy-based cloze model, scoring and n-best re-ranking")
    es = ep.add_subparsers(dest="electric_command", required=True)
    pt = es.add_parser("pretrain", help="pre-train Electric (runs under torchrun for DDP)")
    add_config_args(pt)
    pt.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run folder")
    pt.add_argument("--name", default="pretrain", help="run name (the run folder is runs/electric/<date>-<name>)")
    add_device_args(pt, "the preset's autocast, train.bf16 (bfloat16 in quick and gpu, float32 in tiny and paper); "
                        "bfloat16 / float32 set train.bf16, float16 is refused")
    sc = es.add_parser("score", help="score sentences (one per line from --file, or arguments)")
    sc.add_argument("sentences", nargs="*")
    sc.add_argument("--file", default=None, help="UTF-8 text file, one sentence per line")
    sc.add_argument("--scorer", required=True, help=SCORER_HELP.replace(", repeatable", ""))
    sc.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass")
    add_device_args(sc, "float32 (the scorer's model is loaded in this precision)")
    nb = es.add_parser("nbest", help="speak held-out sentences with espeak-ng and decode n-best lists with pocketsphinx")
    add_config_args(nb)
    nb.add_argument("--out", required=True, help="output JSONL file (resumes if it exists)")
    rr = es.add_parser("rerank", help="re-rank n-best lists with one or more LM scorers; WER table")
    rr.add_argument("--nbest", required=True, help="n-best JSONL (ours) or a mlm-scoring *.am.json file")
    rr.add_argument("--scorer", action="append", required=True, help=SCORER_HELP)
    rr.add_argument("--lambdas", default="", help="comma-separated grid (default: the paper's 0.05..1.0)")
    rr.add_argument("--dev-fraction", type=float, default=0.5, help="share of utterances used to tune each scorer's weight; the rest is the test split")
    rr.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the WER intervals")
    rr.add_argument("--sentence-case", action="store_true", help="score 'He said so.' instead of 'he said so'")
    rr.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass")
    rr.add_argument("--out", default=None, help="write the full report as JSON here")
    add_device_args(rr, "float32 (each scorer's model is loaded in this precision)")


def check_scoring_args(args) -> list[float] | None:
    """One-line errors for ``score`` / ``rerank`` numbers no run can use, before any model loads;
    returns ``rerank``'s ``--lambdas`` grid (None: the paper's)."""
    from discern.core import DiscernError
    from discern.core.files import brief

    if args.batch_size < 1:
        raise DiscernError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not hasattr(args, "lambdas"):
        return None
    if not 0 < args.dev_fraction < 1:
        raise DiscernError(f"--dev-fraction must be in (0, 1), got {args.dev_fraction}")
    if args.bootstrap < 1:
        raise DiscernError(f"--bootstrap must be at least 1, got {args.bootstrap}")
    grid = []
    for item in filter(None, (x.strip() for x in args.lambdas.split(","))):
        try:
            value = float(item)
        except ValueError:
            raise DiscernError(f"--lambdas: {brief(item)} is not a number (a comma-separated grid in [0, 1])") from None
        if not 0 <= value <= 1:  # NaN fails too
            raise DiscernError(f"--lambdas: each weight must be in [0, 1], got {brief(item)}")
        grid.append(value)
    return grid or None


def make_scorer(spec: str, batch_size: int = 64, text_transform=None, device=None, dtype=None):
    """``KIND:PATH`` -> a scorer with ``score(sentences)`` and ``passes(sentence)``; its model on ``device``
    in ``dtype`` (None: where and as it loads, the CPU in float32)."""
    from discern.core import DiscernError

    kind, _, path = spec.partition(":")
    if not path:
        raise DiscernError(f"--scorer {spec!r}: expected KIND:PATH ({SCORER_HELP})")
    if kind == "electric":
        from .pll import ElectricScorer
        scorer = ElectricScorer.from_pretrained(path, batch_size=batch_size, text_transform=text_transform)
    elif kind == "two-tower":
        from .model import load_pretrainer
        from .config import ModelConfig
        from .pll import TwoTowerScorer
        from transformers import AutoTokenizer

        model_folder = Path(path)
        tok = AutoTokenizer.from_pretrained(str(model_folder / "energy"))
        pre = load_pretrainer(model_folder, ModelConfig(), tok.all_special_ids)
        scorer = TwoTowerScorer(pre.noise, tok, batch_size, text_transform=text_transform)
    elif kind == "mlm":
        from .scoring import MaskedLMScorer
        scorer = MaskedLMScorer.from_pretrained(path, batch_size=batch_size, text_transform=text_transform,
                                                **({"device": device} if device is not None else {}))
    elif kind == "causal":
        from .scoring import CausalLMScorer
        scorer = CausalLMScorer.from_pretrained(path, text_transform=text_transform,
                                                **({"dtype": dtype} if dtype is not None else {}))
    else:
        raise DiscernError(f"--scorer {spec!r}: unknown kind {kind!r} (electric, two-tower, mlm, causal)")
    if device is not None or dtype is not None:
        scorer.model.to(device=device, dtype=dtype)
    return scorer


def run_command(args) -> int:
    from discern.core import DataError, build_config
    from discern.core import dist as ddist
    from discern.core.runs import run_training_command

    from .config import PRESETS

    cmd = args.electric_command
    if cmd == "pretrain":
        from discern.core.device import apply_training

        from .pretrain import pretrain

        apply_training(args, ["train.bf16"])

        run, res = run_training_command("electric", PRESETS, args,
                                        lambda cfg, run, resume: pretrain(cfg, run, resume=resume))
        if ddist.is_main():
            print(json.dumps({"run": str(run.path), "model": res.get("model_dir"), "steps": res["steps"],
                              "final": res["final"]}, indent=2, default=float))
        ddist.cleanup()
        return 0
    if cmd == "score":
        check_scoring_args(args)
        sentences = list(args.sentences)
        if args.file:
            p = Path(args.file)
            if not p.is_file():
                raise DataError(f"{p}: no such file")
            sentences += [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not sentences:
            raise DataError("electric score: no sentences (give them as arguments or with --file)")
        from discern.core.device import apply

        device, dtype = apply(args, cpu="float32", cuda="float32")
        scorer = make_scorer(args.scorer, args.batch_size, device=device, dtype=dtype)
        for s, v in zip(sentences, scorer.score(sentences)):
            print(json.dumps({"sentence": s, "score": v, "passes": scorer.passes(s)}))
        return 0
    if cmd == "nbest":
        from .evaluate import build_nbest, held_out_sentences
        from .nbest import nbest_wer

        cfg = build_config(PRESETS, args.preset, args.config, args.sets)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        utts = build_nbest(cfg, held_out_sentences(cfg), out)
        print(json.dumps({"out": str(out), **nbest_wer(utts)}, indent=2))
        return 0
    if cmd == "rerank":
        from .nbest import read_mlm_scoring, read_nbest
        from .rerank import rerank_report
        from .evaluate import score_all
        from .scoring import sentence_case

        from discern.core.device import apply

        grid = check_scoring_args(args) or PRESETS["paper"]().rerank.lambdas
        device, dtype = apply(args, cpu="float32", cuda="float32")
        path = Path(args.nbest)
        utts = read_mlm_scoring(path) if path.name.endswith(".json") else read_nbest(path)
        scores = {}
        for spec in args.scorer:
            scorer = make_scorer(spec, args.batch_size, sentence_case if args.sentence_case else None, device, dtype)
            scores[spec.partition(":")[0] if len(args.scorer) == len({s.partition(':')[0] for s in args.scorer})
                   else spec] = score_all(scorer, utts)["scores"]
        report = rerank_report(utts, scores, grid, args.dev_fraction, args.bootstrap)
        if args.out:
            from discern.core import atomic_write_json
            atomic_write_json(Path(args.out), report)
        print(f"{'re-ranker':24s} {'test WER':>8s}  95% CI            lambda")
        for name, row in report["rows"].items():
            lam = f"{row['lambda']:.2f}" if "lambda" in row else ""
            print(f"{name:24s} {row['wer']:8.2f}  [{row['ci95'][0]:6.2f}, {row['ci95'][1]:6.2f}]  {lam}")
        sys.stdout.flush()
        return 0
    raise AssertionError(cmd)
