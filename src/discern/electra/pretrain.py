"""ELECTRA / MLM pre-training on the registry's corpora through :func:`discern.train.fit`."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from discern.core import ConfigError, Run, derive_seed, seed_everything
from discern.core import dist as ddist
from discern.data.pretraining import build_examples, corpus_documents, iter_text_documents, write_examples
from discern.data.tokenizer import run_tokenizer
from discern.metrics.plateau import (detector_gaps, unigram_detector_loss, unigram_detector_posterior,
                                     unigram_references)
from discern.metrics.stats import mean_interval
from discern.train import fit, held_out_batches, held_out_token_counts, token_counts
from discern.train.bench import runtime_info
from discern.train.plots import plot_losses

from .config import Config
from .flops import Dims, forward_flops_per_example
from .model import ElectraPretrainer, MLMPretrainer, hf_config


def streamed_corpus(cfg: Config) -> bool:
    """A corpus given as files (``data.corpora=[DIR]``, ``--text DIR``) is streamed from disk:
    the tokenizer trains from the stream and examples are written memory-mapped into the run
    folder, so memory stays bounded whatever the corpus size."""
    return all(Path(c).exists() for c in cfg.data.corpora)


def _stream(cfg: Config):
    for c in cfg.data.corpora:
        yield from iter_text_documents(Path(c))


def load_data(cfg: Config, run: Run | None, documents: list[list[str]] | None = None):
    """``(tokenizer, examples)``: in memory for the registry's corpora, memory-mapped under
    ``<run>/examples`` for a streamed corpus (reopened on resume)."""
    if documents is None and streamed_corpus(cfg) and run is not None:
        tokenizer = run_tokenizer(cfg.data.tokenizer, cfg.data.vocab_size, lambda: _stream(cfg),
                                  run.path / "tokenizer", write=ddist.is_main())
        folder = run.path / "examples"
        if ddist.is_main():
            write_examples(_stream(cfg), tokenizer, cfg.data.seq_len, cfg.seed, folder,
                           source="|".join(str(Path(c).resolve()) for c in cfg.data.corpora), split_long=True)
        ddist.barrier()
        from discern.data.pretraining import MemmapPretrainingData

        return tokenizer, MemmapPretrainingData(folder)
    if documents is None:
        documents = corpus_documents(cfg.data.corpora, cfg.data.max_documents)
    tokenizer = get_tokenizer(cfg, documents, run)
    return tokenizer, build_examples(documents, tokenizer, cfg.data.seq_len, seed=cfg.seed)


def get_tokenizer(cfg: Config, documents: list[list[str]], run: Run | None):
    """Reuse the run's tokenizer on resume; otherwise train one or load the configured folder."""
    return run_tokenizer(cfg.data.tokenizer, cfg.data.vocab_size, documents,
                         run.path / "tokenizer" if run is not None else None, write=ddist.is_main())


def build_model(cfg: Config, tokenizer) -> torch.nn.Module:
    cls = ElectraPretrainer if cfg.model.objective == "electra" else MLMPretrainer
    if cfg.model.objective not in ("electra", "mlm"):
        raise ValueError(f"model.objective must be electra or mlm, got {cfg.model.objective!r}")
    return cls(cfg.model, len(tokenizer), tokenizer.pad_token_id, tokenizer.all_special_ids,
               tokenizer.mask_token_id)


def dims(cfg: Config, vocab: int, generator: bool = False) -> Dims:
    c = hf_config(cfg.model, vocab, 0, generator=generator)
    return Dims(vocab=vocab, embedding=c.embedding_size, hidden=c.hidden_size, layers=c.num_hidden_layers,
                heads=c.num_attention_heads, ffn=c.intermediate_size, seq_len=cfg.data.seq_len)


def flops_per_step(cfg: Config, vocab: int, dense_lookup: bool = True) -> float:
    """Analytic training FLOPs of one optimiser step (forward + equal backward)."""
    frac = cfg.model.mask_prob + 0.005  # N / L slots carry an output softmax
    if cfg.model.objective == "electra":
        f = forward_flops_per_example(dims(cfg, vocab), frac, disc=True, generator=dims(cfg, vocab, True),
                                      dense_lookup=dense_lookup)
    else:
        f = forward_flops_per_example(dims(cfg, vocab), frac, disc=False, dense_lookup=dense_lookup)
    return 2.0 * cfg.train.batch_size * f


def one_seed(cfg: Config):
    """The run's training config with ``train.seed`` taken from the run's ``seed``: one number
    drives data order, initialisation, masking, sampling and dropout."""
    if cfg.train.seed not in (0, cfg.seed):
        raise ConfigError(f"train.seed={cfg.train.seed}: a pre-training run has one seed; set it with "
                          f"--set seed={cfg.train.seed}")
    return replace(cfg.train, seed=cfg.seed)


def pretrain(cfg: Config, run: Run | None = None, resume: bool = False, stop_after: int | None = None,
             documents: list[list[str]] | None = None) -> dict:
    """Pre-train, save Hugging Face folders under ``<run>/model`` and return the results.

    Every held-out evaluation also logs the plateaus of the run's own corpus and tokenizer
    (``eval/ref_*`` in ``metrics.jsonl``): the unigram entropy for the generator / MLM loss and,
    for ELECTRA, the loss of the best detector that sees only the token, for the replacement
    distribution the generator produced at that moment; ``eval/*_below_plateau`` is the gap in
    nats (positive = the model uses context)."""
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    tokenizer, data = load_data(cfg, run, documents)
    torch.manual_seed(derive_seed(cfg.seed, "init", cfg.model.objective))
    dev = ddist.device()
    model = build_model(cfg, tokenizer).to(dev)
    tc = one_seed(cfg)
    seed = cfg.seed
    batch_fn, eval_batches, n_eval = held_out_batches(data, tc.batch_size, tc.accumulation, seed, dev,
                                                      held_out=cfg.data.eval_examples)
    counts, _ = token_counts(data, len(tokenizer))
    eval_counts = held_out_token_counts(eval_batches, len(tokenizer))
    refs = unigram_references(counts, eval_counts, tokenizer.all_special_ids)
    electra = cfg.model.objective == "electra"

    def step_fn(m, batch):
        return m(batch)

    def eval_fn(m):
        g_state = torch.get_rng_state()
        torch.manual_seed(derive_seed(seed, "eval"))
        inner = m.module if hasattr(m, "module") else m
        out: dict[str, float] = {}
        details: dict = {}
        for count, batch in eval_batches(32):
            _, met = inner(batch, details) if electra else inner(batch)
            for k, v in met.items():
                out[k] = out.get(k, 0.0) + float(v) * count / n_eval
        torch.set_rng_state(g_state)
        out["held_out_examples"] = n_eval
        out["ref_unigram"] = refs["unigram_held_out"]
        out["mlm_below_plateau"] = refs["unigram_held_out"] - out["mlm_loss"]
        if electra:
            r = out["replaced_frac"]
            mass = details["replacement_mass"].cpu().numpy()
            ref = unigram_detector_loss(counts, mass, r, eval_original_counts=eval_counts) if r > 0 else 0.0
            out["ref_unigram_detector"] = ref
            out["disc_below_plateau"] = ref - out["disc_loss"]
            if r > 0:  # "clearly below": a t-interval over the held-out batches of the paired gaps
                post = unigram_detector_posterior(counts, mass, r, eval_original_counts=eval_counts)
                gaps = detector_gaps(post, details["tokens"])
                if len(gaps) > 1:
                    out["disc_below_plateau_lo"], out["disc_below_plateau_hi"] = mean_interval(gaps)["ci"]
        return out

    state = fit(model, step_fn, batch_fn, tc, run, eval_fn=eval_fn, resume=resume,
                desc=f"pretrain {cfg.model.objective}", stop_after=stop_after)
    per_step = flops_per_step(cfg, len(tokenizer))
    ev = state.last_eval
    plateau = {"mlm": {"loss": ev.get("mlm_loss"), "reference": refs["unigram_held_out"],
                       "reference_name": "unigram cross-entropy on the held-out examples",
                       "corpus_unigram_entropy": refs["unigram_entropy"], "nats_below": ev.get("mlm_below_plateau")}}
    if electra:
        plateau["discriminator"] = {"loss": ev.get("disc_loss"), "reference": ev.get("ref_unigram_detector"),
                                    "reference_name": "unigram-frequency detector on the held-out examples",
                                    "nats_below": ev.get("disc_below_plateau"),
                                    "nats_below_ci": [ev.get("disc_below_plateau_lo"), ev.get("disc_below_plateau_hi")],
                                    "interval": "Student t over held-out batches of the per-batch detector - "
                                                "discriminator BCE"}
    result = {
        "objective": cfg.model.objective,
        "steps": state.step,
        "finished": state.step >= tc.steps,
        "examples": len(data),
        "tokens_per_step": int(tc.batch_size * cfg.data.seq_len),
        "flops_per_step": per_step,
        "train_flops": per_step * state.step,
        "train_seconds": state.elapsed,
        "wall_seconds": time.perf_counter() - t0,
        "runtime": runtime_info(),  # CPU, threads, torch, malloc: what train_seconds depends on
        "params_discriminator": _n_params(model.discriminator if hasattr(model, "discriminator") else model.mlm),
        "final": state.last_metrics,
        "eval": ev,
        "plateau": plateau,
    }
    if run is not None and state.step >= tc.steps and ddist.is_main():
        model.save_pretrained(run.path / "model", tokenizer=tokenizer)
        result["encoder_dir"] = str(encoder_dir(run.path, cfg.model.objective))
        result["plots"] = [str(plot_pretraining(run, plateau, cfg.model.objective).relative_to(run.path))]
        run.save_results(result)
    return result


def plot_pretraining(run: Run, plateau: dict, objective: str) -> Path:
    """``plots/pretrain_losses_<objective>.png``: each loss by step with its plateau as a dashed line
    (the unigram detector at each evaluation: it follows the generator's replacements)."""
    label = "generator MLM loss" if objective == "electra" else "MLM loss"
    panels = [{"key": "mlm_loss", "label": label, "reference": plateau["mlm"]["reference"],
               "reference_label": "unigram (held-out)"}]
    if "discriminator" in plateau:
        panels.append({"key": "disc_loss", "label": "discriminator (replaced-token BCE)",
                       "reference": plateau["discriminator"]["reference"],
                       "reference_key": "ref_unigram_detector", "reference_label": "unigram detector"})
    return plot_losses(run.metrics(), panels, run.plots / f"pretrain_losses_{objective}.png",
                       title=f"{objective} pre-training against the no-context plateaus")


def encoder_dir(run_path: str | Path, objective: str) -> Path:
    """The folder a fine-tuner loads: the discriminator for ELECTRA, the MLM for the baseline."""
    return Path(run_path) / "model" / ("discriminator" if objective == "electra" else "mlm")


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def with_objective(cfg: Config, objective: str, steps: int | None = None) -> Config:
    """A copy of ``cfg`` for the other objective (and optionally another step count)."""
    import copy

    new = copy.deepcopy(cfg)
    new.model = replace(new.model, objective=objective)
    if objective == "mlm":
        new.model.mask_frac, new.model.random_frac = 0.8, 0.1  # BERT's 80/10/10
    if steps is not None:
        new.train = replace(new.train, steps=steps)
    return new
