"""Electric pre-training on the registry's corpora through :func:`discern.train.fit` (DDP, resume)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch

from discern.core import Run, derive_seed, seed_everything
from discern.core import dist as ddist
from discern.data.pretraining import austen_documents, build_examples, corpus_documents
from discern.data.tokenizer import run_tokenizer
from discern.train import fit, held_out_batches

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
    tc = cfg.train
    seed = cfg.seed
    batch_fn, eval_batches, n_eval = held_out_batches(data, tc.batch_size, tc.accumulation, seed, dev)

    def step_fn(m, batch):
        return m(batch)

    def eval_fn(m):
        gen = torch.Generator().manual_seed(derive_seed(seed, "eval"))
        inner = m.module if hasattr(m, "module") else m
        out: dict[str, float] = {}
        for count, batch in eval_batches(32):
            _, met = inner(batch, generator=gen)
            for k, v in met.items():
                out[k] = out.get(k, 0.0) + float(v) * count / n_eval
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
        "params_energy": sum(p.numel() for p in model.energy_model.parameters()),
        "params_noise_towers": sum(p.numel() for n, p in model.noise.named_parameters()
                                   if "embeddings" not in n),
        "final": state.last_metrics,
        "eval": state.last_eval,
    }
    if run is not None and state.step >= tc.steps and ddist.is_main():
        model.save_pretrained(model_dir(run.path), tokenizer=tokenizer)
        result["model_dir"] = str(model_dir(run.path))
        run.save_results(result)
    return result
