"""``discern fwl train | evaluate``: argument parsing and printing; the work is in ``train``,
``data`` and ``dynamic``."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.config import add_config_args
from discern.core.device import add_device_args


def add_commands(sub) -> None:
    fp = sub.add_parser("fwl", help="Fast Weight Layers: train an FWL on any causal LM; perplexity, dynamic evaluation")
    fs = fp.add_subparsers(dest="fwl_command", required=True)
    tr = fs.add_parser("train", help="add an FWL to a causal LM and train both end to end (resumable)")
    add_config_args(tr, "tiny, quick, scratch, paper")
    tr.add_argument("--text", default=None,
                    help="UTF-8 training text (default: the training articles of WikiText-2)")
    tr.add_argument("--control", action="store_true",
                    help="train the control instead: the same block with its fast-weight step sizes fixed at 0")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run folder")
    tr.add_argument("--name", default="train", help="run name (the run folder is runs/fwl/<date>-<name>)")
    add_device_args(tr, "the preset's autocast, bf16 (float32 in every preset); bfloat16 / float32 set bf16, "
                        "float16 is refused")
    ev = fs.add_parser("evaluate", help="perplexity of an FWL folder or any causal LM, optionally with dynamic evaluation")
    ev.add_argument("--model", required=True,
                    help="a folder written by 'fwl train' (RUN/model), a causal-LM folder, or 'smollm2'")
    ev.add_argument("--text", default="wikitext",
                    help="'wikitext' (WikiText-2 test articles), 'moby-dick', or a UTF-8 text file")
    ev.add_argument("--seq-len", type=int, default=512, help="tokens per scored segment")
    ev.add_argument("--max-tokens", type=int, default=0, help="score only the first N tokens (0 = all)")
    ev.add_argument("--dynamic", action="store_true", help="dynamic evaluation: SGD on each segment after scoring it")
    ev.add_argument("--lr", type=float, default=1e-2, help="dynamic evaluation's SGD learning rate")
    ev.add_argument("--dynamic-steps", type=int, default=1, help="SGD steps on each segment (dynamic evaluation)")
    add_device_args(ev, "float32 (the model is loaded, and adapted by dynamic evaluation, in this precision)")


def load_any(model: str, device=None, dtype=None):
    """(model, tokenizer, is_fwl) for an FWL folder (``save_pretrained``, or the earlier ``base/`` +
    ``fwl.pt`` + ``fwl.json`` layout, whose tokenizer is in ``base/``), a causal-LM folder or 'smollm2';
    the model on ``device`` in ``dtype`` (None: the CPU, float32)."""
    import torch

    path = Path(model)
    from .model import is_fwl_folder

    if is_fwl_folder(path):
        from transformers import AutoTokenizer

        from .model import FWLCausalLM

        tok_dir = path / "base" if (path / "fwl.json").is_file() and not (path / "config.json").is_file() else path
        m = FWLCausalLM.from_pretrained(path).eval()
        if device is not None or dtype is not None:
            m.to(device=device, dtype=dtype)
        return m, AutoTokenizer.from_pretrained(str(tok_dir)), True
    from discern.llm import load_causal_lm

    m, tok = load_causal_lm(model, dtype=dtype or torch.float32)
    if device is not None:
        m.to(device)
    return m, tok, False


def _text_ids(text: str, tok, cfg):
    from .data import corpora, text_file_ids

    if text in ("wikitext", "moby-dick"):
        return corpora(cfg, tok)["wikitext" if text == "wikitext" else "moby_dick"]
    return text_file_ids(text, tok)


def _check_text(text: str) -> None:
    if text not in ("wikitext", "moby-dick") and not Path(text).is_file():
        from discern.core import DiscernError

        raise DiscernError(f"--text {text}: not 'wikitext', 'moby-dick' or a file")


def run_command(args) -> int:
    if args.fwl_command == "train":
        return _train(args)
    return _evaluate(args)


def _train(args) -> int:
    from discern.core import dist as ddist
    from discern.core.device import apply_training
    from discern.core.runs import run_training_command

    from .config import PRESETS
    from .data import corpora, text_file_ids
    from .train import build, finetune, load_model

    apply_training(args, ["bf16"])

    def fn(cfg, run, resume):
        marker = run.path / "variant.txt"  # a resumed run keeps the variant it started as
        variant = marker.read_text().strip() if resume and marker.is_file() else ("control" if args.control else "fwl")
        if run.main:
            marker.write_text(variant + "\n")
        if args.text:
            _check_text(args.text)
        base, tok = load_model(cfg)
        ids = text_file_ids(args.text, tok) if args.text else corpora(cfg, tok)["train"]
        if len(ids) <= cfg.seq_len:
            from discern.core import DiscernError

            raise DiscernError(f"the training text has {len(ids)} tokens; it needs more than seq_len={cfg.seq_len}")
        model = build(base, cfg, variant).to(ddist.device())  # CUDA when available; --device chooses
        _, info = finetune(model, cfg, ids, run, tok,
                           desc=f"train {variant}")
        return {"variant": variant, **info}

    run, info = run_training_command("fwl", PRESETS, args, fn)
    print(json.dumps({"run": str(run.path), "model": str(run.path / "model"), **info}, indent=2, default=float))
    return 0


def _evaluate(args) -> int:
    from .config import Config
    from .dynamic import evaluate

    from discern.core.device import apply

    _check_text(args.text)
    device, dtype = apply(args, cpu="float32", cuda="float32")
    model, tok, is_fwl = load_any(args.model, device, dtype)
    ids = _text_ids(args.text, tok, Config())
    if args.max_tokens > 0:
        ids = ids[: args.max_tokens + 1]
    res = evaluate(model, ids.unsqueeze(0), args.seq_len, dynamic=args.dynamic, lr=args.lr, steps=args.dynamic_steps)
    for k in ("segment_nll", "segment_tokens"):
        res.pop(k)
    res.update({"model": args.model, "fwl": is_fwl, "fast_weights": bool(is_fwl and model.fast_weights),
                "dynamic": args.dynamic, "text": args.text,
                "seconds_per_token": res["seconds"] / max(1, res["tokens"])})
    print(json.dumps(res, indent=2, default=float))
    return 0
