"""Reproduction: base LM vs +FWL vs its control vs dynamic evaluation, with compute per token.

The paper (arXiv 2212.02475, section 4) trains Transformer LMs with and without FWLs on
WikiText-103 and compares with dynamic evaluation (Krause et al. 2019).  Here, at laptop compute:

1. the text (``data.py``): WikiText-2 cut by article into train / dev / test, and Moby Dick as a
   second test corpus from another domain;
2. three models get the same fine-tuning (``train.py``: same windows in the same order, steps,
   schedule, optimiser and seed): the base LM, the base LM with an FWL block (trained end to end,
   second order), and the **control**: the same block with its fast-weight step sizes fixed at 0
   and not trained, so it adds the same trained parameters but no fast-weight update;
3. every method is scored on the same non-overlapping segments of ``seq_len`` tokens, and dynamic
   evaluation (SGD on each segment after scoring it) is run on the base model; compute per token
   as counted FLOPs (``torch.utils.flop_counter``) and as measured seconds.

Claims and their tests (statistics from ``discern.metrics.stats``; the unit of resampling is the
scored segment, the statistic the mean over segments of the per-token loss difference, in nats):

- "FWL lowers perplexity beyond the added block": paired bootstrap of control - FWL on WikiText-2
  and on Moby Dick; held only if both 95% intervals are above 0 (an intersection-union test: its
  p-value is the larger of the two one-sided p-values), not held if either is below 0;
- "FWL lowers perplexity over the base model": paired bootstrap of base - FWL on WikiText-2, the
  paper's in-domain setting (Moby Dick reported beside it);
- "at far less extra compute than dynamic evaluation": rule on counted FLOPs, FWL's extra FLOPs per
  token under a third of dynamic evaluation's (deterministic: the ratio is given as a [x, x] interval);
- "FWL gets most of dynamic evaluation's gain": paired bootstrap of (base - FWL) - 0.5 (base -
  dynamic) on WikiText-2, i.e. FWL's gain above half of dynamic evaluation's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from discern.core import Run, config_to_dict, derive_seed
from discern.core.results import Claim, Result
from discern.metrics.stats import paired_bootstrap, verdict_from_interval

from .config import PRESETS, Config, ScratchModel, paper, quick, scratch, tiny  # noqa: F401  (the presets, by name)
from .data import CORPORA, corpora, head, wikitext_articles  # noqa: F401
from .dynamic import evaluate, flops_per_token
from .train import VARIANTS, build, finetune, load_model

PAPER = {
    "dynamic_eval_compute": "dynamic evaluation needs over 3x the compute of standard inference (abstract)",
    "fwl_compute": "FWLs require relatively little extra compute or memory (abstract)",
    "fwl_gain": "FWLs significantly improve language modeling perplexity (abstract; WikiText-103, section 4)",
    "dynamic_eval_gain": "Transformer-XL on WikiText-103: 18.3 -> 16.4 test perplexity with dynamic evaluation "
                         "(Krause et al. 2019)",
}
METHODS = ("base", "fwl", "control", "dynamic")
LABELS = {"base": "base", "fwl": "+FWL", "control": "control (block, steps 0)", "dynamic": "dynamic eval"}
CORPUS_NAMES = {"wikitext": "WikiText-2 test", "moby_dick": "Moby Dick"}


def segment_losses(res: dict) -> np.ndarray:
    """Mean next-token loss (nats per token) of each scored segment of one :func:`evaluate` result."""
    return np.asarray(res["segment_nll"], dtype=np.float64) / np.asarray(res["segment_tokens"], dtype=np.float64)


def beyond_block_verdict(intervals: dict[str, list[float]]) -> str:
    """The two-corpus rule for control - FWL: ``held`` only if every interval lies above 0, ``not
    held`` if any lies below 0, else ``inconclusive``."""
    if any(hi < 0 for _, hi in intervals.values()):
        return "not held"
    if all(lo > 0 for lo, _ in intervals.values()):
        return "held"
    return "inconclusive"


def compute_rule(flops: dict) -> dict:
    """FWL's extra FLOPs per token as a share of dynamic evaluation's; the claim holds below 1/3."""
    extra_fwl = flops["fwl"] / flops["base"] - 1
    extra_dyn = flops["dynamic"] / flops["base"] - 1
    ratio = extra_fwl / extra_dyn
    return {"extra_fwl": extra_fwl, "extra_dynamic": extra_dyn, "ratio": ratio,
            "verdict": "held" if ratio < 1 / 3 else "not held"}


def run(cfg: Config, run: Run) -> Result:
    import torch

    torch.manual_seed(cfg.seed)
    base0, tok = load_model(cfg)
    data = corpora(cfg, tok)
    if len(data["train"]) <= cfg.seq_len:
        raise ValueError(f"the training text ({len(data['train'])} tokens) is shorter than seq_len={cfg.seq_len}")

    models, train = {}, {}
    desc = {"base": "fine-tune base", "fwl": "fine-tune +FWL", "control": "fine-tune control"}
    for variant in VARIANTS:
        models[variant], train[variant] = finetune(build(base0, cfg, variant), cfg, data["train"],
                                                   Run(run.path / variant), tok, desc=desc[variant])
    base, fwl, control = models["base"], models["fwl"], models["control"]
    seg = cfg.seq_len
    dev = head(data["dev"], cfg.dev_tokens)

    def choose_lr():
        scores = {str(lr): evaluate(base, dev, seg, dynamic=True, lr=lr, steps=cfg.dynamic_steps)["ppl"]
                  for lr in cfg.dynamic_lrs}
        static = evaluate(base, dev, seg)["ppl"]
        return {"dev_ppl": scores, "dev_static_ppl": static, "lr": float(min(scores, key=scores.get))}

    dyn = run.stage("dynamic_lr", choose_lr)
    results = {}
    for corpus in CORPORA:
        ids = head(data[corpus], cfg.eval_tokens)

        def score(ids=ids):
            out = {"base": evaluate(base, ids, seg), "fwl": evaluate(fwl, ids, seg),
                   "control": evaluate(control, ids, seg),
                   "dynamic": evaluate(base, ids, seg, dynamic=True, lr=dyn["lr"], steps=cfg.dynamic_steps)}
            for v in out.values():
                v["seconds_per_token"] = v["seconds"] / v["tokens"]
            return out

        results[corpus] = run.stage(f"eval_{corpus}", score)

    one = head(data["wikitext"], seg)
    flops = run.stage("flops", lambda: {"base": flops_per_token(base, one, "static"),
                                        "fwl": flops_per_token(fwl, one, "static"),
                                        "control": flops_per_token(control, one, "static"),
                                        "dynamic": flops_per_token(base, one, "dynamic")})
    steps = {name: {k: float(v.detach()) for k, v in m.block.steps.items()} for name, m in
             (("fwl", fwl), ("control", control))}
    return _report(cfg, run, data, train, dyn, results, flops, steps)


def _stats(cfg: Config, results: dict) -> dict:
    """Every paired bootstrap of the claims, keyed by corpus and comparison (one seed per test,
    derived from ``cfg.seed``)."""
    out: dict = {}
    for corpus in CORPORA:
        loss = {m: segment_losses(results[corpus][m]) for m in METHODS}

        def boot(a, b, what):
            return paired_bootstrap(a, b, n_resamples=cfg.bootstrap,
                                    seed=derive_seed(cfg.seed, "fwl-bootstrap", corpus, what))

        out[corpus] = {"control_minus_fwl": boot(loss["control"], loss["fwl"], "control-fwl"),
                       "base_minus_fwl": boot(loss["base"], loss["fwl"], "base-fwl"),
                       "base_minus_control": boot(loss["base"], loss["control"], "base-control"),
                       "base_minus_dynamic": boot(loss["base"], loss["dynamic"], "base-dynamic"),
                       "fwl_gain_over_half_dynamic_gain": boot(loss["base"] - loss["fwl"],
                                                               0.5 * (loss["base"] - loss["dynamic"]), "share")}
    return out


def _fmt_ci(b: dict) -> str:
    return f"{b['mean']:+.4f} [{b['ci'][0]:+.4f}, {b['ci'][1]:+.4f}]"


def _claims(cfg: Config, results: dict, flops: dict, st: dict) -> list[Claim]:
    wt, mb = results["wikitext"], results["moby_dick"]
    n_seg = {c: len(results[c]["fwl"]["segment_nll"]) for c in CORPORA}
    unit = "mean over segments of the per-token loss difference (nats)"

    # 1. beyond the added block: control - FWL on both corpora
    beyond = {c: st[c]["control_minus_fwl"] for c in CORPORA}
    verdict = beyond_block_verdict({c: b["ci"] for c, b in beyond.items()})
    below = [c for c in CORPORA if beyond[c]["ci"][1] < 0]
    decisive = min(below, key=lambda c: beyond[c]["ci"][1]) if below else min(CORPORA, key=lambda c: beyond[c]["ci"][0])
    c1 = Claim(
        statement="FWL lowers perplexity beyond the added block (the fast-weight update, not the extra trained "
                  "block, gives the gain)",
        paper=PAPER["fwl_gain"] + "; the gain is attributed to gradient updates expressed as linear attention",
        ours="; ".join(f"{CORPUS_NAMES[c]}: control {results[c]['control']['ppl']:.2f} -> FWL "
                       f"{results[c]['fwl']['ppl']:.2f}, control - FWL {_fmt_ci(beyond[c])} nats/token"
                       for c in CORPORA) + f" (interval shown: {CORPUS_NAMES[decisive]})",
        test=f"paired bootstrap over scored segments ({n_seg['wikitext']} WikiText-2, {n_seg['moby_dick']} Moby Dick; "
             f"BCa 95%, {cfg.bootstrap} resamples) of control - FWL, {unit}; held only if both intervals are above 0, "
             "not held if either is below 0; p = the larger one-sided p (intersection-union)",
        p_value=max(b["p_value"] for b in beyond.values()), ci=tuple(beyond[decisive]["ci"]), verdict=verdict)

    # 2. FWL vs the base model, in domain
    vb = st["wikitext"]["base_minus_fwl"]
    vb_mb = st["moby_dick"]["base_minus_fwl"]
    c2 = Claim(
        statement="FWL lowers perplexity over the base model",
        paper=PAPER["fwl_gain"],
        ours=f"WikiText-2 test {wt['base']['ppl']:.2f} -> {wt['fwl']['ppl']:.2f}, base - FWL {_fmt_ci(vb)} nats/token; "
             f"Moby Dick (not tested) {mb['base']['ppl']:.2f} -> {mb['fwl']['ppl']:.2f}, {_fmt_ci(vb_mb)} "
             f"(both fine-tuned alike, {cfg.steps} steps)",
        test=f"paired bootstrap over {n_seg['wikitext']} WikiText-2 test segments (BCa 95%, {cfg.bootstrap} resamples) "
             f"of base - FWL, {unit}; held if the interval is above 0",
        p_value=vb["p_value"], ci=tuple(vb["ci"]), verdict=verdict_from_interval(*vb["ci"]))

    # 3. compute: a deterministic FLOP count
    rule = compute_rule(flops)
    c3 = Claim(
        statement="at far less extra compute than dynamic evaluation",
        paper=PAPER["dynamic_eval_compute"] + "; " + PAPER["fwl_compute"],
        ours=f"extra FLOPs per token: FWL +{100 * rule['extra_fwl']:.0f}%, dynamic evaluation "
             f"+{100 * rule['extra_dynamic']:.0f}%, ratio {rule['ratio']:.3f} (measured time: "
             f"x{wt['fwl']['seconds_per_token'] / wt['base']['seconds_per_token']:.2f} vs "
             f"x{wt['dynamic']['seconds_per_token'] / wt['base']['seconds_per_token']:.2f})",
        test="rule: FWL's extra FLOPs per token < 1/3 of dynamic evaluation's (counted by torch.utils.flop_counter "
             "on one segment; deterministic, the interval is the ratio itself)",
        ci=(rule["ratio"], rule["ratio"]), verdict=rule["verdict"])

    # 4. share of dynamic evaluation's gain
    sh = st["wikitext"]["fwl_gain_over_half_dynamic_gain"]
    gain_fwl = math.log(wt["base"]["ppl"]) - math.log(wt["fwl"]["ppl"])
    gain_dyn = math.log(wt["base"]["ppl"]) - math.log(wt["dynamic"]["ppl"])
    if gain_dyn > 0:
        ours = (f"WikiText-2 log-perplexity gain: FWL {gain_fwl:.4f}, dynamic evaluation {gain_dyn:.4f} "
                f"({100 * gain_fwl / gain_dyn:.0f}% of it); FWL gain - half the dynamic gain {_fmt_ci(sh)} nats/token")
        v4 = verdict_from_interval(*sh["ci"])
    else:
        ours = (f"dynamic evaluation did not lower perplexity ({wt['base']['ppl']:.2f} -> {wt['dynamic']['ppl']:.2f}), "
                "so there is no gain to share")
        v4 = "inconclusive"
    c4 = Claim(
        statement="FWL gets most of dynamic evaluation's gain",
        paper="FWLs provide the benefits of dynamic evaluation much more efficiently (abstract); "
              + PAPER["dynamic_eval_gain"],
        ours=ours,
        test=f"paired bootstrap over {n_seg['wikitext']} WikiText-2 test segments (BCa 95%, {cfg.bootstrap} resamples) "
             "of (base - FWL) - 0.5 (base - dynamic), per-token losses; held if the interval is above 0 (FWL's gain "
             "over half of dynamic evaluation's); inconclusive if dynamic evaluation gains nothing",
        p_value=sh["p_value"], ci=tuple(sh["ci"]), verdict=v4)
    return [c1, c2, c3, c4]


def _report(cfg, run, data, train, dyn, results, flops, steps) -> Result:
    table = []
    for corpus, res in results.items():
        for method in METHODS:
            table.append({"corpus": corpus, "method": LABELS[method],
                          "perplexity": res[method]["ppl"], "tokens": res[method]["tokens"],
                          "GFLOPs_per_token": flops[method] / 1e9,
                          "compute_vs_base": flops[method] / flops["base"],
                          "ms_per_token": 1e3 * res[method]["seconds_per_token"],
                          "time_vs_base": res[method]["seconds_per_token"] / res["base"]["seconds_per_token"]})
    st = _stats(cfg, results)
    claims = _claims(cfg, results, flops, st)
    details = {"preset_config": config_to_dict(cfg), "articles_train_dev_test": data["articles"],
               "tokens": {k: int(len(v)) for k, v in data.items() if k != "articles"},
               "train": train, "dynamic_lr": dyn, "results": results, "flops_per_token": flops,
               "learned_step_sizes": steps["fwl"], "control_step_sizes": steps["control"],
               "statistics": st, "compute_rule": compute_rule(flops), "paper_numbers": PAPER}
    result = Result(paper="fwl", title=f"Fast Weight Layers (on {Path(cfg.model).name})", claims=claims,
                    plots=_plots(run, table, st), table=table, details=details)
    run.save_results(result.to_dict())
    return result


def _plots(run: Run, table: list[dict], st: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run.plots.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for ax, corpus in zip(axes[:2], CORPORA):
        for r in (r for r in table if r["corpus"] == corpus):
            ax.scatter(r["compute_vs_base"], r["perplexity"], s=60)
            ax.annotate(r["method"], (r["compute_vs_base"], r["perplexity"]), textcoords="offset points",
                        xytext=(6, 4), fontsize=8)
        ax.set_xlabel("FLOPs per token / base")
        ax.set_ylabel("perplexity")
        ax.set_title(CORPUS_NAMES[corpus])
    ax = axes[2]
    comps = (("control_minus_fwl", "control - FWL"), ("base_minus_fwl", "base - FWL"))
    for i, corpus in enumerate(CORPORA):
        for j, (key, label) in enumerate(comps):
            b = st[corpus][key]
            x = i + (j - 0.5) * 0.3
            ax.errorbar([x], [b["mean"]], yerr=[[b["mean"] - b["ci"][0]], [b["ci"][1] - b["mean"]]], fmt="o",
                        color=f"C{j}", capsize=4, label=label if i == 0 else None)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(CORPORA)), [CORPUS_NAMES[c] for c in CORPORA])
    ax.set_ylabel("loss difference (nats/token), 95% CI")
    ax.set_title("per-segment paired bootstrap")
    ax.legend(fontsize=8)
    for name in VARIANTS:
        recs = [m for m in Run(run.path / name).metrics() if "loss" in m]
        axes[3].plot([m["step"] for m in recs], [m["loss"] for m in recs], marker="o", ms=3, label=LABELS[name])
    axes[3].set_xlabel("step")
    axes[3].set_ylabel("training loss")
    axes[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run.plots / "fwl.png", dpi=110)
    plt.close(fig)
    return ["plots/fwl.png"]
