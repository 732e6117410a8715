"""Reproduction: ELECTRA beats a masked LM trained with the same pre-training compute.

Paper claim (Table 1, section 3.3): at equal model size, data and compute, ELECTRA-Small's
GLUE dev score (79.9) is well above BERT-Small's (75.1).  Here both encoders are pre-trained
on the registry corpora with equal analytic FLOPs (the MLM baseline gets as many steps as
ELECTRA's generator + discriminator FLOPs buy), from ``pretrain_seeds`` pre-training seeds each,
then fine-tuned on the task suite; per task the median over fine-tuning seeds is kept.  The
verdict comes from a two-way paired bootstrap of ELECTRA - MLM over tasks x pre-training
seeds.  A random-initialisation control (the same encoder shape fine-tuned from random
weights) tells a failed pre-training from a result about the method.  Each stage writes its
results, so ``--resume`` skips finished stages.
"""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

from discern.core import Claim, ConfigError, Result, Run, config_to_dict, derive_seed
from discern.metrics.stats import paired_bootstrap_grid, verdict_from_interval

from .config import Config
from .pretrain import encoder_dir, flops_per_step, pretrain, with_objective

PAPER = {"electra_small_glue": 79.9, "bert_small_glue": 75.1, "train_flops": 1.4e18}
MODELS = ("electra", "mlm", "random-init")


def _shared_tokenizer(run: Run, cfg: Config) -> str:
    """One tokenizer for every encoder of the experiment (trained once, in ``<run>/tokenizer``)."""
    if cfg.data.tokenizer != "train":
        return cfg.data.tokenizer
    from discern.data.pretraining import corpus_documents
    from discern.data.tokenizer import run_tokenizer

    folder = run.path / "tokenizer"
    if not folder.is_dir():
        run_tokenizer("train", cfg.data.vocab_size,
                      lambda: corpus_documents(cfg.data.corpora, cfg.data.max_documents), folder)
    return str(folder)


def _pretrain_stage(run: Run, cfg: Config, objective: str, seed: int, steps: int | None = None) -> dict:
    sub_cfg = with_objective(cfg, objective, steps)
    sub_cfg.seed = seed
    sub = Run(run.path / f"pretrain-{objective}-seed{seed}")
    (sub.checkpoints).mkdir(parents=True, exist_ok=True)
    sub.plots.mkdir(exist_ok=True)
    resume = (sub.path / "config.json").is_file()
    sub.save_config(sub_cfg)
    res = pretrain(sub_cfg, sub, resume=resume)
    res["run_dir"] = str(sub.path)
    res["metrics"] = [r for r in sub.metrics() if "loss" in r or "eval/disc_loss" in r or "eval/mlm_loss" in r]
    return res


def _random_init_encoder(run: Run, cfg: Config, seed: int, tokenizer_dir: str) -> str:
    """The control: ELECTRA's discriminator shape with random weights, saved like a pre-trained one."""
    import torch
    from transformers import AutoTokenizer, ElectraForPreTraining

    from .model import hf_config

    out = run.path / f"random-init-seed{seed}"
    if not (out / "config.json").is_file():
        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        torch.manual_seed(derive_seed(seed, "init", "random-init"))
        ElectraForPreTraining(hf_config(cfg.model, len(tok), tok.pad_token_id)).save_pretrained(out)
        tok.save_pretrained(out)
    return str(out)


def _grid(scores: dict, a: str, b: str, tasks: list[str], seeds: list[int]) -> list[list[float]]:
    return [[scores[a][t][s] - scores[b][t][s] for s in seeds] for t in tasks]


def run(cfg: Config, run: Run) -> Result:
    """Pre-train both encoders at equal FLOPs over seeds, fine-tune them and the random-init
    control on the task suite, and decide the claim by a paired bootstrap."""
    from discern.tasks import FinetuneConfig, finetune_from_pretrained, get_task

    if cfg.pretrain_seeds < 1:
        raise ConfigError(f"pretrain_seeds={cfg.pretrain_seeds}: the claim needs at least one pre-training "
                          "seed per objective")
    f = cfg.finetune
    if not f.tasks:
        raise ConfigError("finetune.tasks is empty: the claim needs at least one fine-tuning task")
    # every task loads before any pre-training: a misspelt name costs seconds, not the pre-trainings
    loaded = {name: get_task(name, max_dev=f.max_eval, max_test=f.max_eval) for name in f.tasks}
    cfg = copy.deepcopy(cfg)
    cfg.data.tokenizer = _shared_tokenizer(run, cfg)
    vocab = cfg.data.vocab_size
    seeds = [cfg.seed + i for i in range(cfg.pretrain_seeds)]
    electra, mlm, random_dirs = {}, {}, {}
    for seed in seeds:
        electra[seed] = run.stage(f"pretrain-electra-seed{seed}", lambda s=seed: _pretrain_stage(run, cfg, "electra", s))
        mlm_steps = cfg.train.steps
        if cfg.match_flops:
            mlm_steps = max(1, round(electra[seed]["train_flops"] / flops_per_step(with_objective(cfg, "mlm"), vocab)))
        mlm[seed] = run.stage(f"pretrain-mlm-seed{seed}", lambda s=seed, n=mlm_steps: _pretrain_stage(run, cfg, "mlm", s, n))
        random_dirs[seed] = _random_init_encoder(run, cfg, seed, cfg.data.tokenizer)

    scores: dict[str, dict[str, dict[int, float]]] = {m: {} for m in MODELS}
    all_ft: dict[str, dict[str, dict[int, list[float]]]] = {m: {} for m in MODELS}
    primary: dict[str, str] = {}
    for task_name, task in loaded.items():
        primary[task_name] = task.primary_metric
        for model_name in MODELS:
            for seed in seeds:
                enc = (random_dirs[seed] if model_name == "random-init"
                       else encoder_dir(run.path / f"pretrain-{model_name}-seed{seed}", model_name))
                vals = []
                for ft_seed in range(f.seeds):
                    ft = FinetuneConfig(lr=f.lr, layerwise_lr_decay=f.layerwise_lr_decay, epochs=f.epochs,
                                        regression_epochs=f.regression_epochs, bias_correction=f.bias_correction,
                                        batch_size=f.batch_size, max_length=f.max_length, bf16=f.bf16,
                                        max_train=f.max_train, seed=ft_seed)

                    def go(enc=enc, task=task, ft=ft):
                        out = finetune_from_pretrained(enc, task, ft)
                        return {"dev": out["dev"], "test": out["test"]}

                    r = run.stage(f"finetune-{model_name}-{task_name}-pt{seed}-ft{ft_seed}", go)
                    vals.append(100.0 * r["dev"][task.primary_metric])
                all_ft[model_name].setdefault(task_name, {})[seed] = vals
                scores[model_name].setdefault(task_name, {})[seed] = statistics.median(vals)

    tasks = list(f.tasks)
    avg = {m: statistics.mean(scores[m][t][s] for t in tasks for s in seeds) for m in MODELS}
    boot = dict(n_boot=cfg.bootstrap, seed=derive_seed(cfg.seed, "bootstrap"))
    vs_mlm = paired_bootstrap_grid(_grid(scores, "electra", "mlm", tasks, seeds), **boot)
    control = {m: paired_bootstrap_grid(_grid(scores, m, "random-init", tasks, seeds), **boot)
               for m in ("electra", "mlm")}
    pretraining_ok = {m: verdict_from_interval(*control[m]["ci"]) == "held" for m in control}
    verdict = verdict_from_interval(*vs_mlm["ci"])
    note = ""
    if not pretraining_ok["electra"]:
        verdict, note = "inconclusive", "pre-training failed: ELECTRA's encoder does not beat the random-init control"
    elif verdict == "held" and not pretraining_ok["mlm"]:
        note = "the MLM's pre-training failed (it does not beat the random-init control)"
    table = [{"task": t, "metric": primary[t],
              **{m: statistics.mean(scores[m][t][s] for s in seeds) for m in MODELS},
              **{f"{m}_seeds": [scores[m][t][s] for s in seeds] for m in MODELS}} for t in tasks]
    plateau = {f"{m}-seed{s}": r["plateau"] for m, runs in (("electra", electra), ("mlm", mlm))
               for s, r in runs.items()}
    plots = _plots(run, electra[seeds[0]], table, avg, vs_mlm)
    plots += [str(Path(electra[seeds[0]]["run_dir"], p).relative_to(run.path))
              for p in electra[seeds[0]].get("plots", [])]
    plots += [str(Path(mlm[seeds[0]]["run_dir"], p).relative_to(run.path)) for p in mlm[seeds[0]].get("plots", [])]
    keys = ("steps", "train_flops", "train_seconds", "params_discriminator")
    ci = vs_mlm["ci"]
    claim = Claim(
        statement="ELECTRA beats MLM at equal pre-training compute (mean dev score over tasks and seeds)",
        paper=f"ELECTRA-Small {PAPER['electra_small_glue']} vs BERT-Small {PAPER['bert_small_glue']} "
              f"GLUE dev at {PAPER['train_flops']:.1e} FLOPs",
        ours=f"ELECTRA {avg['electra']:.2f} vs MLM {avg['mlm']:.2f} (random init {avg['random-init']:.2f}); "
             f"difference {vs_mlm['mean']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}] over {len(tasks)} tasks x "
             f"{len(seeds)} pre-training seeds at {electra[seeds[0]]['train_flops']:.2e} FLOPs each"
             + (f"; {note}" if note else ""),
        test=vs_mlm["test"] + "; held only if the 95% interval of ELECTRA - MLM lies above 0 and ELECTRA's "
                              "encoder beats the random-init control",
        ci=tuple(ci), p_value=vs_mlm["p_value"], verdict=verdict)
    result = Result(
        paper="electra", title="ELECTRA: replaced token detection vs masked LM at equal compute",
        claims=[claim], plots=plots, table=table,
        details={
            "preset_config": config_to_dict(cfg),
            "pretraining": {
                "seeds": seeds,
                "electra": {s: {k: r[k] for k in keys} for s, r in electra.items()},
                "mlm": {s: {k: r[k] for k in keys} for s, r in mlm.items()},
                "plateau": plateau,
            },
            "average": avg,
            "finetune_scores": all_ft,
            "electra_minus_mlm": vs_mlm,
            "vs_random_init": control,
            "pretraining_beats_random_init": pretraining_ok,
        })
    run.save_results(result.to_dict())
    return result


def _plots(run: Run, electra: dict, table: list[dict], avg: dict, diff: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run.plots.mkdir(parents=True, exist_ok=True)
    out = []
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    fps = electra["train_flops"] / max(1, electra["steps"])
    rows = [r for r in electra.get("metrics", []) if "disc_loss" in r]
    ax[0].plot([r["step"] * fps for r in rows], [r["disc_loss"] for r in rows], label="ELECTRA discriminator (train)")
    ref = (electra.get("plateau", {}).get("discriminator") or {}).get("reference")
    if ref is not None:
        ax[0].axhline(ref, color="grey", ls="--", label=f"unigram-frequency detector ({ref:.3f})")
    ax[0].set_xlabel("pre-training FLOPs")
    ax[0].set_ylabel("replaced-token BCE")
    ax[0].legend(fontsize=8)
    ax[0].set_title("Has the discriminator left the plateau? (first seed)")
    x = range(len(table))
    w = 0.27
    for j, (m, label) in enumerate((("electra", "ELECTRA"), ("mlm", "MLM"), ("random-init", "random init"))):
        xs = [i + (j - 1) * w for i in x]
        ax[1].bar(xs, [r[m] for r in table], w, label=f"{label} (avg {avg[m]:.1f})")
        for xi, r in zip(xs, table):
            ax[1].scatter([xi] * len(r[f"{m}_seeds"]), r[f"{m}_seeds"], s=8, c="k", zorder=3)
    ax[1].set_xticks(list(x), [f"{r['task']}\n({r['metric']})" for r in table], fontsize=7)
    ax[1].set_ylabel("dev score x100 (dots: seeds)")
    ax[1].set_xlabel(f"ELECTRA - MLM {diff['mean']:+.2f} [{diff['ci'][0]:+.2f}, {diff['ci'][1]:+.2f}]", fontsize=8)
    ax[1].legend(fontsize=8)
    ax[1].set_title("Fine-tuned on the task suite")
    fig.tight_layout()
    p = run.plots / "electra_vs_mlm.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out.append(str(Path(p).relative_to(run.path)))
    return out
