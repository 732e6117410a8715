"""``discern fwl train | evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.config import add_config_args


def add_commands(sub) -> None:
    fp = sub.add_parser("fwl", help="Fast Weight Layers: train an FWL on any causal LM; perplexity, dynamic evaluation")
    fs = fp.add_subparsers(dest="fwl_command", required=True)
    tr = fs.add_parser("train", help="add an FWL to a causal LM and train both end to end (resumable)")
    add_config_args(tr, "tiny, quick, scratch, paper")
    tr.add_argument("--text", default=None,
                    help="UTF-8 training text (default: the training articles of WikiText-2)")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run folder")
    tr.add_argument("--name", default="train")
    ev = fs.add_parser("evaluate", help="perplexity of an FWL folder or any causal LM, optionally with dynamic evaluation")
    ev.add_argument("--model", required=True,
                    help="a folder written by 'fwl train' (RUN/model), a causal-LM folder, or 'smollm2'")
    ev.add_argument("--text", default="wikitext",
                    help="'wikitext' (WikiText-2 test articles), 'moby-dick', or a UTF-8 text file")
    ev.add_argument("--seq-len", type=int, default=512, help="tokens per scored segment")
    ev.add_argument("--max-tokens", type=int, default=0, help="score only the first N tokens (0 = all)")
    ev.add_argument("--dynamic", action="store_true", help="dynamic evaluation: SGD on each segment after scoring it")
    ev.add_argument("--lr", type=float, default=1e-2, help="dynamic evaluation's SGD learning rate")
    ev.add_argument("--dynamic-steps", type=int, default=1)


def load_any(model: str):
    """(model, tokenizer, is_fwl) for an FWL folder, a causal-LM folder or 'smollm2'."""
    path = Path(model)
    if (path / "fwl.json").is_file():
        from transformers import AutoTokenizer

        from .model import FWLCausalLM

        return FWLCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(str(path / "base")), True
    from discern.llm import load_causal_lm

    m, tok = load_causal_lm(model)
    return m, tok, False


def _text_ids(text: str, tok, cfg):
    import torch

    from .experiment import corpora

    if text in ("wikitext", "moby-dick"):
        return corpora(cfg, tok)["wikitext" if text == "wikitext" else "moby_dick"]
    p = _check_text(text)
    return torch.tensor(tok(p.read_text(encoding="utf-8"))["input_ids"], dtype=torch.long)


def _check_text(text: str) -> Path:
    p = Path(text)
    if text not in ("wikitext", "moby-dick") and not p.is_file():
        from discern.core import DiscernError

        raise DiscernError(f"--text {text}: not 'wikitext', 'moby-dick' or a file")
    return p


def run_command(args) -> int:
    if args.fwl_command == "train":
        return _train(args)
    return _evaluate(args)


def _train(args) -> int:
    import copy

    import torch

    from discern.core.runs import run_training_command

    from .experiment import PRESETS, corpora, finetune, load_model
    from .model import FWLCausalLM

    def fn(cfg, run, resume):
        base, tok = load_model(cfg)
        if args.text:
            _check_text(args.text)
            ids = torch.tensor(tok(Path(args.text).read_text(encoding="utf-8"))["input_ids"], dtype=torch.long)
        else:
            ids = corpora(cfg, tok)["train"]
        if len(ids) <= cfg.seq_len:
            from discern.core import DiscernError

            raise DiscernError(f"the training text has {len(ids)} tokens; it needs more than seq_len={cfg.seq_len}")
        model = FWLCausalLM(copy.deepcopy(base), attn_chunks=cfg.attn_chunks, residual=cfg.residual)
        _, info = finetune(model, cfg, ids, run, True, tok)
        return info

    run, info = run_training_command("fwl", PRESETS, args, fn)
    print(json.dumps({"run": str(run.path), "model": str(run.path / "model"), **info}, indent=2, default=float))
    return 0


def _evaluate(args) -> int:
    from .dynamic import evaluate
    from .experiment import Config

    _check_text(args.text)
    model, tok, is_fwl = load_any(args.model)
    ids = _text_ids(args.text, tok, Config())
    if args.max_tokens > 0:
        ids = ids[: args.max_tokens + 1]
    res = evaluate(model, ids.unsqueeze(0), args.seq_len, dynamic=args.dynamic, lr=args.lr, steps=args.dynamic_steps)
    res.update({"model": args.model, "fwl": is_fwl, "dynamic": args.dynamic, "text": args.text,
                "seconds_per_token": res["seconds"] / max(1, res["tokens"])})
    print(json.dumps(res, indent=2, default=float))
    return 0
