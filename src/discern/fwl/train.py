"""Building and fine-tuning the three models of the reproduction: base, +FWL and the control.

- base: the causal LM (the real SmolLM2-135M, or a GPT-2-style LM trained from scratch);
- +FWL: the base LM with a Fast Weight Layer block, trained end to end, second order (section 3);
- control: the same block with every fast-weight step size fixed at 0 and not trained, so it has
  the FWL's extra trained parameters and computation but no fast-weight update.

All three get the same training: the same windows of the training text in the same order (drawn
from ``cfg.seed``), the same steps, schedule and AdamW optimiser; the FWL and the control start
from the same block weights.  The only difference between them is whether the step sizes act.
"""

from __future__ import annotations

import copy
import json

from discern.core import Run, atomic_write_json, derive_seed

from .config import Config
from .model import FWLCausalLM

VARIANTS = ("base", "fwl", "control")


def load_model(cfg: Config):
    """(base causal LM, tokenizer) for ``cfg.model``."""
    import torch

    if cfg.model == "scratch":
        from transformers import GPT2Config, GPT2LMHeadModel

        from discern.data.tokenizer import gpt2_tokenizer

        tok = gpt2_tokenizer()
        torch.manual_seed(derive_seed(cfg.seed, "scratch-init"))  # transformers' init draws from the global RNG
        s = cfg.scratch
        conf = GPT2Config(vocab_size=len(tok), n_positions=cfg.seq_len + 1, n_embd=s.hidden, n_layer=s.layers,
                          n_head=s.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        return GPT2LMHeadModel(conf), tok
    from discern.llm import load_causal_lm

    return load_causal_lm(cfg.model)


def wrap(base, cfg: Config, fast_weights: bool = True) -> FWLCausalLM:
    """A copy of ``base`` with an FWL block (``fast_weights=False``: the control).  The block's
    initial weights come from ``cfg.seed`` alone, so the FWL and its control start identical."""
    return FWLCausalLM(copy.deepcopy(base), attn_chunks=cfg.attn_chunks, residual=cfg.residual,
                       fast_weights=fast_weights, seed=derive_seed(cfg.seed, "fwl-block"))


def build(base, cfg: Config, variant: str):
    """The untrained model of one variant: ``base``, ``fwl`` or ``control``."""
    if variant == "base":
        return copy.deepcopy(base)
    if variant in ("fwl", "control"):
        return wrap(base, cfg, fast_weights=variant == "fwl")
    raise ValueError(f"unknown variant {variant!r} (expected one of {', '.join(VARIANTS)})")


def param_groups_for(model, cfg: Config) -> list[dict]:
    """AdamW groups: the LM's parameters at ``lr``; an FWL block's own weights (not the shared
    unembedding) at ``block_lr``; its step sizes at ``step_lr`` (the control's are frozen and are in
    no group)."""
    from discern.train import param_groups

    groups = param_groups(model, 0.0)
    if not isinstance(model, FWLCausalLM):
        return groups
    kind = {id(p): ("steps" if n.startswith("steps.") else "block") for n, p in model.block.named_parameters()
            if not n.startswith("unembed.")}
    scale = {"base": 1.0, "block": cfg.block_lr / cfg.lr, "steps": cfg.step_lr / cfg.lr}
    params = [p for g in groups for p in g["params"]]
    groups = [{"params": [p for p in params if kind.get(id(p), "base") == k], "weight_decay": 0.0,
               "lr_scale": scale[k]} for k in scale]
    return [g for g in groups if g["params"]]


def finetune(model, cfg: Config, train_ids, sub: Run, tok=None, desc: str = "fine-tune"):
    """Train ``model`` (a causal LM or an :class:`FWLCausalLM`) on windows of ``train_ids``;
    returns (trained model in eval mode, summary).

    Windows: ``cfg.batch_size`` random starts per step from a generator seeded by ``cfg.seed`` and
    the step number, so every model sees the same text in the same order.  Resumable: the loop
    checkpoints in ``sub``; once done, the model is saved to ``sub/model`` (``save_pretrained``,
    with the tokenizer; an FWL model as one ``FWLCausalLM`` folder) and the optimiser checkpoint is deleted, so a rerun loads the trained model
    instead of training again."""
    import torch

    from discern.train import TrainConfig, fit

    is_fwl = isinstance(model, FWLCausalLM)
    out = sub.path / "model"
    if (sub.path / "train.json").is_file() and out.is_dir():
        from transformers import AutoModelForCausalLM

        trained = FWLCausalLM.from_pretrained(out) if is_fwl else AutoModelForCausalLM.from_pretrained(out)
        return trained.eval(), json.loads((sub.path / "train.json").read_text())

    L = cfg.seq_len
    n_windows = len(train_ids) - L
    if n_windows <= 0:
        raise ValueError(f"the training text ({len(train_ids)} tokens) is shorter than seq_len={L} + 1")

    device = next(model.parameters()).device  # the batches follow the model

    def batch_fn(step, micro, rank, world):
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "fwl-batch", step, micro, rank))
        starts = torch.randint(0, n_windows, (cfg.batch_size // world,), generator=g)
        return torch.stack([train_ids[s:s + L] for s in starts.tolist()]).to(device)

    def step_fn(m, ids):
        loss = m.loss(ids) if is_fwl else m(input_ids=ids, labels=ids).loss
        return loss, {}

    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_fraction=cfg.warmup_fraction,
                     optimizer="adamw", weight_decay=0.0, bias_correction=True, log_every=5, seed=cfg.seed,
                     bf16=cfg.bf16)
    sub.checkpoints.mkdir(parents=True, exist_ok=True)
    resume = (sub.checkpoints / "last.pt").is_file()
    state = fit(model, step_fn, batch_fn, tc, sub, groups=param_groups_for(model, cfg), resume=resume, desc=desc)
    model.eval()
    model.save_pretrained(out)
    if tok is not None:
        tok.save_pretrained(out)
    info = {"seconds": state.elapsed, "steps": state.step, "last": state.last_metrics}
    atomic_write_json(sub.path / "train.json", info)
    (sub.checkpoints / "last.pt").unlink(missing_ok=True)
    return model, info
