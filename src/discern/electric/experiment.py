"""Reproduction: Electric re-ranks speech-recognition n-best lists like a masked LM, in one pass.

Paper claim (Table 3, section 5.2): re-ranking LibriSpeech 100-best lists with Electric's PLL
lowers WER about as much as BERT's masked-LM PLL (test-clean 5.65 vs 5.41 from 7.26), with one
transformer pass per hypothesis instead of one per token.  Here: real pocketsphinx n-best lists
of espeak-ng speech of sentences from a novel held out of all training text (plus the 5 real
LibriVox utterances of pocketsphinx-testdata), Electric and an equal-size masked LM pre-trained
on the same text, and SmolLM2-135M as the causal-LM re-ranker.  lambda is tuned on a dev split
from the paper's grid; WER on the test split with bootstrap 95% intervals.  Claim 1 (NCE loss
below the noise-rate prior) is decided over ``pretrain_seeds`` pre-training seeds.  Each stage
keeps its result, so ``--resume`` skips what is done.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Callable

from discern.core import Claim, ConfigError, DiscernError, Result, Run, config_to_dict
from discern.core.files import first_line
from discern.metrics.stats import mean_interval, verdict_from_interval

from .config import Config
from .evaluate import build_nbest, held_out_sentences, score_all
from .nbest import read_nbest
from .pretrain import drop_sentences, model_dir, pretrain, training_documents
from .rerank import rerank_report

PAPER = {  # LibriSpeech test WER (clean / other), Table 3
    "none": (7.26, 20.37), "bert_base_pll": (5.41, 17.41), "electric_wikibooks": (5.65, 17.42),
    "gpt2_117m": (5.64, 17.60), "two_tower_owt": (5.32, 17.25), "electric_owt": (5.18, 16.93),
}

# (cfg, documents, tokenizer folder, output folder) -> folder of a Hugging Face masked LM
MLMTrainer = Callable[[Config, list, Path, Path], Path]


def _pretrain_stage(run: Run, cfg: Config, documents, name: str = "pretrain-electric") -> dict:
    sub = Run(run.path / name)
    sub.checkpoints.mkdir(parents=True, exist_ok=True)
    sub.plots.mkdir(exist_ok=True)
    resume = (sub.path / "config.json").is_file()
    sub.save_config(cfg)
    res = pretrain(cfg, sub, resume=resume, documents=documents)
    res["metrics"] = [r for r in sub.metrics() if "loss" in r]
    return res


def check_scorer_models(cfg: Config) -> None:
    """The re-rankers' models of ``rerank.mlm`` and ``rerank.causal_lm`` are found (their configs read),
    before the n-best lists and the pre-trainings, so a misspelt path is an error in seconds."""
    from transformers import AutoConfig

    from discern.llm import check_causal_lm

    if cfg.rerank.causal_lm:
        check_causal_lm(cfg.rerank.causal_lm)
    if cfg.rerank.mlm:
        try:
            AutoConfig.from_pretrained(cfg.rerank.mlm)
        except (OSError, ValueError) as e:
            raise DiscernError(f"rerank.mlm={cfg.rerank.mlm}: no masked LM there: {first_line(e)}") from None


def run(cfg: Config, run: Run, mlm_trainer: MLMTrainer | None = None) -> Result:
    """Build n-best lists, pre-train Electric (and the masked LM), score, re-rank, test the claim."""
    if cfg.pretrain_seeds < 1:
        raise ConfigError(f"pretrain_seeds={cfg.pretrain_seeds}: claim 1 needs at least one pre-training seed")
    from .pll import ElectricScorer, TwoTowerScorer
    from .model import load_pretrainer
    from .scoring import CausalLMScorer, MaskedLMScorer, sentence_case

    check_scorer_models(cfg)
    items = held_out_sentences(cfg)
    nbest_path = run.path / "nbest.jsonl"
    if nbest_path.is_file():
        utts = read_nbest(nbest_path)
    else:
        utts = build_nbest(cfg, items, nbest_path)
    exclude = {t for _, t in items} | {u.reference for u in utts}

    documents = drop_sentences(training_documents(cfg), exclude)  # also what the masked LM trains on
    electric = run.stage("pretrain-electric", lambda: _pretrain_stage(run, cfg, documents))
    mdir = model_dir(run.path / "pretrain-electric")
    tok_dir = run.path / "pretrain-electric" / "tokenizer"
    # claim 1 over pre-training seeds: the same documents and tokenizer, every random draw of the
    # run (initialisation, held-out split, example order, noise positions and samples) from its seed
    by_seed = {cfg.seed: electric}
    for seed in range(cfg.seed + 1, cfg.seed + cfg.pretrain_seeds):
        name = f"pretrain-electric-seed{seed}"
        seed_cfg = copy.deepcopy(cfg)
        seed_cfg.seed, seed_cfg.data.tokenizer = seed, str(tok_dir)
        by_seed[seed] = run.stage(name, lambda c=seed_cfg, n=name: _pretrain_stage(run, c, documents, n))
    nce = nce_over_seeds(by_seed)

    mlm_dir = None
    if cfg.rerank.mlm:
        mlm_dir = Path(cfg.rerank.mlm)
    elif mlm_trainer is not None:
        mlm_dir = Path(run.stage("pretrain-mlm", lambda: {
            "dir": str(mlm_trainer(cfg, documents, tok_dir, run.path / "pretrain-mlm"))})["dir"])

    r = cfg.rerank
    transform = sentence_case if r.sentence_case else None
    from transformers import AutoTokenizer

    import torch

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(str(mdir / "energy"))
    pre = load_pretrainer(mdir, cfg.model, tok.all_special_ids).to(dev)
    scorers = {
        "electric": lambda: ElectricScorer(pre.energy_model, tok, r.batch_size, r.bf16, transform),
        "two-tower": lambda: TwoTowerScorer(pre.noise, tok, r.batch_size, r.bf16, transform),
    }
    if mlm_dir is not None:
        scorers["mlm-pll"] = lambda: MaskedLMScorer.from_pretrained(mlm_dir, batch_size=r.batch_size, bf16=r.bf16,
                                                                    device=dev, text_transform=transform)
    if r.causal_lm:
        scorers["causal-lm"] = lambda: CausalLMScorer.from_pretrained(r.causal_lm, text_transform=transform)
    scored = {}
    for name, make in scorers.items():
        def go(make=make):
            return score_all(make(), utts)
        scored[name] = run.stage(f"score-{name}", go)

    report = rerank_report(utts, {k: v["scores"] for k, v in scored.items()}, r.lambdas, r.dev_fraction,
                           r.bootstrap, cfg.seed)
    rows = report["rows"]
    for name, s in scored.items():
        rows[name].update({"passes": "1" if s["passes"] == s["sentences"] else "n",
                           "sentences_per_second": s["sentences_per_second"],
                           "passes_per_sentence": s["passes"] / max(1, s["sentences"])})
    from discern.metrics import wer as corpus_wer

    lib = [u for u in utts if u.meta.get("source") == "librivox"]
    espeak = [u for u in utts if u.meta.get("source") != "librivox"]
    lists = {
        "utterances": len(utts), "librivox": len(lib), "espeak": len(espeak),
        "mean_hypotheses": sum(len(u.hypotheses) for u in utts) / len(utts),
        "first_pass_wer": corpus_wer([u.reference for u in utts], [u.hypotheses[0].text for u in utts]),
    }
    e, none = rows["electric"], rows["none"]
    lowers = e["wer"] < none["wer"] and e["p_better_than_none"] >= 0.95
    worse = e["p_better_than_none"] <= 0.05
    if "mlm-pll" in rows:
        m = rows["mlm-pll"]
        like_mlm = e["wer"] <= m["ci95"][1]
        worse = worse or e["ci95"][0] > m["ci95"][1]
        speed = scored["mlm-pll"]["seconds"] / max(scored["electric"]["seconds"], 1e-9)
        ours = (f"test WER: none {none['wer']:.2f}, Electric {e['wer']:.2f} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"
                f" (P(better than none) = {e['p_better_than_none']:.2f}), masked-LM PLL {m['wer']:.2f} "
                f"[{m['ci95'][0]:.2f}, {m['ci95'][1]:.2f}]; passes per hypothesis 1 vs "
                f"{rows['mlm-pll']['passes_per_sentence']:.1f}; scoring {speed:.1f}x faster")
    else:
        like_mlm, ours = True, f"test WER: none {none['wer']:.2f}, Electric {e['wer']:.2f} (no masked LM given)"
    plots = _plots(run, report)
    if len(by_seed) > 1:
        plots.append(_seed_plot(run, nce))
    lo, hi = nce["ci"]
    nce_verdict = verdict_from_interval(lo, hi)  # a NaN interval is inconclusive
    rerank_verdict = "held" if lowers and like_mlm else ("not held" if worse else "inconclusive")
    note = ""
    if nce_verdict != "held":
        rerank_verdict, note = "inconclusive", ("; pre-training failed: the energy model is not shown to be below "
                                                f"the noise-rate prior (claim 1 {nce_verdict})")
    claims = [
        Claim(
            statement="Electric's NCE training learns the data beyond its noise: held-out NCE loss below the "
                      "prior entropy of the noise rate",
            paper="an energy model that only matches its noise distribution sits at the noise-rate prior "
                  "(0.42 nats at 15% noise); the paper's Electric-Base re-ranks and fine-tunes well",
            ours=nce["ours"] + _token_only(electric, len(by_seed) > 1),
            test=nce["test"] + ": held if wholly above 0, not held if wholly below, else inconclusive",
            ci=(lo, hi), verdict=nce_verdict),
        Claim(
            statement="Electric re-ranking lowers WER like masked-LM PLL does, with one transformer pass instead "
                      "of n",
            paper=f"LibriSpeech test-clean WER: none {PAPER['none'][0]}, BERT-Base PLL {PAPER['bert_base_pll'][0]} "
                  f"(n passes), Electric {PAPER['electric_wikibooks'][0]} (1 pass)",
            ours=ours + note,
            test=f"paired bootstrap of test WER over utterances ({r.bootstrap} resamples): held if Electric beats "
                 "no re-ranking (one-sided bootstrap p = 1 - P(better) <= 0.05) and its WER lies within the "
                 "masked-LM PLL's 95% interval; not held if P(better) <= 0.05 or Electric's interval lies wholly "
                 "above the masked LM's; ci = Electric's 95% WER interval; inconclusive whenever the energy "
                 "model is not below its noise-rate prior",
            ci=tuple(e["ci95"]), p_value=1.0 - e["p_better_than_none"], verdict=rerank_verdict),
    ]
    result = Result(
        paper="electric", title="Electric: n-best re-ranking with one pass instead of n",
        claims=claims, plots=plots,
        table=[{"re-ranker": name, "test_wer": row["wer"], "ci_low": row["ci95"][0], "ci_high": row["ci95"][1],
                "lambda": row.get("lambda", ""), "passes": row.get("passes", "")} for name, row in rows.items()],
        details={
            "preset_config": config_to_dict(cfg),
            "lists": lists,
            "pretraining": {"electric": {k: electric.get(k) for k in ("steps", "train_seconds", "params_energy",
                                                                       "params_noise_towers", "eval", "plateau")},
                            "nce_over_seeds": {k: v for k, v in nce.items() if k != "ours"}},
            "rerank": report,
            "paper_table": PAPER,
        })
    run.save_results(result.to_dict())
    return result


def _plots(run: Run, report: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run.plots.mkdir(parents=True, exist_ok=True)
    rows = report["rows"]
    names = list(rows)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    w = [rows[n]["wer"] for n in names]
    err = [[rows[n]["wer"] - rows[n]["ci95"][0] for n in names], [rows[n]["ci95"][1] - rows[n]["wer"] for n in names]]
    colors = ["grey", "lightgrey"] + [f"C{i}" for i in range(len(names) - 2)]
    ax[0].bar(range(len(names)), w, yerr=err, color=colors, capsize=3)
    ax[0].set_xticks(range(len(names)), names, fontsize=8)
    ax[0].set_ylabel("test WER % (95% bootstrap CI)")
    ax[0].set_title(f"Re-ranking {report['test_utterances']} test n-best lists")
    for name, curve in report["lambda_curves"].items():
        lams = [float(k) for k in curve]
        ax[1].plot(lams, list(curve.values()), marker=".", label=name)
    ax[1].axhline(report["dev_wer_none"], color="grey", ls="--", label="no re-ranking")
    ax[1].set_xlabel("lambda")
    ax[1].set_ylabel("dev WER %")
    ax[1].legend(fontsize=8)
    ax[1].set_title("Choosing lambda on dev")
    fig.tight_layout()
    p = run.plots / "rerank_wer.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [str(Path(p).relative_to(run.path))]


def _gap(stage: dict) -> tuple[float, list[float], float, float]:
    """(prior - NCE loss, its interval over held-out batches, NCE loss, prior) of one pre-training."""
    p = stage.get("plateau", {}).get("nce", {})

    def num(x):
        return float("nan") if x is None else float(x)
    ci = p.get("nats_below_ci") or [None, None]
    return num(p.get("nats_below")), [num(ci[0]), num(ci[1])], num(p.get("loss")), num(p.get("reference"))


def nce_over_seeds(by_seed: dict[int, dict]) -> dict:
    """Claim 1's test: is the held-out NCE loss below the noise-rate prior?

    One seed: the Student-t 95% interval of (prior - NCE loss) over the run's held-out batches.
    Several: each seed's gap (its mean over its own held-out batches) is one observation, and the
    interval is Student-t over seeds (:func:`discern.metrics.stats.mean_interval`), so it includes
    the spread between training runs, which one run's interval over batches leaves out.  A seed
    whose gap is missing (an unfinished or failed evaluation) makes the interval NaN (inconclusive)."""
    seeds = sorted(by_seed)
    per_seed = []
    for s in seeds:
        g, ci, loss, ref = _gap(by_seed[s])
        per_seed.append({"seed": s, "nats_below": g, "ci": ci, "loss": loss, "reference": ref})
    if len(seeds) == 1:
        r = per_seed[0]
        g, ci = r["nats_below"], r["ci"]
        return {"seeds": seeds, "per_seed": per_seed, "mean": g, "ci": ci,
                "test": "Student-t 95% interval of (prior - NCE loss) over held-out batches",
                "ours": f"NCE {r['loss']:.4f} vs prior {r['reference']:.4f}: {g:+.4f} nats below "
                        f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"}
    m = mean_interval([r["nats_below"] for r in per_seed])  # a missing gap (NaN) gives a NaN interval
    mean, ci = m["mean"], m["ci"]
    loss = sum(r["loss"] for r in per_seed) / len(seeds)
    ref = sum(r["reference"] for r in per_seed) / len(seeds)
    each = ", ".join(f"{r['nats_below']:+.4f} [{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}]" for r in per_seed)
    return {"seeds": seeds, "per_seed": per_seed, "mean": mean, "ci": ci,
            "test": f"Student-t 95% interval of the mean of (prior - NCE loss) over {len(seeds)} pre-training "
                    f"seeds (each seed's gap averaged over its held-out batches)",
            "ours": f"mean over {len(seeds)} seeds: NCE {loss:.4f} vs prior {ref:.4f}, {mean:+.4f} nats below "
                    f"[{ci[0]:+.4f}, {ci[1]:+.4f}]; per seed (interval over its held-out batches): {each}"}


def _seed_plot(run: Run, nce: dict) -> str:
    """Each seed's gap below the prior with its interval over held-out batches, and their mean
    with the Student-t interval over seeds that decides claim 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = nce["per_seed"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for i, r in enumerate(rows):
        lo, hi = r["ci"]
        ax.errorbar([i], [r["nats_below"]], yerr=[[r["nats_below"] - lo], [hi - r["nats_below"]]],
                    fmt="o", color="C0", capsize=3)
    lo, hi = nce["ci"]
    k = len(rows)
    if math.isfinite(nce["mean"]) and math.isfinite(lo):
        ax.errorbar([k + 0.5], [nce["mean"]], yerr=[[nce["mean"] - lo], [hi - nce["mean"]]], fmt="s",
                    color="C3", capsize=4)
    ax.axhline(0.0, color="grey", ls="--", label="noise-rate prior (E = -log q + c)")
    ax.set_xticks(list(range(k)) + [k + 0.5], [f"seed {r['seed']}" for r in rows] + ["mean (t over seeds)"],
                  fontsize=8)
    ax.set_ylabel("nats below the prior (held-out NCE)")
    ax.set_title("Claim 1 over pre-training seeds (95% intervals)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = run.plots / "nce_seeds.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return str(p.relative_to(run.path))


def _token_only(electric: dict, label: bool = False) -> str:
    """The no-context plateau's line for claim 1: does the energy model use context at all?"""
    t = electric.get("plateau", {}).get("token_only_energy") or {}
    if t.get("reference") is None:
        return ""
    lo, hi = t.get("nats_below_ci") or [float("nan"), float("nan")]
    who = " (the first seed, which re-ranks)" if label else ""
    return (f"; against the token-only energy {t['reference']:.4f} (same positions){who}: {t['nats_below']:+.4f} "
            f"nats below [{lo:+.4f}, {hi:+.4f}]")

