"""Electric pre-training on the registry's corpora through :func:`discern.train.fit` (DDP, resume)."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from pathlib import Path

import torch

from discern.core import ConfigError, Run, derive_seed, seed_everything
from discern.core import dist as ddist
from discern.data.pretraining import austen_documents, build_examples, corpus_documents
from discern.data.tokenizer import run_tokenizer
from discern.metrics.plateau import nce_prior_loss, token_only_energy_gaps, unigram_references
from discern.metrics.stats import mean_interval
from discern.train import fit, held_out_batches, held_out_token_counts, token_counts
from discern.train.bench import runtime_info
from discern.train.plots import plot_losses

from .config import Config
from .model import ElectricPretrainer


def training_documents(cfg: Config) -> list[list[str]]:
    """Documents (lists of sentences) to pre-train on; the novels in ``data.held_out_novels``
    are left out of the Austen corpus so their sentences can be test utterances."""
    docs: list[list[str]] = []
    for name in cfg.data.corpora:
        if name == "austen":
            docs += austen_documents(exclude=tuple(cfg.data.held_out_novels))
        else:
            docs += corpus_documents([name])
    if cfg.data.max_documents:
        docs = random.Random(derive_seed(cfg.seed, "documents")).sample(docs, min(cfg.data.max_documents, len(docs)))
    return [d for d in docs if d]


def drop_sentences(documents: list[list[str]], sentences: set[str]) -> list[list[str]]:
    """``documents`` without the given sentences (compared lower-cased, whitespace folded)."""
    def key(s: str) -> str:
        return " ".join(s.lower().split())
    banned = {key(s) for s in sentences}
    kept = [[s for s in d if key(s) not in banned] for d in documents]
    return [d for d in kept if d]


def build_model(cfg: Config, tokenizer) -> ElectricPretrainer:
    return ElectricPretrainer(cfg.model, len(tokenizer), tokenizer.pad_token_id, tokenizer.all_special_ids)


def model_dir(run_path: str | Path) -> Path:
    """The folder of a finished pre-training run's model (``energy/`` and ``noise/``)."""
    return Path(run_path) / "model"


def pretrain(cfg: Config, run: Run | None = None, resume: bool = False, stop_after: int | None = None,
             documents: list[list[str]] | None = None, exclude_sentences: set[str] | None = None) -> dict:
    """Pre-train Electric; save ``<run>/model/{energy,noise}`` and ``<run>/tokenizer``.

    ``exclude_sentences``: sentences (compared after lower-casing and whitespace folding) that
    must never be trained on, e.g. the references of the test utterances."""
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    if documents is None:
        documents = training_documents(cfg)
    if exclude_sentences:
        documents = drop_sentences(documents, exclude_sentences)
    tokenizer = run_tokenizer(cfg.data.tokenizer, cfg.data.vocab_size, documents,
                              run.path / "tokenizer" if run is not None else None, write=ddist.is_main())
    data = build_examples(documents, tokenizer, cfg.data.seq_len, seed=cfg.seed)
    torch.manual_seed(derive_seed(cfg.seed, "init", "electric"))
    dev = ddist.device()
    model = build_model(cfg, tokenizer).to(dev)
    if cfg.train.seed not in (0, cfg.seed):
        raise ConfigError(f"train.seed={cfg.train.seed}: a pre-training run has one seed; set it with "
                          f"--set seed={cfg.train.seed}")
    tc = replace(cfg.train, seed=cfg.seed)
    seed = cfg.seed
    batch_fn, eval_batches, n_eval = held_out_batches(data, tc.batch_size, tc.accumulation, seed, dev,
                                                      held_out=cfg.data.eval_examples)
    counts, _ = token_counts(data, len(tokenizer))
    refs = unigram_references(counts, held_out_token_counts(eval_batches, len(tokenizer)), tokenizer.all_special_ids)
    if cfg.model.noise == "unigram":
        model.set_unigram_noise(counts)

    def step_fn(m, batch):
        return m(batch)

    def eval_fn(m):
        gen = torch.Generator().manual_seed(derive_seed(seed, "eval"))
        inner = m.module if hasattr(m, "module") else m
        out: dict[str, float] = {}
        gaps = []
        details: dict = {}
        for count, batch in eval_batches(32):
            _, met = inner(batch, generator=gen, details=details)
            for k, v in met.items():
                out[k] = out.get(k, 0.0) + float(v) * count / n_eval
            gaps.append(nce_prior_loss(float(met["noised_frac"]), float(met["candidate_frac"])) - float(met["nce_loss"]))
        ci = mean_interval(gaps)["ci"]  # t-interval over the held-out batches
        out["held_out_examples"] = n_eval
        out["nce_below_plateau_lo"], out["nce_below_plateau_hi"] = ci
        out["ref_unigram"] = refs["unigram_held_out"]
        out["cloze_below_plateau"] = refs["unigram_held_out"] - out["cloze_loss"]
        out["ref_nce_prior"] = nce_prior_loss(out["noised_frac"], out["candidate_frac"])
        out["nce_below_plateau"] = out["ref_nce_prior"] - out["nce_loss"]
        if len(details.get("tokens", [])) > 1:  # the no-context plateau: an energy that sees only the token
            ref, tgaps, covered, scored = token_only_energy_gaps(details["tokens"], len(tokenizer))
            out["ref_token_energy"], out["token_energy_positions"] = ref, covered
            out["nce_loss_token_positions"] = scored  # the model on the positions the plateau scores
            out["nce_below_token_energy"] = ref - scored  # both per scored token; the interval is per batch
            out["nce_below_token_energy_lo"], out["nce_below_token_energy_hi"] = mean_interval(tgaps)["ci"]
        return out

    state = fit(model, step_fn, batch_fn, tc, run, eval_fn=eval_fn, resume=resume,
                desc="pretrain electric", stop_after=stop_after)
    result = {
        "steps": state.step,
        "finished": state.step >= tc.steps,
        "documents": len(documents),
        "examples": len(data),
        "tokens_per_step": int(tc.batch_size * cfg.data.seq_len),
        "train_seconds": state.elapsed,
        "wall_seconds": time.perf_counter() - t0,
        "runtime": runtime_info(),  # CPU, threads, torch, malloc: what train_seconds depends on
        "params_energy": sum(p.numel() for p in model.energy_model.parameters()),
        "params_noise_towers": sum(p.numel() for n, p in model.noise.named_parameters()
                                   if "embeddings" not in n),
        "final": state.last_metrics,
        "eval": state.last_eval,
        "plateau": {
            "nce": {"loss": state.last_eval.get("nce_loss"), "reference": state.last_eval.get("ref_nce_prior"),
                    "reference_name": "prior entropy of the noise rate", "nats_below": state.last_eval.get("nce_below_plateau"),
                    "nats_below_ci": [state.last_eval.get("nce_below_plateau_lo"), state.last_eval.get("nce_below_plateau_hi")]},
            "token_only_energy": {
                "loss": state.last_eval.get("nce_loss_token_positions"),
                "reference": state.last_eval.get("ref_token_energy"),
                "reference_name": "best energy that sees only the token (given the noise model's log q), "
                                  "cross-fitted on the held-out batches, scored (with the model) on "
                                  "the positions of tokens seen 20+ times in the fitting half",
                "positions_scored": state.last_eval.get("token_energy_positions"),
                "nats_below": state.last_eval.get("nce_below_token_energy"),
                "nats_below_ci": [state.last_eval.get("nce_below_token_energy_lo"),
                                  state.last_eval.get("nce_below_token_energy_hi")]},
            "noise_cloze": {"loss": state.last_eval.get("cloze_loss"), "reference": refs["unigram_held_out"],
                            "reference_name": "unigram cross-entropy on the held-out examples",
                            "corpus_unigram_entropy": refs["unigram_entropy"],
                            "nats_below": state.last_eval.get("cloze_below_plateau")},
        },
    }
    if run is not None and state.step >= tc.steps and ddist.is_main():
        model.save_pretrained(model_dir(run.path), tokenizer=tokenizer)
        result["model_dir"] = str(model_dir(run.path))
        p = result["plateau"]
        panels = [{"key": "nce_loss", "label": "Electric NCE loss", "reference": p["nce"]["reference"],
                   "reference_label": "noise-rate prior"}]
        if p["token_only_energy"]["reference"] is not None:  # same positions on both sides
            panels.append({"key": "nce_loss_token_positions", "label": "Electric NCE on the token-only plateau's "
                           "positions", "reference": p["token_only_energy"]["reference"],
                           "reference_key": "ref_token_energy", "reference_label": "token-only energy"})
        if cfg.model.noise == "two-tower":
            panels.append({"key": "cloze_loss", "label": "two-tower noise model (cloze)",
                           "reference": p["noise_cloze"]["reference"], "reference_label": "unigram (held-out)"})
        plot = plot_losses(run.metrics(), panels, run.plots / "pretrain_losses.png",
                           title="Electric pre-training against the no-context plateaus")
        result["plots"] = [str(plot.relative_to(run.path))]
        run.save_results(result)
    return result
