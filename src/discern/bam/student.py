"""The multi-task student (paper section 3; the official ``bam/run_classifier.py`` and
``bam/task_specific/classification/classification_tasks.py``).

One shared encoder and one dense head per task.  As in BERT, whose fine-tuning BAM follows, each
head reads the *pooled* output: ``tanh(W h_[CLS] + b)``, the encoder's own pooler where it has
BERT's (dense + tanh over the first token, e.g. ``BertModel``), else a fresh one of the same shape
(e.g. an ELECTRA discriminator, which has none); the official code's ``get_pooled_output()``
followed by dropout 0.1 and a dense layer.  Training examples of all tasks are pooled, repeated
by their dataset multiples and shuffled into mixed batches; every example runs every head and
only its own task's loss counts, scaled by its task's loss weight.  Targets mix gold labels and
teacher outputs with the teacher-annealing weight lambda of the current step (``targets.py``);
without teachers the student is plain multi-task learning on gold labels.  Optimisation: Adam
without bias correction, layer-wise LR decay (official ``bam/bert/optimization.py``: heads at
depth n_layers + 2, the pooler at n_layers + 1, embeddings at 0), warm-up then linear decay,
clipping 1.0 (the shared ``discern.train`` loop, so runs resume and scale out under
``torchrun``).

The student is a ``transformers`` model, :class:`MultiTaskStudent` (``MultiTaskModel`` is the same
class): ``save_pretrained`` writes one folder (``config.json`` with the encoder's config and the heads'
spec, ``model.safetensors``), which ``MultiTaskStudent.from_pretrained`` loads, and
``AutoModel.from_pretrained`` too once ``discern.bam`` is imported (``AutoConfig`` / ``AutoModel``
registration of the ``discern_bam_student`` model type).  :func:`load_student` also reads students saved
before, as ``encoder/`` + ``heads.pt`` + ``heads.json``.

Dimension legend: B batch, T tokens, H hidden size, C_t classes of task t.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec

from discern.core import CheckpointError, DiscernError, Run, generator
from discern.tasks import Task, collate, encode_examples, encoder_layers
from discern.train import TrainConfig, epoch_batch, fit, layerwise_lr_scales, param_groups

from .targets import classification_targets, distill_loss, regression_targets, teacher_lambda
from .teachers import TeacherOutputs, align_teacher
from .weighting import loss_weights, task_multiples


@dataclass
class StudentConfig:
    lr: float = 1e-4
    layerwise_lr_decay: float = 0.9
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    batch_size: int = 128
    epochs: float = 6.0
    max_steps: int = 0  # > 0 overrides the epochs
    max_length: int = 128
    dropout: float = 0.1
    head_input: str = "pooled"  # "pooled": BERT's pooled output (the paper); "cls": the raw [CLS] vector
    task_weight_exponent: float = 0.75
    dataset_multiples: bool = True
    teacher_annealing: bool = True  # lambda 0 -> 1 over training; else fixed at distill_weight
    distill_weight: float = 0.5
    optimizer: str = "electra_adam"
    bias_correction: bool = False
    clip_norm: float = 1.0
    bf16: bool = False
    seed: int = 0
    log_every: int = 10
    eval_batch_size: int = 64


HEAD_INPUTS = ("pooled", "cls")


class Pooler(nn.Module):
    """BERT's pooler: ``tanh(dense(h_[CLS]))``, for encoders that have none of their own."""

    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))  # (B, T, H) -> (B, H)


def bert_pooler(encoder: nn.Module) -> nn.Module | None:
    """The encoder's own pooler if it is BERT's (a dense layer and tanh over the first token)."""
    p = getattr(encoder, "pooler", None)
    if isinstance(p, nn.Module) and isinstance(getattr(p, "dense", None), nn.Linear) \
            and isinstance(getattr(p, "activation", None), nn.Tanh):
        return p
    return None


class MultiTaskStudentConfig(PretrainedConfig):
    """The student's config: the encoder's config (``encoder_config``, any ``AutoConfig`` model type)
    and the heads' spec: ``heads`` (task -> outputs), ``head_input`` (``"pooled"`` or
    ``"cls"``), ``pooler`` (``"encoder"``: the encoder's own BERT pooler; ``"own"``: the student's
    ``pooler`` module; ``"none"``: heads on the raw [CLS] vector) and ``classifier_dropout``."""

    model_type = "discern_bam_student"
    sub_configs_defaults = {"encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder_config: dict | PretrainedConfig | None = None
    heads: dict | None = None
    head_input: str = "pooled"
    pooler: str = "encoder"
    classifier_dropout: float = 0.1

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.heads = {str(t): int(n) for t, n in (self.heads or {}).items()}
        if self.head_input not in HEAD_INPUTS:
            raise DiscernError(f"head_input {self.head_input!r}: expected one of {HEAD_INPUTS}")
        if self.pooler not in ("encoder", "own", "none"):
            raise DiscernError(f"pooler {self.pooler!r}: expected 'encoder', 'own' or 'none'")


class MultiTaskStudent(PreTrainedModel):
    """Shared encoder + ``heads[t] = linear(dropout(pooled))`` for every task t.

    ``pooled`` is BERT's pooled output, ``tanh(W h_[CLS] + b)``: the encoder's own pooler when it
    has BERT's (so a saved encoder gives the same ``pooler_output`` to any user), else
    ``self.pooler``, a fresh one.  ``head_input="cls"`` reads the raw [CLS] vector instead
    (ELECTRA's fine-tuning head, and the layout of students saved before the pooled head).

    Two constructors: ``MultiTaskStudent(config)`` (a :class:`MultiTaskStudentConfig`; what
    ``from_pretrained`` calls: the encoder is ``AutoModel.from_config(config.encoder_config)``), and
    ``MultiTaskStudent(encoder, num_outputs, dropout, seed, head_input)`` around an existing encoder,
    whose weights (and attention kernel) are kept.  Either way the pooler and heads of a new student
    are drawn with BERT's initialiser (truncated normal) from generators seeded by ``seed`` (default 0);
    ``from_pretrained`` then loads them.  ``forward`` returns a dict
    ``{task: (B, C_t) outputs}``."""

    config_class = MultiTaskStudentConfig
    base_model_prefix = "student"
    main_input_name = "input_ids"
    # attention is the encoder's: these let its own config choose the kernel
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # an encoder saved without a pooler that AutoModel builds with one: its pooler is unused
    _keys_to_ignore_on_load_missing = [r"^encoder\.pooler\."]

    def __init__(self, config: MultiTaskStudentConfig | nn.Module, num_outputs: dict[str, int] | None = None,
                 dropout: float = 0.1, seed: int = 0, head_input: str = "pooled"):
        encoder = None
        if not isinstance(config, PretrainedConfig):  # MultiTaskStudent(encoder, num_outputs, ...)
            encoder = config
            if head_input not in HEAD_INPUTS:
                raise DiscernError(f"head_input {head_input!r}: expected one of {HEAD_INPUTS}")
            pooler = "none" if head_input == "cls" else "encoder" if bert_pooler(encoder) is not None else "own"
            # the encoder's config is shared, not copied; {} leaves its attention / experts kernels as they are
            # (a config's kernel setter also sets its sub-configs')
            config = MultiTaskStudentConfig(encoder_config=encoder.config, heads=dict(num_outputs or {}),
                                            head_input=head_input, pooler=pooler, classifier_dropout=dropout,
                                            attn_implementation={}, experts_implementation={})
        super().__init__(config)
        if encoder is None:
            encoder = AutoModel.from_config(config.encoder_config)
        self.encoder = encoder
        self.head_input = config.head_input
        hidden = int(config.encoder_config.hidden_size)
        self.uses_encoder_pooler = config.pooler == "encoder"
        if self.uses_encoder_pooler and bert_pooler(encoder) is None:
            raise DiscernError(f"{type(encoder).__name__} has no BERT pooler (dense + tanh) for pooler='encoder'")
        self.pooler = Pooler(hidden) if config.pooler == "own" else None
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, n) for t, n in config.heads.items()})
        own = list(self.heads.values()) + ([self.pooler.dense] if self.pooler is not None else [])
        if not any(p.is_meta for layer in own for p in layer.parameters()):  # from_pretrained builds on meta
            std = float(getattr(config.encoder_config, "initializer_range", 0.02))
            with torch.no_grad():  # BERT's initialiser, from explicit generators
                layers = [(("head", t), h) for t, h in self.heads.items()]
                if self.pooler is not None:
                    layers.append((("pooler",), self.pooler.dense))
                for key, layer in layers:
                    w = torch.empty_like(layer.weight)
                    nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std, generator=generator(seed, *key))
                    layer.weight.copy_(w)
                    layer.bias.zero_()
            for m in self.modules():  # initialised (the encoder by its own loader or constructor)
                m._is_hf_initialized = True
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """For weights a checkpoint lacks: BERT's normal(0, initializer_range) for the heads and pooler."""
        from transformers import initialization as init

        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=float(getattr(self.config.encoder_config, "initializer_range",
                                                                    0.02)))
            init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``; a folder in the layout saved before (``heads.json``,
        ``heads.pt``, ``encoder/``) loads as :func:`load_student` reads it."""
        folder = Path(str(pretrained_model_name_or_path))
        if (folder / "heads.json").is_file() and not (folder / "config.json").is_file():
            return _load_old_student(folder)[0]
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def pooled(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """What every head reads: (B, H)."""
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(**kwargs)
        if self.head_input == "cls":
            return out.last_hidden_state[:, 0]
        if self.uses_encoder_pooler:
            return out.pooler_output
        return self.pooler(out.last_hidden_state)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        h = self.dropout(self.pooled(input_ids, attention_mask, token_type_ids))  # (B, H)
        return {t: head(h) for t, head in self.heads.items()}  # each (B, C_t)

    def unused_parameters(self) -> list[str]:
        """Names of encoder parameters no head reads (an encoder pooler the heads bypass)."""
        if self.uses_encoder_pooler or getattr(self.encoder, "pooler", None) is None:
            return []
        return [f"encoder.pooler.{n}" for n, _ in self.encoder.pooler.named_parameters()]


MultiTaskModel = MultiTaskStudent  # the name used before the student became a transformers model

STUDENT_FORMAT = 2  # the old layout's heads.json: {"format": 2, "head_input": ..., "heads": {task: outputs}}


def register_auto_classes() -> None:
    """``AutoConfig`` / ``AutoModel`` learn the ``discern_bam_student`` model type (idempotent)."""
    AutoConfig.register(MultiTaskStudentConfig.model_type, MultiTaskStudentConfig, exist_ok=True)
    AutoModel.register(MultiTaskStudentConfig, MultiTaskStudent, exist_ok=True)


def save_student(model: MultiTaskStudent, tokenizer, folder: Path) -> None:
    """``model.save_pretrained(folder)`` (``config.json``: the encoder's config and the heads' spec;
    ``model.safetensors``: encoder, pooler and heads) and the tokenizer, in one folder that
    ``MultiTaskStudent.from_pretrained`` / ``AutoModel.from_pretrained`` (after ``import discern.bam``)
    load."""
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(str(folder))


def is_student_folder(folder: Path) -> bool:
    """A saved student: ``config.json`` of model type ``discern_bam_student``, or the old ``heads.json``."""
    from discern.core.files import is_saved_model

    return is_saved_model(folder, MultiTaskStudentConfig.model_type, legacy_file="heads.json")


def load_student(folder: Path):
    """A saved student and its tokenizer (a distill run folder or its ``model/`` folder).

    Reads the ``save_pretrained`` folder, and the layout saved before (``encoder/``, ``heads.pt``,
    ``heads.json``); students of the first format (``heads.json`` = ``{task: outputs}``) read the raw
    [CLS] vector and load as such, so they predict exactly as they did."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    folder = folder / "model" if is_student_folder(folder / "model") else folder
    if not is_student_folder(folder):
        raise CheckpointError(f"{folder}: not a BAM student (no config.json of a student, no heads.json); "
                              f"run: discern bam distill")
    if (folder / "heads.json").is_file() and not (folder / "config.json").is_file():
        return _load_old_student(folder)
    return MultiTaskStudent.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder))


def _load_old_student(folder: Path):
    """(student, tokenizer) from the layout saved before: ``encoder/`` (a Hugging Face folder),
    ``heads.pt`` (heads and any pooler of the student's own) and ``heads.json``."""
    from transformers import AutoTokenizer

    meta = json.loads((folder / "heads.json").read_text())
    if isinstance(meta.get("heads"), dict):
        heads, head_input = meta["heads"], meta.get("head_input", "pooled")
    else:  # the first format: {task: outputs}, heads on the raw [CLS] vector
        heads, head_input = meta, "cls"
    model = MultiTaskStudent(AutoModel.from_pretrained(str(folder / "encoder")), heads, head_input=head_input)
    state = torch.load(folder / "heads.pt", weights_only=True)
    _, unexpected = model.load_state_dict(state, strict=False)
    own = {k for k in model.state_dict() if k.startswith(("heads.", "pooler."))}
    missing = sorted(own - set(state))
    if missing or unexpected:
        raise CheckpointError(f"{folder / 'heads.pt'}: does not match heads.json (missing {missing[:3]}, "
                              f"unexpected {list(unexpected)[:3]})")
    return model, AutoTokenizer.from_pretrained(str(folder / "encoder"))


@torch.no_grad()
def predict_task(model: MultiTaskModel, tokenizer, task: Task, examples: Sequence, max_length: int = 128,
                 batch_size: int = 64) -> np.ndarray:
    """Raw outputs (N, C_t) of ``task``'s head for ``examples``."""
    was = model.training
    model.eval()
    enc = encode_examples(tokenizer, examples, max_length)
    dev = next(model.parameters()).device
    out = np.zeros((len(enc), task.num_outputs), dtype=np.float32)
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]["input_ids"]))
    pad = tokenizer.pad_token_id or 0
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = collate([enc[i] for i in idx], pad, dev)
        out[idx] = model(**batch)[task.name].float().cpu().numpy()
    model.train(was)
    return out


def evaluate(model: MultiTaskModel, tokenizer, tasks: Sequence[Task], split: str = "dev",
             max_length: int = 128) -> dict[str, dict]:
    """Each task's metrics on ``split`` from its own head."""
    res = {}
    for task in tasks:
        exs = task.split(split)
        outs = predict_task(model, tokenizer, task, exs, max_length)
        if task.kind == "classification":
            preds = {ex.id: int(np.argmax(o)) for ex, o in zip(exs, outs)}
        else:
            preds = {ex.id: float(o[0]) for ex, o in zip(exs, outs)}
        res[task.name] = task.evaluate(preds, exs)
    return res


def student_lr_scales(names: Sequence[str], n_layers: int, decay: float) -> dict[str, float]:
    """Layer-wise LR multipliers ``decay ** (n_layers + 2 - depth)`` of the official
    ``bam/bert/optimization.py``: task heads at depth n_layers + 2, the pooler (the encoder's or
    ours) at n_layers + 1, transformer layer i at i + 1, embeddings at 0."""
    scales = layerwise_lr_scales(names, n_layers, decay, bug_compat=True)
    for n in names:
        if n.startswith("pooler.") or ".pooler." in n:
            scales[n] = decay ** 1
    return scales


def train_student(encoder: nn.Module, tokenizer, tasks: Sequence[Task], cfg: StudentConfig | None = None,
                  teachers: dict[str, TeacherOutputs] | None = None, run: Run | None = None,
                  resume: bool = False, stop_after: int | None = None) -> tuple[MultiTaskModel, dict]:
    """Train the multi-task student; with ``teachers`` (one per task) it is BAM's distillation."""
    cfg = cfg or StudentConfig()
    tasks = list(tasks)
    names = [t.name for t in tasks]
    if teachers is not None:
        missing = [t for t in names if t not in teachers]
        if missing:
            raise DiscernError(f"no teacher outputs for task {missing[0]!r}")
    from discern.core import dist as ddist

    dev = ddist.device()  # CUDA when available; a command's --device chooses
    model = MultiTaskModel(encoder, {t.name: t.num_outputs for t in tasks}, cfg.dropout, cfg.seed,
                           cfg.head_input).to(dev)
    unused = set(model.unused_parameters())
    for n, p in model.named_parameters():
        if n in unused:  # a pooler the heads bypass gets no gradient (and would stall DDP)
            p.requires_grad_(False)

    encoded, labels, teach = {}, {}, {}
    for t in tasks:
        encoded[t.name] = encode_examples(tokenizer, t.train, cfg.max_length)
        labels[t.name] = [ex.label for ex in t.train]
        if teachers is not None:  # aligned by example id; a mismatch is a clear error
            teach[t.name] = align_teacher(teachers[t.name], t.name, [ex.id for ex in t.train])
    sizes = {t: len(encoded[t]) for t in names}
    mult = task_multiples(sizes, cfg.task_weight_exponent) if cfg.dataset_multiples else {t: 1 for t in names}
    weights = loss_weights(sizes, cfg.task_weight_exponent, cfg.dataset_multiples)
    pool = [(ti, i) for ti, t in enumerate(names) for _ in range(mult[t]) for i in range(sizes[t])]
    steps = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.epochs * len(pool) / cfg.batch_size))
    kinds = {t.name: t.kind for t in tasks}
    n_out = {t.name: t.num_outputs for t in tasks}
    pad = tokenizer.pad_token_id or 0
    order = (cfg.seed, "bam-order")

    def lam_at(step: int) -> float:
        if teachers is None:
            return 1.0
        return teacher_lambda(step, steps, cfg.teacher_annealing, cfg.distill_weight)

    def batch_fn(step: int, micro: int, rank: int, world: int) -> dict:
        idx = epoch_batch(len(pool), cfg.batch_size, step, micro, tc.accumulation, rank, world, order).tolist()
        rows = [pool[i] for i in idx]
        batch = collate([encoded[names[ti]][i] for ti, i in rows], pad, dev)
        task_ids = torch.tensor([ti for ti, _ in rows])
        lam = lam_at(step)
        targets = {}
        for ti, t in enumerate(names):
            mine = [r for r, (tj, _) in enumerate(rows) if tj == ti]
            ex = [rows[r][1] for r in mine]
            if kinds[t] == "regression":
                full = torch.zeros(len(rows))
                if mine:
                    y = torch.tensor([labels[t][i] for i in ex], dtype=torch.float32)
                    tp = torch.from_numpy(teach[t][ex]) if t in teach else None
                    full[mine] = regression_targets(y, tp, lam)
            else:
                full = torch.zeros(len(rows), n_out[t])
                if mine:
                    y = torch.tensor([labels[t][i] for i in ex])
                    tl = torch.from_numpy(teach[t][ex]) if t in teach else None
                    full[mine] = classification_targets(y, tl, lam, n_out[t])
            targets[t] = full.to(dev)
        batch["task_ids"] = task_ids.to(dev)
        batch["weights"] = torch.tensor([weights[names[ti]] for ti, _ in rows], device=dev)
        batch["targets"] = targets
        batch["lam"] = lam
        return batch

    def step_fn(m: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        outs = m(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        loss, met = distill_loss(outs, batch["task_ids"], names, kinds, batch["targets"], batch["weights"])
        return loss, {"lambda": batch["lam"], **{k: v for k, v in met.items() if k.startswith("loss/")}}

    tc = TrainConfig(steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_fraction=cfg.warmup_fraction,
                     schedule="electra", optimizer=cfg.optimizer, bias_correction=cfg.bias_correction,
                     weight_decay=cfg.weight_decay, clip_norm=cfg.clip_norm, bf16=cfg.bf16,
                     log_every=cfg.log_every, seed=cfg.seed)
    pnames = [n for n, p in model.named_parameters() if p.requires_grad]
    scales = None
    if cfg.layerwise_lr_decay < 1.0:
        scales = student_lr_scales(pnames, encoder_layers(model.encoder), cfg.layerwise_lr_decay)
    groups = param_groups(model, cfg.weight_decay, scales)
    state = fit(model, step_fn, batch_fn, tc, run, groups=groups, resume=resume, desc="bam student",
                stop_after=stop_after)
    info = {"steps": state.step, "total_steps": steps, "finished": state.step >= steps, "sizes": sizes,
            "multiples": mult, "loss_weights": weights, "config": dataclasses.asdict(cfg),
            "distilled": teachers is not None, "train_seconds": state.elapsed}
    return model, info


register_auto_classes()
