"""``discern attention analyze``."""

from __future__ import annotations

import json

# analysis sizes when neither --preset nor a flag sets them
DEFAULTS = {"max_sentences": 500, "gap_examples": 300, "probe_train": 600, "probe_eval": 300}


def add_commands(sub) -> None:
    ap = sub.add_parser("attention", help="What does BERT look at? attention analysis of any encoder")
    asub = ap.add_subparsers(dest="attention_command", required=True)
    an = asub.add_parser("analyze", help="surface behaviour, head map, syntax, coreference and probes; "
                                         "writes OUT/index.html")
    an.add_argument("--model", default="minilm",
                    help="a Hugging Face encoder folder, or a packaged one: 'minilm' (MiniLM-L6), 'mpnet-base'")
    an.add_argument("--treebank", default="ud-ewt-dev", help="'ud-ewt-dev' or a .conllu file")
    an.add_argument("--text", default=None, help="analyse spaCy silver parses of this UTF-8 text file instead")
    an.add_argument("--out", required=True, help="output folder (results.json, figures, index.html)")
    an.add_argument("--preset", choices=["tiny", "quick", "paper"], default=None,
                    help="take the sizes (sentences, GAP passages, probe train/eval) of this reproduction preset")
    an.add_argument("--max-sentences", type=int, default=None,
                    help=f"treebank sentences of 3-40 words (default {DEFAULTS['max_sentences']})")
    an.add_argument("--gap-examples", type=int, default=None,
                    help=f"GAP passages for the coreference heads, 0 = skip (default {DEFAULTS['gap_examples']})")
    an.add_argument("--probe-train", type=int, default=None,
                    help=f"probe training sentences, at most half of those analysed; 0 = skip the probes "
                         f"(default {DEFAULTS['probe_train']})")
    an.add_argument("--probe-eval", type=int, default=None,
                    help=f"probe evaluation sentences (default {DEFAULTS['probe_eval']})")
    an.add_argument("--vectors", choices=["glove", "model"], default="glove",
                    help="word vectors of the attention + words probe: GloVe 6B 50d (paper) or the model's input "
                         "embeddings")
    an.add_argument("--seed", type=int, default=0, help="seed of every random draw (sentence sample, probe splits)")
    an.add_argument("--mode", choices=["mean", "first"], default="mean",
                    help="attention from a split word: mean over its pieces (paper) or its first piece")
    from discern.core.device import add_device_args

    add_device_args(an, "float32 (the encoder is loaded in this precision; its maps are read in float32)")


def sizes(args) -> dict:
    """The four sizes: a preset's, then the flags given."""
    out = dict(DEFAULTS)
    if args.preset:
        from .config import PRESETS

        cfg = PRESETS[args.preset]()
        out = {k: getattr(cfg, k) for k in DEFAULTS}
    for k in DEFAULTS:
        if getattr(args, k) is not None:
            out[k] = getattr(args, k)
    return out


def run_command(args) -> int:
    from discern.core.device import apply

    from .analyze import analyze

    device, dtype = apply(args, cpu="float32", cuda="float32")
    # a packaged name or a folder; resolved inside analyze, after the input file is checked
    res = analyze(args.model, args.treebank, args.out, mode=args.mode, text=args.text, vectors=args.vectors,
                  seed=args.seed, device=device, dtype=dtype, **sizes(args))
    s = res["summary"]
    brief = {"out": args.out, "model": res["model"], "sentences": res["sentences"],
             "special_tokens": res["special_tokens"],
             "middle_layers": {"layers": s["middle_layers"], s["special_tokens"]["cls"]: round(s["middle_cls"], 3),
                               s["special_tokens"]["sep"]: round(s["middle_sep"], 3)},
             "syntax": res["syntax"][:5], "coref": res["coref"], "probes": res["probes"],
             "seconds": round(res["seconds"], 1)}
    print(json.dumps(brief, indent=2))
    return 0
