"""Reproduction: base LM vs +FWL vs dynamic evaluation on WikiText-2, with compute per token.

The paper (arXiv 2212.02475) trains Transformer LMs with and without FWLs on WikiText-103 and
compares with dynamic evaluation (Krause et al. 2019).  Here, at laptop compute:

1. the text: WikiText-2 (validation release, from the data registry), cut by article: the first
   ``train_fraction`` of the articles are for training, the next ``dev_fraction`` choose dynamic
   evaluation's learning rate, the rest are the test text; Moby Dick is a held-out domain;
2. two models get the same fine-tuning (same windows, steps and schedule): the base LM, and the
   base LM with an FWL block (trained end to end, second order); by default the base is the real
   SmolLM2-135M, or (preset ``scratch``/``tiny``) a GPT-2-style LM trained from scratch with the
   FWL in the paper's placement;
3. perplexity of base, +FWL and base + dynamic evaluation on non-overlapping segments of
   ``seq_len`` tokens; compute per token as counted FLOPs (``torch.utils.flop_counter``) and as
   measured seconds.

Claims: "FWL lowers perplexity over the base model"; "at far less extra compute than dynamic
evaluation" (FWL's extra FLOPs per token under a third of dynamic evaluation's); and the
abstract's framing, "FWL gets most of dynamic evaluation's gain" (over half of it).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from discern.core import Run, config_to_dict

PAPER = {
    "dynamic_eval_compute": "dynamic evaluation needs over 3x the compute of standard inference (abstract)",
    "fwl_compute": "FWLs require relatively little extra compute or memory (abstract)",
    "dynamic_eval_gain": "Transformer-XL on WikiText-103: 18.3 -> 16.4 test perplexity with dynamic evaluation "
                         "(Krause et al. 2019)",
}


@dataclass
class ScratchModel:
    """The GPT-2-style LM trained from scratch (``model = "scratch"``), with the GPT-2 BPE."""
    layers: int = 4
    hidden: int = 256
    heads: int = 4


@dataclass
class Config:
    model: str = "smollm2"  # smollm2, scratch (a GPT-2-style LM trained from scratch), or a causal-LM folder
    residual: bool = True  # FWL added to the hidden state (pretrained LMs); False: the paper's placement
    attn_chunks: int = 4  # mixed-chunk attention inside the FWL
    scratch: ScratchModel = field(default_factory=ScratchModel)
    seq_len: int = 512
    train_fraction: float = 0.6  # of WikiText-2's articles
    dev_fraction: float = 0.05
    steps: int = 50
    batch_size: int = 1
    lr: float = 3e-5  # base-model parameters
    block_lr: float = 1e-3  # the new FWL block's weights
    step_lr: float = 1e-2  # the FWL's learned step sizes (a short fine-tuning must move them from 0.01)
    warmup_fraction: float = 0.1
    eval_tokens: int = 8192  # test tokens scored per corpus (0 = all)
    dev_tokens: int = 2048
    dynamic_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)  # SGD, chosen on the dev text
    dynamic_steps: int = 1
    seed: int = 0


def quick() -> Config:
    return Config()


def paper() -> Config:
    return Config(steps=1000, batch_size=4, eval_tokens=0, dev_tokens=8192)


def scratch() -> Config:
    """The paper's setting in miniature: a GPT-2-style LM trained from scratch with and without an FWL."""
    return Config(model="scratch", residual=False, steps=600, batch_size=8, seq_len=256, lr=1e-3, block_lr=1e-3,
                  dynamic_lrs=(1e-3, 3e-3, 1e-2))


def tiny() -> Config:
    return Config(model="scratch", residual=False, scratch=ScratchModel(1, 32, 2), steps=4,
                  batch_size=2, seq_len=32, lr=1e-3, block_lr=1e-3, eval_tokens=128, dev_tokens=64,
                  dynamic_lrs=(1e-3, 1e-2), attn_chunks=2)


PRESETS = {"tiny": tiny, "quick": quick, "scratch": scratch, "paper": paper}

_HEADING = re.compile(r"^ = [^=].* = $")


def wikitext_articles(text: str) -> list[str]:
    """WikiText articles: each starts at a top-level heading line `` = Title = ``."""
    articles: list[list[str]] = []
    for line in text.split("\n"):
        if _HEADING.match(line) or not articles:
            articles.append([])
        articles[-1].append(line)
    return ["\n".join(a).strip() + "\n" for a in articles if "".join(a).strip()]


def load_model(cfg: Config):
    """(base causal LM, tokenizer) for ``cfg.model``."""
    import torch

    if cfg.model == "scratch":
        from transformers import GPT2Config, GPT2LMHeadModel

        from discern.data.tokenizer import gpt2_tokenizer

        tok = gpt2_tokenizer()
        torch.manual_seed(cfg.seed)
        s = cfg.scratch
        conf = GPT2Config(vocab_size=len(tok), n_positions=cfg.seq_len + 1, n_embd=s.hidden, n_layer=s.layers,
                          n_head=s.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        return GPT2LMHeadModel(conf), tok
    from discern.llm import load_causal_lm

    return load_causal_lm(cfg.model)


def corpora(cfg: Config, tok) -> dict:
    """Token ids (1-D LongTensors) of the train, dev and test WikiText-2 text and of Moby Dick."""
    import torch

    from discern.data.corpora import moby_dick, wikitext2_valid

    arts = wikitext_articles(wikitext2_valid())
    a = int(round(cfg.train_fraction * len(arts)))
    b = a + max(1, int(round(cfg.dev_fraction * len(arts))))
    moby = "\n\n".join(c.text for c in moby_dick() if c.id.startswith("chapter_"))

    def ids(text: str) -> torch.Tensor:
        return torch.tensor(tok(text)["input_ids"], dtype=torch.long)

    return {"train": ids("".join(arts[:a])), "dev": ids("".join(arts[a:b])), "wikitext": ids("".join(arts[b:])),
            "moby_dick": ids(moby), "articles": [a, b - a, len(arts) - b]}


def _head(ids, n: int):
    return (ids if n <= 0 else ids[: n + 1]).unsqueeze(0)


def finetune(model, cfg: Config, train_ids, sub: Run, fwl: bool, tok=None):
    """Train ``model`` on random windows of ``train_ids``; returns (trained model, summary).

    Resumable: the loop checkpoints in ``sub``; once done, the model is saved to ``sub/model``
    (``save_pretrained``, with the tokenizer) and the optimiser checkpoint is deleted, so a rerun
    loads the trained model instead of training again."""
    import json

    import torch

    from discern.core import atomic_write_json, derive_seed
    from discern.train import TrainConfig, fit, param_groups

    from .model import FWLCausalLM

    out = sub.path / "model"
    if (sub.path / "train.json").is_file() and out.is_dir():
        from transformers import AutoModelForCausalLM

        trained = FWLCausalLM.from_pretrained(out) if fwl else AutoModelForCausalLM.from_pretrained(out)
        return trained.eval(), json.loads((sub.path / "train.json").read_text())

    L = cfg.seq_len
    n_windows = len(train_ids) - L

    def batch_fn(step, micro, rank, world):
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "fwl-batch", step, micro, rank))
        starts = torch.randint(0, n_windows, (cfg.batch_size // world,), generator=g)
        return torch.stack([train_ids[s:s + L] for s in starts.tolist()])

    def step_fn(m, ids):
        loss = m.loss(ids) if fwl else m(input_ids=ids, labels=ids).loss
        return loss, {}

    groups = param_groups(model, 0.0)
    if fwl:  # the new block's own parameters (not the shared unembedding) at block_lr, step sizes at step_lr
        kind = {id(p): ("steps" if n.startswith("steps.") else "block") for n, p in model.block.named_parameters()
                if not n.startswith("unembed.")}
        scale = {"base": 1.0, "block": cfg.block_lr / cfg.lr, "steps": cfg.step_lr / cfg.lr}
        params = [p for g in groups for p in g["params"]]
        groups = [{"params": [p for p in params if kind.get(id(p), "base") == k], "weight_decay": 0.0,
                   "lr_scale": scale[k]} for k in scale]
        groups = [g for g in groups if g["params"]]
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_fraction=cfg.warmup_fraction,
                     optimizer="adamw", weight_decay=0.0, bias_correction=True, log_every=5, seed=cfg.seed)
    sub.checkpoints.mkdir(parents=True, exist_ok=True)
    resume = (sub.checkpoints / "last.pt").is_file()
    state = fit(model, step_fn, batch_fn, tc, sub, groups=groups, resume=resume,
                desc="fine-tune +FWL" if fwl else "fine-tune base")
    model.eval()
    model.save_pretrained(out)
    if tok is not None:
        tok.save_pretrained(out / "base" if fwl else out)
    info = {"seconds": state.elapsed, "steps": state.step, "last": state.last_metrics}
    atomic_write_json(sub.path / "train.json", info)
    (sub.checkpoints / "last.pt").unlink(missing_ok=True)
    return model, info


def flops_per_token(model, ids, kind: str, lr: float = 1e-4) -> float:
    """FLOPs per scored token of one segment ``ids`` (1, T): a forward pass (``static``) or, for
    ``dynamic``, the scoring pass plus the adaptation step's forward and backward."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .dynamic import segment_nll

    m = copy.deepcopy(model) if kind == "dynamic" else model
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            _, n = segment_nll(m, ids)
        if kind == "dynamic":
            loss, n = segment_nll(m, ids)
            (loss / n).backward()
    return counter.get_total_flops() / n


def run(cfg: Config, run: Run) -> dict:
    import torch

    from .dynamic import evaluate
    from .model import FWLCausalLM

    torch.manual_seed(cfg.seed)
    base0, tok = load_model(cfg)
    data = corpora(cfg, tok)
    if len(data["train"]) <= cfg.seq_len:
        raise ValueError(f"the training text ({len(data['train'])} tokens) is shorter than seq_len={cfg.seq_len}")

    base = copy.deepcopy(base0)
    fwl = FWLCausalLM(copy.deepcopy(base0), attn_chunks=cfg.attn_chunks, residual=cfg.residual)
    train = {}
    for name, model, is_fwl in (("base", base, False), ("fwl", fwl, True)):
        sub = Run(run.path / name)
        trained, train[name] = finetune(model, cfg, data["train"], sub, is_fwl, tok)
        if is_fwl:
            fwl = trained
        else:
            base = trained

    seg = cfg.seq_len
    dev = _head(data["dev"], cfg.dev_tokens)

    def choose_lr():
        scores = {str(lr): evaluate(base, dev, seg, dynamic=True, lr=lr, steps=cfg.dynamic_steps)["ppl"]
                  for lr in cfg.dynamic_lrs}
        static = evaluate(base, dev, seg)["ppl"]
        return {"dev_ppl": scores, "dev_static_ppl": static, "lr": float(min(scores, key=scores.get))}

    dyn = run.stage("dynamic_lr", choose_lr)
    results = {}
    for corpus in ("wikitext", "moby_dick"):
        ids = _head(data[corpus], cfg.eval_tokens)

        def score(ids=ids):
            out = {"base": evaluate(base, ids, seg), "fwl": evaluate(fwl, ids, seg),
                   "dynamic": evaluate(base, ids, seg, dynamic=True, lr=dyn["lr"], steps=cfg.dynamic_steps)}
            for v in out.values():
                v["seconds_per_token"] = v["seconds"] / v["tokens"]
            return out

        results[corpus] = run.stage(f"eval_{corpus}", score)

    one = _head(data["wikitext"], seg)
    flops = run.stage("flops", lambda: {"base": flops_per_token(base, one, "static"),
                                        "fwl": flops_per_token(fwl, one, "static"),
                                        "dynamic": flops_per_token(base, one, "dynamic", dyn["lr"])})
    steps_fwl = {k: float(v.detach()) for k, v in fwl.block.steps.items()}
    return _report(cfg, run, data, train, dyn, results, flops, steps_fwl)


def _report(cfg, run, data, train, dyn, results, flops, steps_fwl) -> dict:
    wt = results["wikitext"]
    table = []
    for corpus, res in results.items():
        for method in ("base", "fwl", "dynamic"):
            table.append({"corpus": corpus, "method": {"fwl": "+FWL", "dynamic": "dynamic eval"}.get(method, method),
                          "perplexity": res[method]["ppl"], "tokens": res[method]["tokens"],
                          "GFLOPs_per_token": flops[method] / 1e9,
                          "compute_vs_base": flops[method] / flops["base"],
                          "ms_per_token": 1e3 * res[method]["seconds_per_token"],
                          "time_vs_base": res[method]["seconds_per_token"] / res["base"]["seconds_per_token"]})
    extra_fwl = flops["fwl"] / flops["base"] - 1
    extra_dyn = flops["dynamic"] / flops["base"] - 1
    gain_fwl = math.log(wt["base"]["ppl"]) - math.log(wt["fwl"]["ppl"])
    gain_dyn = math.log(wt["base"]["ppl"]) - math.log(wt["dynamic"]["ppl"])
    share = gain_fwl / gain_dyn if gain_dyn > 0 else float("nan")
    mb = results["moby_dick"]
    claims = [
        {"claim": "FWL lowers perplexity over the base model",
         "paper": "FWLs significantly improve language modeling perplexity (WikiText-103)",
         "ours": f"WikiText-2 test {wt['base']['ppl']:.2f} -> {wt['fwl']['ppl']:.2f}; Moby Dick "
                 f"{mb['base']['ppl']:.2f} -> {mb['fwl']['ppl']:.2f} (both fine-tuned alike, {cfg.steps} steps)",
         "held": wt["fwl"]["ppl"] < wt["base"]["ppl"]},
        {"claim": "at far less extra compute than dynamic evaluation",
         "paper": PAPER["dynamic_eval_compute"] + "; " + PAPER["fwl_compute"],
         "ours": f"extra FLOPs per token: FWL +{100 * extra_fwl:.0f}%, dynamic evaluation +{100 * extra_dyn:.0f}% "
                 f"(measured time: x{wt['fwl']['seconds_per_token'] / wt['base']['seconds_per_token']:.2f} vs "
                 f"x{wt['dynamic']['seconds_per_token'] / wt['base']['seconds_per_token']:.2f})",
         "held": extra_fwl < extra_dyn / 3},
        {"claim": "FWL gets most of dynamic evaluation's gain",
         "paper": "FWLs provide the benefits of dynamic evaluation much more efficiently; " + PAPER["dynamic_eval_gain"],
         "ours": f"WikiText-2 log-perplexity gain: FWL {gain_fwl:.4f}, dynamic evaluation {gain_dyn:.4f} "
                 f"({100 * share:.0f}% of it)" if gain_dyn > 0 else
                 f"dynamic evaluation did not lower perplexity ({wt['dynamic']['ppl']:.2f})",
         "held": bool(gain_dyn > 0 and share > 0.5)},
    ]
    result = {"paper": "fwl", "title": f"Fast Weight Layers (on {Path(cfg.model).name})",
              "preset_config": config_to_dict(cfg), "articles_train_dev_test": data["articles"],
              "tokens": {k: int(len(v)) for k, v in data.items() if k != "articles"},
              "train": train, "dynamic_lr": dyn, "results": results, "flops_per_token": flops,
              "learned_step_sizes": steps_fwl, "paper_numbers": PAPER, "table": table, "claims": claims,
              "plots": _plots(run, table)}
    run.save_results(result)
    return result


def _plots(run: Run, table: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run.plots.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, corpus in zip(axes[:2], ("wikitext", "moby_dick")):
        for r in (r for r in table if r["corpus"] == corpus):
            ax.scatter(r["compute_vs_base"], r["perplexity"], s=60)
            ax.annotate(r["method"], (r["compute_vs_base"], r["perplexity"]), textcoords="offset points",
                        xytext=(6, 4))
        ax.set_xlabel("FLOPs per token / base")
        ax.set_ylabel("perplexity")
        ax.set_title(corpus)
    for name, label in (("base", "base"), ("fwl", "+FWL")):
        recs = [m for m in Run(run.path / name).metrics() if "loss" in m]
        axes[2].plot([m["step"] for m in recs], [m["loss"] for m in recs], label=label)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("training loss")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(run.plots / "fwl.png", dpi=110)
    plt.close(fig)
    return ["plots/fwl.png"]
