#!/usr/bin/env python3
"""How fast does a replaced-token discriminator learn context, without a generator?

A controlled version of ELECTRA's discriminator task on the quick corpus (Brown + State of the
Union + Moby Dick, a 2,048-entry WordPiece vocabulary trained on it): 15% of the candidate
positions get a token drawn uniformly from the vocabulary (the easiest replacements to spot
from context), and a discriminator alone learns to flag them.  Its held-out loss is printed
against the Bayes detector that sees only the token (``discern.metrics.plateau``) four times per
run: below that line the model uses context.

    .venv/bin/python scripts/discriminator-context.py hf:1e-3:600:32:4 hf:1e-3:2400:8:4 preln:1e-3:600:32:4

Each argument is ``kind:lr:steps:batch:layers[:width]``: ``hf`` is the Hugging Face
``ElectraForPreTraining`` of the quick preset (post-LayerNorm, init 1/sqrt(width)), ``preln`` a
plain PyTorch pre-LayerNorm encoder of the same shape; width defaults to 128 (heads = width/64,
FFN = 4 width).  Adam with bias correction, warm-up 50 steps times linear decay, bf16 autocast,
clipping 1.0, seed 0.  The README's sweep quotes its output.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from discern.data.pretraining import build_examples, corpus_documents
from discern.data.tokenizer import run_tokenizer
from discern.electra.config import quick
from discern.electra.model import hf_config
from discern.metrics.plateau import binary_entropy, unigram_detector_loss
from discern.train import ElectraAdam, lr_multiplier, param_groups


class PreLN(nn.Module):
    def __init__(self, vocab: int, width: int, layers: int):
        super().__init__()
        self.tok, self.pos, self.seg = nn.Embedding(vocab, width), nn.Embedding(128, width), nn.Embedding(2, width)
        layer = nn.TransformerEncoderLayer(width, max(1, width // 64), 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))
        for emb in (self.tok, self.pos):
            nn.init.normal_(emb.weight, std=width ** -0.5)

    def forward(self, ids, attention_mask, token_type_ids):
        x = self.tok(ids) + self.pos.weight[: ids.size(1)] + self.seg(token_type_ids)
        x = self.enc(x, src_key_padding_mask=~attention_mask.bool())
        return self.head(self.norm(x)).squeeze(-1)


class HF(nn.Module):
    def __init__(self, vocab: int, width: int, layers: int, pad_id: int):
        super().__init__()
        m = quick().model
        m.layers, m.hidden, m.heads, m.ffn = layers, width, max(1, width // 64), 4 * width
        from transformers import ElectraForPreTraining

        self.model = ElectraForPreTraining(hf_config(m, vocab, pad_id))

    def forward(self, ids, attention_mask, token_type_ids):
        return self.model(ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def main(specs: list[str]) -> None:
    torch.manual_seed(0)
    cfg = quick()
    docs = corpus_documents(cfg.data.corpora, 0)
    with tempfile.TemporaryDirectory() as tmp:
        tok = run_tokenizer("train", 2048, docs, Path(tmp) / "tokenizer")
    vocab = len(tok)
    data = build_examples(docs, tok, 128, seed=0)
    special = torch.tensor(tok.all_special_ids)
    candidates = torch.tensor([i for i in range(vocab) if i not in set(tok.all_special_ids)])
    perm = torch.randperm(len(data))
    eval_idx, train_idx = perm[:256], perm[256:]

    def corrupt(batch, g):
        ids, attn = batch["input_ids"], batch["attention_mask"]
        cand = attn.bool() & ~torch.isin(ids, special)
        pick = cand & (torch.rand(ids.shape, generator=g) < 0.15)
        fake = torch.where(pick, candidates[torch.randint(len(candidates), ids.shape, generator=g)], ids)
        return fake, fake != ids, attn

    g = torch.Generator().manual_seed(123)
    eval_batches = [data.batch(eval_idx[i:i + 64]) for i in range(0, 256, 64)]
    eval_fakes = [corrupt(b, g) for b in eval_batches]
    originals = np.zeros(vocab)
    for fake, labels, attn in eval_fakes:
        np.add.at(originals, fake[attn.bool() & ~labels].numpy(), 1)
    uniform = np.zeros(vocab)
    uniform[candidates.numpy()] = 1
    r = float(np.mean([lab[a.bool()].float().mean().item() for _, lab, a in eval_fakes]))
    train_ids = data.input_ids[train_idx]
    train_counts = np.bincount(train_ids[train_ids != tok.pad_token_id].numpy(), minlength=vocab)
    ref = unigram_detector_loss(train_counts, uniform, r, eval_original_counts=originals)
    print(f"vocabulary {vocab}; replaced fraction {r:.4f}; token-only detector {ref:.4f} nats; "
          f"prior {float(binary_entropy(r)):.4f}", flush=True)

    def evaluate(model) -> float:
        model.eval()
        total = n = 0.0
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            for (fake, labels, attn), b in zip(eval_fakes, eval_batches):
                logits = model(fake, attn, b["token_type_ids"]).float()
                bce = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
                total += float((bce * attn).sum())
                n += float(attn.sum())
        model.train()
        return total / n

    for spec in specs:
        kind, lr, steps, batch, layers, *width = spec.split(":")
        lr, steps, batch, layers = float(lr), int(steps), int(batch), int(layers)
        width = int(width[0]) if width else 128
        torch.manual_seed(0)
        model = HF(vocab, width, layers, tok.pad_token_id) if kind == "hf" else PreLN(vocab, width, layers)
        opt = ElectraAdam(param_groups(model, 0.01), lr=lr, bias_correction=True)
        g = torch.Generator().manual_seed(0)
        t0 = time.time()
        for step in range(1, steps + 1):
            for group in opt.param_groups:
                group["lr"] = lr * lr_multiplier(step, steps + 1, 50)  # warm-up x linear decay
            b = data.batch(train_idx[torch.randint(len(train_idx), (batch,), generator=g)])
            fake, labels, attn = corrupt(b, g)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(fake, attn, b["token_type_ids"]).float()
            loss = (F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none") * attn).sum() / attn.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % max(1, steps // 4) == 0:
                e = evaluate(model)
                print(f"{spec} step {step} ({step * batch} examples): held-out {e:.4f}, "
                      f"{(ref - e) / ref * 100:+.1f}% below the detector, {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["hf:1e-3:600:32:4"])
