"""Fine-tune any Hugging Face encoder on a task, with ELECTRA's fine-tuning recipe.

ELECTRA (paper Table 7 and ``run_finetuning.py`` of the official code):

- head: dropout(0.1) + one linear layer on the final ``[CLS]`` vector; **no pooler / tanh**
  (Hugging Face's ``ElectraClassificationHead`` differs: dense + GELU + dropout + linear);
- loss: softmax cross-entropy, or MSE on a single output for regression (STS);
- optimiser: BERT's Adam without bias correction, gradient clipping 1.0, weight decay 0
  (the paper; the code's default is 0.01), LR 3e-4 for Small, 10% warm-up multiplied by a
  linear decay to 0;
- layer-wise LR decay ``lr · decay^(n_layers + 2 − depth)`` with embeddings at depth 0 and
  layer i at depth i + 1, so the head gets ``decay^0`` and the top layer ``decay^2`` — the
  official off-by-one (google-research/electra#51), kept by ``lr_decay_bug_compat=True``;
- batch 32, max length 128, 3 epochs (10 for regression, as for STS).

The training loop is :func:`discern.train.fit`; the data order is a permutation derived from
``(seed, epoch)``, so ``resume`` continues bit-for-bit.  Batches are padded to their own
longest sequence.

The fine-tuned model saves (``finetune(..., save=DIR)``, :func:`save_sequence_classifier`) as a
folder of the encoder's own ``*ForSequenceClassification`` class, which
``AutoModelForSequenceClassification.from_pretrained`` loads alone.  Those classes put a nonlinear
layer between [CLS] and the logits (ELECTRA: dense + GELU; BERT: the tanh pooler; RoBERTa/MPNet:
dense + tanh), so :func:`to_sequence_classification` sets that layer's weights to carry ELECTRA's
linear head through it (see there); the saved model gives the fine-tuned logits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from discern.core import DiscernError, Run, generator
from discern.train import TrainConfig, epoch_batch, fit, layerwise_lr_scales, param_groups

from .suite import Example, Task, _cap, get_task

__all__ = ["EncoderHead", "FinetuneConfig", "build_param_groups", "collate", "encode_examples", "encoder_layers",
           "finetune", "finetune_from_pretrained", "predict", "save_sequence_classifier", "to_sequence_classification"]


@dataclass
class FinetuneConfig:
    lr: float = 3e-4  # ELECTRA-Small; Base 1e-4, Large 5e-5
    layerwise_lr_decay: float = 0.8  # 0.9 for Large; 1.0 turns layer-wise decay off
    lr_decay_bug_compat: bool = True  # official off-by-one: head at depth n_layers + 2
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    batch_size: int = 32
    dropout: float = 0.1  # head dropout (the encoder keeps its own config's dropout)
    epochs: float = 3.0  # classification
    regression_epochs: float = 10.0  # regression (ELECTRA's STS recipe)
    max_steps: int = 0  # > 0 overrides the epochs
    max_train: int = 0  # > 0: fine-tune on that many train examples (lowest id hashes, nested)
    max_length: int = 128
    bf16: bool = False  # bf16 autocast for training and prediction
    seed: int = 0
    optimizer: str = "electra_adam"  # electra_adam (no bias correction) or adamw
    bias_correction: bool = False
    clip_norm: float = 1.0
    double_unordered: bool = False  # pair tasks: also train on (text_b, text) (ELECTRA's MRPC/STS)
    predict_train: bool = False  # also return train-set predictions (BAM teachers)
    eval_batch_size: int = 64
    eval_every: int = 0  # steps between dev evaluations logged to the run (0 = only at the end)
    log_every: int = 10
    checkpoint_every: int = 0
    device: str = "auto"  # auto (cuda when available, or the command's --device), cpu, cuda, cuda:N
    # attention kernel of a model loaded from a folder: auto = on the CPU "fused" for ELECTRA and
    # BERT folders (discern.nn.attention) and "eager" for other models, both with a faster backward
    # than SDPA's CPU flash kernel; the library's default on CUDA
    attention: str = "auto"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise DiscernError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 < self.layerwise_lr_decay <= 1.0:
            raise DiscernError(f"layerwise_lr_decay must be in (0, 1], got {self.layerwise_lr_decay}")
        if self.max_length < 8:
            raise DiscernError(f"max_length must be >= 8, got {self.max_length}")


class EncoderHead(nn.Module):
    """An encoder plus ELECTRA's head: ``linear(dropout(h_[CLS]))``; no pooler, no tanh."""

    def __init__(self, encoder: nn.Module, num_outputs: int, dropout: float = 0.1,
                 seed: int = 0):
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_outputs)
        std = float(getattr(encoder.config, "initializer_range", 0.02))
        with torch.no_grad():  # BERT/ELECTRA initialiser, from an explicit generator
            w = torch.empty_like(self.classifier.weight)
            nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std, generator=generator(seed, "head"))
            self.classifier.weight.copy_(w)
            self.classifier.bias.zero_()
        params = inspect.signature(encoder.forward).parameters
        self._takes_token_types = "token_type_ids" in params

    def cls_vector(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self._takes_token_types:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(**kwargs)
        hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state  # (B, T, H)
        return hidden[:, 0]  # (B, H): the [CLS] position only

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        h = self.cls_vector(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(h))  # (B, num_outputs)


def encoder_layers(encoder: nn.Module) -> int:
    """Number of transformer layers of a Hugging Face encoder (for layer-wise LR decay)."""
    cfg = encoder.config
    for attr in ("num_hidden_layers", "n_layers", "num_layers"):
        if getattr(cfg, attr, None) is not None:
            return int(getattr(cfg, attr))
    raise DiscernError(f"cannot tell the number of layers of {type(encoder).__name__}")


def build_param_groups(model: EncoderHead, cfg: FinetuneConfig) -> list[dict]:
    """Optimiser groups with ELECTRA's layer-wise LR scales (``lr_scale`` per group).

    An unused pooler (``BertModel``'s) is left out: ELECTRA's head reads ``[CLS]`` directly.
    """
    names = [n for n, _ in model.named_parameters()]
    scales = None
    if cfg.layerwise_lr_decay < 1.0:
        scales = layerwise_lr_scales(names, encoder_layers(model.encoder), cfg.layerwise_lr_decay,
                                     bug_compat=cfg.lr_decay_bug_compat)
    groups = param_groups(model, cfg.weight_decay, scales)
    out = []
    for g in groups:
        keep = [i for i, n in enumerate(g["names"]) if ".pooler." not in n]
        if keep:
            out.append({**g, "params": [g["params"][i] for i in keep],
                        "names": [g["names"][i] for i in keep]})
    return out


# --------------------------------------------------------------------------- tokenisation, batches


def encode_examples(tokenizer: Any, examples: Sequence[Example], max_length: int,
                    swap: bool = False) -> list[dict]:
    """Token ids (and segment ids) per example, truncated to ``max_length``, not padded."""
    out: list[dict | None] = [None] * len(examples)
    singles = [i for i, ex in enumerate(examples) if ex.text_b is None]
    pairs = [i for i, ex in enumerate(examples) if ex.text_b is not None]
    for idx, is_pair in ((singles, False), (pairs, True)):
        if not idx:
            continue
        a = [examples[i].text for i in idx]
        if is_pair:
            b = [examples[i].text_b for i in idx]
            if swap:
                a, b = b, a
            enc = tokenizer(a, b, truncation=True, max_length=max_length)
        else:
            enc = tokenizer(a, truncation=True, max_length=max_length)
        types = enc.get("token_type_ids")
        for j, i in enumerate(idx):
            out[i] = {"input_ids": list(enc["input_ids"][j]),
                      "token_type_ids": list(types[j]) if types is not None else None}
    return out  # type: ignore[return-value]


def collate(encoded: Sequence[dict], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Pad encoded examples (:func:`encode_examples`) to the longest one in this batch."""
    T = max(len(e["input_ids"]) for e in encoded)
    B = len(encoded)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    has_types = encoded[0]["token_type_ids"] is not None
    types = torch.zeros((B, T), dtype=torch.long) if has_types else None
    for i, e in enumerate(encoded):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        mask[i, :n] = 1
        if types is not None:
            types[i, :n] = torch.tensor(e["token_type_ids"])
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    if types is not None:
        batch["token_type_ids"] = types.to(device)
    return batch


def _pad_id(tokenizer: Any) -> int:
    pid = getattr(tokenizer, "pad_token_id", None)
    return int(pid) if pid is not None else 0


@torch.no_grad()
def predict(model: EncoderHead, tokenizer: Any, examples: Sequence[Example], *,
            max_length: int = 128, batch_size: int = 64, bf16: bool = False) -> np.ndarray:
    """Raw outputs ``(N, num_outputs)`` (logits, or the regression value) in example order."""
    if not examples:
        return np.zeros((0, model.classifier.out_features), dtype=np.float32)
    encoded = encode_examples(tokenizer, examples, max_length)
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
    out = np.zeros((len(encoded), model.classifier.out_features), dtype=np.float32)
    was_training = model.training
    model.eval()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with autocast:
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            batch = collate([encoded[i] for i in idx], _pad_id(tokenizer), device)
            out[idx] = model(**batch).float().cpu().numpy()
    model.train(was_training)
    return out


def _resolve_device(name: str) -> torch.device:
    """``FinetuneConfig.device``: ``auto`` is the process's device (:func:`discern.core.dist.device`: CUDA
    when available, or what a command's ``--device`` chose); ``cpu``, ``cuda``, ``cuda:N`` as
    :func:`discern.core.device.resolve_device` reads them (one-line errors)."""
    from discern.core import dist as ddist
    from discern.core.device import resolve_device

    if (name or "auto").strip().lower() == "auto":
        return ddist.device()
    return resolve_device(name)


def _split_outputs(task: Task, examples: Sequence[Example], outputs: np.ndarray
                   ) -> tuple[dict, dict, dict | None]:
    """(metrics, predictions by id, logits by id or None for regression)."""
    if task.kind == "classification":
        preds: dict[str, Any] = {ex.id: int(np.argmax(o)) for ex, o in zip(examples, outputs)}
        logits = {ex.id: [float(x) for x in o] for ex, o in zip(examples, outputs)}
    else:
        preds = {ex.id: float(o[0]) for ex, o in zip(examples, outputs)}
        logits = None
    metrics = task.evaluate(preds, examples) if examples else {}
    return metrics, preds, logits


# --------------------------------------------------------------------------- fine-tuning


def finetune(encoder: nn.Module, tokenizer: Any, task: Task | str, cfg: FinetuneConfig | None = None,
             run: Run | None = None, *, resume: bool = False, stop_after: int | None = None,
             save: str | Path | None = None) -> dict:
    """Fine-tune ``encoder`` (any ``AutoModel``) on ``task``; returns metrics and predictions.

    Result (JSON-serialisable)::

        {"task", "kind", "labels", "primary", "steps", "total_steps", "finished", "config",
         "dev": {metric: value}, "test": {metric: value},          # + "train" with predict_train
         "n": {split: examples},
         "predictions": {split: {example id: class index | scaled regression value}},
         "logits": {split: {example id: [one float per label]}}}  # classification only

    With ``run`` the loop logs to and checkpoints in the run folder, and the result is its
    ``results.json``; ``resume=True`` continues from the run's last checkpoint.  ``encoder`` is trained in
    place (keep a reference to use the fine-tuned encoder; the head is not returned).

    ``save=DIR``: once training has finished, the model and the tokenizer are saved to ``DIR`` as an
    ``AutoModelForSequenceClassification`` folder (:func:`save_sequence_classifier`, checked against the
    fine-tuned model on training examples); the result then has ``"model": DIR``.  Under ``torchrun``
    only the main process writes it.
    """
    cfg = cfg or FinetuneConfig()
    task = get_task(task) if not isinstance(task, Task) or not task.splits else task
    train = task.train
    if not train:
        raise DiscernError(f"task '{task.name}' has no training examples")
    if 0 < cfg.max_train < len(train):
        train = _cap(train, cfg.max_train)
    device = _resolve_device(cfg.device)
    model = EncoderHead(encoder, task.num_outputs, cfg.dropout, seed=cfg.seed).to(device)
    for name, p in model.named_parameters():
        if ".pooler." in name:  # BertModel's pooler is unused by this head: keep DDP from waiting on it
            p.requires_grad_(False)

    encoded = encode_examples(tokenizer, train, cfg.max_length)
    labels = [ex.label for ex in train]
    if cfg.double_unordered and any(ex.text_b is not None for ex in train):
        encoded = encoded + encode_examples(tokenizer, train, cfg.max_length, swap=True)
        labels = labels + labels
    n = len(encoded)
    epochs = cfg.regression_epochs if task.kind == "regression" else cfg.epochs
    steps = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(epochs * n / cfg.batch_size))
    label_dtype = torch.float32 if task.kind == "regression" else torch.long
    pad = _pad_id(tokenizer)
    order = (cfg.seed, "finetune-order", task.name)

    def batch_fn(step: int, micro: int, rank: int, world: int) -> dict:
        idx = epoch_batch(n, cfg.batch_size, step, micro, tc.accumulation, rank, world, order).tolist()
        batch = collate([encoded[i] for i in idx], pad, device)
        batch["labels"] = torch.tensor([labels[i] for i in idx], dtype=label_dtype, device=device)
        return batch

    def step_fn(m: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        y = batch["labels"]
        out = m(**{k: v for k, v in batch.items() if k != "labels"}).float()  # (B, C)
        if task.kind == "regression":
            loss = nn.functional.mse_loss(out[:, 0], y)
            return loss, {}
        loss = nn.functional.cross_entropy(out, y)
        return loss, {"acc": float((out.argmax(-1) == y).float().mean())}

    def eval_fn(m: nn.Module) -> dict:
        outs = predict(model, tokenizer, task.dev, max_length=cfg.max_length,
                       batch_size=cfg.eval_batch_size, bf16=False)
        return _split_outputs(task, task.dev, outs)[0]

    tc = TrainConfig(steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                     warmup_fraction=cfg.warmup_fraction, schedule="electra",
                     optimizer=cfg.optimizer, bias_correction=cfg.bias_correction,
                     weight_decay=cfg.weight_decay, clip_norm=cfg.clip_norm, bf16=cfg.bf16,
                     log_every=cfg.log_every, eval_every=cfg.eval_every,
                     checkpoint_every=cfg.checkpoint_every, seed=cfg.seed)
    groups = build_param_groups(model, cfg)
    state = fit(model, step_fn, batch_fn, tc, run, groups=groups,
                eval_fn=eval_fn if cfg.eval_every > 0 else None, resume=resume,
                desc=f"finetune {task.name}", stop_after=stop_after)

    result: dict[str, Any] = {
        "task": task.name, "kind": task.kind, "labels": list(task.labels),
        "primary": task.primary, "steps": state.step, "total_steps": steps,
        "config": dataclasses.asdict(cfg), "train_loss": state.last_metrics.get("loss"),
        "finished": state.step >= steps,
    }
    if task.scale is not None:
        result["scale"] = dict(task.scale)
    if state.step < steps:  # interrupted (stop_after): resume later
        return result
    splits = ("train", "dev", "test") if cfg.predict_train else ("dev", "test")
    result["n"], result["predictions"] = {}, {}
    if task.kind == "classification":
        result["logits"] = {}
    for split in splits:
        exs = train if split == "train" else task.split(split)
        outs = predict(model, tokenizer, exs, max_length=cfg.max_length,
                       batch_size=cfg.eval_batch_size, bf16=cfg.bf16)
        metrics, preds, logits = _split_outputs(task, exs, outs)
        result[split] = metrics
        result["n"][split] = len(exs)
        result["predictions"][split] = preds
        if logits is not None:
            result["logits"][split] = logits
    if save is not None:
        if run is None or run.main:
            save_sequence_classifier(model, tokenizer, task, save, probe=train[:8], max_length=cfg.max_length)
        result["model"] = str(save)
    if run is not None:
        run.save_results(result)
        run.log({"step": state.step, **{f"dev/{k}": v for k, v in result["dev"].items()},
                 **{f"test/{k}": v for k, v in result["test"].items()}})
    return result


# --------------------------------------------------------------------------- saving as a Hugging Face model

#: the pooler / dense rows that carry the linear head through a tanh are scaled by this power of two:
#: tanh(x) rounds to x in float32 for |x| < 2**-12, so logits up to 2**8 in size pass through exactly
TANH_SCALE = 2.0 ** -20


def _sequence_classification_config(encoder_config: Any, task: Task) -> Any:
    """A copy of the encoder's config with the task's labels (``num_labels``, ``id2label``,
    ``label2id``), ``problem_type`` and ``finetuning_task``; ``discern_task`` keeps the task's kind and
    its regression scale (label = (raw - min) / (max - min))."""
    import copy

    config = copy.deepcopy(encoder_config)
    names = list(task.labels) if task.kind == "classification" else [task.name]
    config.num_labels = len(names)
    config.id2label = {i: n for i, n in enumerate(names)}
    config.label2id = {n: i for i, n in enumerate(names)}
    config.problem_type = "regression" if task.kind == "regression" else "single_label_classification"
    config.finetuning_task = task.name
    config.discern_task = {"name": task.name, "kind": task.kind,
                           **({"scale": dict(task.scale)} if task.scale is not None else {})}
    config.architectures = None  # save_pretrained writes the class it saves
    return config


@torch.no_grad()
def to_sequence_classification(model: EncoderHead, task: Task) -> nn.Module:
    """The fine-tuned ``model`` as the encoder's own ``AutoModelForSequenceClassification`` class (CPU,
    float32, eval mode), giving the same logits.

    The encoder's weights are copied into the new model's base model.  ELECTRA's head is
    ``W h + b`` on the [CLS] vector ``h`` (C outputs); each upstream head is set to compute it:

    - dense + GELU + ``out_proj`` (``ElectraForSequenceClassification``): dense rows ``2k`` and
      ``2k + 1`` are ``w_k`` and ``-w_k``, and ``out_proj`` takes their difference, since
      ``gelu(z) - gelu(-z) = z`` exactly (``gelu(z) = z Phi(z)``, ``Phi(-z) = 1 - Phi(z)``); needs
      2C <= H;
    - tanh pooler + ``classifier`` (``BertForSequenceClassification``) and dense + tanh + ``out_proj``
      (RoBERTa, MPNet): dense row ``k`` is ``s w_k`` with ``s`` = :data:`TANH_SCALE` (2**-20) and the
      output layer multiplies by ``1 / s``; ``tanh(x) = x - x**3 / 3 + ...`` rounds to ``x`` in float32
      at that scale, so the logits pass through unchanged (the scaled rows underflow in float16: load
      such a folder in float32 or bfloat16).

    The encoder's own pooler weights (unused by ELECTRA's head) are replaced; dense rows beyond those
    are 0.  Other head layouts raise :class:`DiscernError`."""
    from transformers import AutoModelForSequenceClassification
    from transformers.activations import GELUActivation

    config = _sequence_classification_config(model.encoder.config, task)
    try:
        hf = AutoModelForSequenceClassification.from_config(config)
    except (ValueError, KeyError) as e:
        raise DiscernError(f"cannot save a {type(model.encoder).__name__} as AutoModelForSequenceClassification "
                           f"({str(e).strip().splitlines()[0][:160]})") from None
    hf = hf.float().eval()
    base = hf.base_model
    state = {k: v.detach().float().cpu() for k, v in model.encoder.state_dict().items()}
    missing, unexpected = base.load_state_dict(state, strict=False)
    if [k for k in missing if not k.startswith("pooler.")] or [k for k in unexpected if not k.startswith("pooler.")]:
        raise DiscernError(f"cannot copy the encoder into {type(hf).__name__}: missing {list(missing)[:3]}, "
                           f"unexpected {list(unexpected)[:3]}")
    W = model.classifier.weight.detach().float().cpu()  # (C, H)
    b = model.classifier.bias.detach().float().cpu()  # (C,)
    C, H = W.shape
    head = getattr(hf, "classifier", None)
    pooler = getattr(base, "pooler", None)
    if isinstance(head, nn.Linear) and isinstance(getattr(pooler, "dense", None), nn.Linear):
        dense, out = pooler.dense, head  # BERT: classifier(dropout(tanh(pooler.dense(h_[CLS]))))
        pairs = False
    elif isinstance(getattr(head, "dense", None), nn.Linear) and isinstance(getattr(head, "out_proj", None), nn.Linear):
        dense, out = head.dense, head.out_proj  # out_proj(act(dense(h_[CLS])))
        pairs = isinstance(getattr(head, "activation", None), (GELUActivation, nn.GELU))
    else:
        raise DiscernError(f"cannot carry ELECTRA's linear head through the head of {type(hf).__name__}")
    if dense.in_features != H or dense.out_features < (2 * C if pairs else C):
        raise DiscernError(f"{type(hf).__name__}: its head's dense layer ({dense.out_features} outputs) is too "
                           f"small for {C} labels")
    dense.weight.zero_()
    dense.bias.zero_()
    out.weight.zero_()
    if pairs:
        dense.weight[0:2 * C:2] = W
        dense.weight[1:2 * C:2] = -W
        out.weight[torch.arange(C), 2 * torch.arange(C)] = 1.0
        out.weight[torch.arange(C), 2 * torch.arange(C) + 1] = -1.0
    else:
        dense.weight[:C] = W * TANH_SCALE
        out.weight[torch.arange(C), torch.arange(C)] = 1.0 / TANH_SCALE
    out.bias.copy_(b)
    return hf


def save_sequence_classifier(model: EncoderHead, tokenizer: Any, task: Task, folder: str | Path, *,
                             probe: Sequence[Example] = (), max_length: int = 128) -> Path:
    """Save the fine-tuned ``model`` and ``tokenizer`` to ``folder`` as an
    ``AutoModelForSequenceClassification`` folder (:func:`to_sequence_classification`, safetensors).

    With ``probe`` examples the converted model's logits are first compared with ``model``'s (float32,
    eval mode); a difference over 1e-4 (relative to the logits' size) raises :class:`DiscernError` and
    nothing is written."""
    hf = to_sequence_classification(model, task)
    if probe:
        device = next(model.parameters()).device
        batch = collate(encode_examples(tokenizer, probe, max_length), _pad_id(tokenizer), torch.device("cpu"))
        was = model.training
        model.eval()
        with torch.no_grad():
            ref = model(**{k: v.to(device) for k, v in batch.items()}).float().cpu()
            if "token_type_ids" not in inspect.signature(hf.forward).parameters:
                batch.pop("token_type_ids", None)
            got = hf(**batch).logits
        model.train(was)
        err = float((got - ref).abs().max())
        if not err <= 1e-4 * max(1.0, float(ref.abs().max())):
            raise DiscernError(f"the {type(hf).__name__} copy of the fine-tuned model differs from it by {err:.3g}; "
                               f"not saved")
    folder = Path(folder)
    hf.save_pretrained(folder)
    tokenizer.save_pretrained(str(folder))
    return folder


def _attention_kwargs(cfg: FinetuneConfig, model_type: str | None = None) -> dict:
    """``attn_implementation`` for ``from_pretrained`` of a ``model_type`` model on the device it
    will train on (:func:`discern.nn.attention_kernel`; nothing under ``auto`` on CUDA: the
    library's choice)."""
    from discern.nn import attention_kernel

    kernel = attention_kernel(cfg.attention, cuda=_resolve_device(cfg.device).type == "cuda", model_type=model_type)
    return {"attn_implementation": kernel} if kernel else {}


def finetune_from_pretrained(path: str | Path, task: Task | str, cfg: FinetuneConfig | None = None,
                             run: Run | None = None, **kwargs: Any) -> dict:
    """Load ``AutoModel`` and ``AutoTokenizer`` from a folder, then :func:`finetune`."""
    from transformers import AutoModel, AutoTokenizer

    p = Path(path)
    if not p.is_dir():
        raise DiscernError(f"model folder {p} does not exist")
    if not (p / "config.json").is_file():
        raise DiscernError(f"model folder {p} has no config.json (expected a save_pretrained folder)")
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a pre-training head (discriminator, MLM) is expected to be unused
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(p))
        model_type = json.loads((p / "config.json").read_text(encoding="utf-8")).get("model_type")
        encoder = AutoModel.from_pretrained(str(p), **_attention_kwargs(cfg or FinetuneConfig(), model_type))
    except (OSError, ValueError, TypeError, AttributeError) as e:  # a config.json that is not a model's
        raise DiscernError(f"model folder {p}: cannot load ({str(e).strip().splitlines()[0][:160]})") from None
    finally:
        hf_logging.set_verbosity(level)
    return finetune(encoder, tokenizer, task, cfg, run, **kwargs)
