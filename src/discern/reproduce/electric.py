"""Electric's reproduction, wired to ELECTRA's masked-LM baseline (the two L3 packages meet here)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

from discern.core import Result, Run


def train_mlm(cfg, documents: list, tokenizer_dir: Path, out: Path) -> Path:
    """The ELECTRA issue's BERT-style MLM baseline at Electric's size, tokenizer, data and steps."""
    from discern.electra.config import Config as ElectraConfig
    from discern.electra.pretrain import encoder_dir, pretrain, with_objective

    ec = ElectraConfig()
    m = cfg.model
    ec.model = replace(ec.model, layers=m.layers, hidden=m.hidden, embedding=m.embedding, heads=m.heads, ffn=m.ffn,
                       max_len=m.max_len, dropout=m.dropout, attention_dropout=m.attention_dropout, init_std=m.init_std,
                       mask_prob=m.mask_prob)
    ec.data = replace(ec.data, tokenizer=str(tokenizer_dir), seq_len=cfg.data.seq_len, vocab_size=cfg.data.vocab_size)
    ec.train = copy.deepcopy(cfg.train)
    if cfg.rerank.mlm_lr > 0:
        ec.train.lr = cfg.rerank.mlm_lr
    ec.seed = cfg.seed
    ec = with_objective(ec, "mlm")
    sub = Run(out)
    sub.checkpoints.mkdir(parents=True, exist_ok=True)
    resume = (sub.path / "config.json").is_file()
    sub.save_config(ec)
    pretrain(ec, sub, resume=resume, documents=documents)
    return encoder_dir(sub.path, "mlm")


def run(cfg, run: Run) -> Result:
    """Electric's reproduction with ELECTRA's masked LM as the n-pass PLL baseline."""
    from discern.electric.experiment import run as electric_run

    return electric_run(cfg, run, mlm_trainer=train_mlm)
