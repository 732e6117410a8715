"""``discern attention analyze``."""

from __future__ import annotations

import json


def add_commands(sub) -> None:
    ap = sub.add_parser("attention", help="What does BERT look at? attention analysis of any encoder")
    asub = ap.add_subparsers(dest="attention_command", required=True)
    an = asub.add_parser("analyze", help="surface behaviour, head map and syntax; writes OUT/index.html")
    an.add_argument("--model", default="minilm", help="a Hugging Face encoder folder, or 'minilm' (packaged MiniLM-L6)")
    an.add_argument("--treebank", default="ud-ewt-dev", help="'ud-ewt-dev' or a .conllu file")
    an.add_argument("--text", default=None, help="analyse spaCy silver parses of this UTF-8 text file instead")
    an.add_argument("--out", required=True, help="output folder (results.json, figures, index.html)")
    an.add_argument("--max-sentences", type=int, default=500)
    an.add_argument("--mode", choices=["mean", "first"], default="mean",
                    help="attention from a split word: mean over its pieces (paper) or its first piece")


def run_command(args) -> int:
    from .analyze import analyze

    model = args.model
    if model == "minilm":
        from discern.data.models import model_path
        model = str(model_path("minilm"))
    res = analyze(model, args.treebank, args.out, max_sentences=args.max_sentences, mode=args.mode, text=args.text)
    print(json.dumps({"out": args.out, "sentences": res["sentences"], "syntax": res["syntax"][:5]}, indent=2))
    return 0
