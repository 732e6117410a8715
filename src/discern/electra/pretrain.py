"""ELECTRA / MLM pre-training on the registry's corpora through :func:`discern.train.fit`."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from discern.core import Run, derive_seed, seed_everything
from discern.core import dist as ddist
from discern.data.pretraining import build_examples, corpus_documents
from discern.data.tokenizer import run_tokenizer
from discern.train import fit, held_out_batches

from .config import Config
from .flops import Dims, forward_flops_per_example
from .model import ElectraPretrainer, MLMPretrainer, hf_config


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


def pretrain(cfg: Config, run: Run | None = None, resume: bool = False, stop_after: int | None = None,
             documents: list[list[str]] | None = None) -> dict:
    """Pre-train, save Hugging Face folders under ``<run>/model`` and return the results."""
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    if documents is None:
        documents = corpus_documents(cfg.data.corpora, cfg.data.max_documents)
    tokenizer = get_tokenizer(cfg, documents, run)
    data = build_examples(documents, tokenizer, cfg.data.seq_len, seed=cfg.seed)
    torch.manual_seed(derive_seed(cfg.seed, "init", cfg.model.objective))
    dev = ddist.device()
    model = build_model(cfg, tokenizer).to(dev)
    tc = cfg.train
    seed = cfg.seed
    batch_fn, eval_batches, n_eval = held_out_batches(data, tc.batch_size, tc.accumulation, seed, dev)

    def step_fn(m, batch):
        return m(batch)

    def eval_fn(m):
        g_state = torch.get_rng_state()
        torch.manual_seed(derive_seed(seed, "eval"))
        out: dict[str, float] = {}
        for count, batch in eval_batches(32):
            _, met = m(batch)
            for k, v in met.items():
                out[k] = out.get(k, 0.0) + float(v) * count / n_eval
        torch.set_rng_state(g_state)
        return out

    state = fit(model, step_fn, batch_fn, tc, run, eval_fn=eval_fn, resume=resume,
                desc=f"pretrain {cfg.model.objective}", stop_after=stop_after)
    per_step = flops_per_step(cfg, len(tokenizer))
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
        "params_discriminator": _n_params(model.discriminator if hasattr(model, "discriminator") else model.mlm),
        "final": state.last_metrics,
        "eval": state.last_eval,
    }
    if run is not None and state.step >= tc.steps and ddist.is_main():
        model.save_pretrained(run.path / "model", tokenizer=tokenizer)
        result["encoder_dir"] = str(encoder_dir(run.path, cfg.model.objective))
        run.save_results(result)
    return result


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
