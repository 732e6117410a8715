"""ELECTRA configuration and presets (paper Tables 6/7 for ``paper``; laptop scale for the rest)."""

from __future__ import annotations

from dataclasses import dataclass, field

from discern.core.config import check_choices, check_ranges
from discern.core.errors import ConfigError
from discern.train import TrainConfig
from discern.train.loop import check_pretraining


@dataclass
class ModelConfig:
    objective: str = "electra"  # electra (replaced token detection) or mlm (BERT-style baseline)
    layers: int = 12
    hidden: int = 256
    embedding: int = 128  # factorised embedding size (Small: 128; a projection maps it to hidden)
    heads: int = 4
    ffn: int = 1024
    max_len: int = 128  # position embeddings
    # std of the normal initialisation of every weight matrix and embedding; BERT's 0.02 suits
    # width 768 (0.02 * sqrt(768) = 0.55 gain per layer); at width 64-128 it keeps attention uniform
    # and a discriminator never learns where to look.  0 = 1/sqrt(width) of each model
    init_std: float = 0.02
    # attention kernel of the Hugging Face encoders: "auto" = "fused" on the CPU (the eager formula
    # with the scale and a key-padding row inside the score product, discern.nn.attention: 1.09x
    # per quick step on padded batches over "eager", whose backward is in turn 1.35x faster than
    # the CPU flash kernel behind "sdpa"; README benchmark), the library's default (SDPA) on CUDA;
    # or name one of auto, eager, sdpa, fused
    attention: str = "auto"
    # under bf16 autocast, a bf16 residual stream (embedding output, residual adds, LayerNorm
    # outputs; weights stay fp32): saves the fp32 <-> bf16 copies of every activation entering a
    # linear layer (discern.nn.bf16_stream); False keeps the stream in fp32
    bf16_stream: bool = True
    dropout: float = 0.1
    attention_dropout: float = 0.1
    generator_size: float = 0.25  # generator hidden/FFN/heads as a fraction of the discriminator (Small 1/4)
    generator_layers: float = 1.0  # fraction of layers kept in the generator (official default: all)
    tie_embeddings: bool = True  # share token/position/segment embeddings and their LayerNorm
    mask_prob: float = 0.15  # fraction of real tokens to predict
    mask_frac: float = 0.85  # chosen positions replaced by [MASK] (ELECTRA 0.85; BERT 0.8)
    random_frac: float = 0.0  # chosen positions replaced by a random token (ELECTRA 0; BERT 0.1)
    sample_with_replacement: bool = True  # official: positions drawn with replacement
    disc_weight: float = 50.0  # lambda in L = L_MLM + lambda * L_Disc
    gen_weight: float = 1.0
    temperature: float = 1.0  # Gumbel sampling temperature


@dataclass
class DataConfig:
    corpora: list[str] = field(default_factory=lambda: ["brown", "sotu", "moby-dick"])
    tokenizer: str = "train"  # "train" a WordPiece vocab on the corpora, or a folder with a HF tokenizer
    vocab_size: int = 8192  # when training the tokenizer
    seq_len: int = 128
    max_documents: int = 0  # 0 = all documents of the corpora (tiny uses a few)
    # examples held out for evaluation (the plateaus and their intervals); 0 = min(256, max(8, N // 50))
    eval_examples: int = 0


@dataclass
class FinetuneSection:
    tasks: list[str] = field(default_factory=lambda: ["brown-genre", "spam", "sotu-party", "same-doc",
                                                      "sotu-year"])
    seeds: int = 3  # fine-tuning seeds per task (median reported; the paper uses 10)
    lr: float = 3e-4  # ELECTRA-Small fine-tuning LR
    layerwise_lr_decay: float = 0.8
    epochs: float = 3.0  # classification tasks
    regression_epochs: float = 10.0  # regression tasks (ELECTRA's STS recipe)
    batch_size: int = 32
    max_length: int = 128
    max_train: int = 2000  # examples per task (laptop budget)
    max_eval: int = 500  # dev and test examples per task
    bias_correction: bool = False  # Adam bias correction when fine-tuning (official: off)
    bf16: bool = False


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=1_000_000, batch_size=128, lr=5e-4, warmup_steps=10_000, weight_decay=0.01,
        schedule="electra", optimizer="electra_adam", bias_correction=False, clip_norm=1.0,
        log_every=100, checkpoint_every=10_000))
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    match_flops: bool = True  # reproduce: MLM baseline gets the same pre-training FLOPs as ELECTRA
    pretrain_seeds: int = 3  # reproduce: pre-training seeds per objective (seed, seed + 1, ...)
    bootstrap: int = 10_000  # reproduce: resamples of the paired bootstrap over tasks x seeds
    seed: int = 0  # the one seed of a run: data order, initialisation, masking, sampling, dropout

    def __post_init__(self) -> None:
        """A value no run can use is a one-line ConfigError before any work: from a preset,
        ``--config``, ``--set`` or a resumed run's ``config.json`` (``pretrain_seeds`` is checked
        by the reproduction, which alone uses it)."""
        m = self.model
        check_pretraining(self)
        check_choices(self, {"model.objective": ("electra", "mlm")})
        check_ranges(self, {
            "model.generator_size": "(0, inf)", "model.generator_layers": "(0, 1]", "model.mask_prob": "(0, 1]",
            "model.mask_frac": "[0, 1]", "model.random_frac": "[0, 1]",
            "finetune.seeds": "[1, inf)", "finetune.lr": "(0, inf)", "finetune.layerwise_lr_decay": "(0, 1]",
            "finetune.epochs": "(0, inf)", "finetune.regression_epochs": "(0, inf)", "finetune.batch_size": "[1, inf)",
            "finetune.max_length": f"[8, {m.max_len}]", "finetune.max_train": "[1, inf)",
            "finetune.max_eval": "[1, inf)", "bootstrap": "[1, inf)"})
        if m.mask_frac + m.random_frac > 1:
            raise ConfigError(f"config keys 'model.mask_frac' + 'model.random_frac' must be at most 1, got "
                              f"{m.mask_frac} + {m.random_frac}")


def paper() -> Config:
    """ELECTRA-Small exactly as in the paper (Table 6): 14M parameters, 1M steps, batch 128."""
    cfg = Config()
    cfg.data.tokenizer = "train"
    cfg.data.vocab_size = 30522
    return cfg


def quick() -> Config:
    """Laptop scale: a 2-layer, width-128 ELECTRA pre-trained for about 9 minutes on 2 CPU cores
    (bf16), from 3 pre-training seeds per objective; the settings come from the sweep in the README.

    What decides this preset is how fast the discriminator leaves its plateau (the detector that
    sees only the token), and that is a matter of tokens seen: at this scale it learns context at
    the same rate per example with 2 or 4 layers, width 128 or 512, batch 8 or 32, so the
    cheapest model per token wins (README sweep)."""
    cfg = Config()
    m = cfg.model
    m.layers, m.hidden, m.embedding, m.heads, m.ffn = 2, 128, 128, 2, 512
    # generator: hidden 64 (1/2; 32 learned the unigram-to-context step more slowly) and one layer
    # (the official code's generator_layers): per second it learns as fast as two and costs half
    m.generator_size, m.generator_layers = 0.5, 0.5
    # init std 1/sqrt(width) instead of BERT-base's 0.02 (see ModelConfig.init_std); no dropout in
    # a single-epoch run of minutes (as in "cramming" recipes)
    m.init_std, m.dropout, m.attention_dropout = 0.0, 0.0, 0.0
    # 2,048 WordPiece entries: a step of the 4 x 128 model costs 0.15 s instead of 0.25 s at 8,192
    # (the generator's softmax, sampling and the embedding update)
    cfg.data.vocab_size = 2048
    cfg.data.seq_len = 128
    # Adam *with* bias correction: with a warm-up of tens of steps instead of the paper's 10k,
    # the official uncorrected Adam takes first steps (1-b1)/sqrt(1-b2) = 3.2x larger.
    # LR 1e-3: 2e-3 and 5e-3 kept the MLM at the unigram plateau for 600 steps (README sweep)
    cfg.train = TrainConfig(steps=6000, batch_size=32, lr=1e-3, warmup_steps=100, weight_decay=0.01,
                            schedule="electra", optimizer="electra_adam", bias_correction=True,
                            clip_norm=1.0, bf16=True, log_every=50, eval_every=1000, checkpoint_every=1000)
    f = cfg.finetune
    # minutes of pre-training leave weak encoders: fine-tune with a higher LR (1e-3, not 3e-4)
    f.tasks = ["brown-genre", "spam", "sotu-party", "sotu-year"]
    f.seeds, f.epochs, f.regression_epochs, f.max_length, f.bf16 = 1, 3.0, 3.0, 128, True
    # all 2,000 training examples of each task: on 512 (48 steps) a spam F1 moved by up to 20
    # points between fine-tuning seeds of one encoder; on 2,000 (188 steps, seconds each) by 0.4
    f.lr, f.bias_correction, f.max_train, f.max_eval = 1e-3, True, 2000, 300
    cfg.pretrain_seeds, cfg.bootstrap = 3, 10_000
    return cfg


def tiny() -> Config:
    """Seconds, for tests: 2 layers of width 32, a few hundred documents."""
    cfg = Config()
    m = cfg.model
    m.layers, m.hidden, m.embedding, m.heads, m.ffn, m.max_len = 2, 32, 32, 2, 64, 64
    m.generator_size = 0.5
    cfg.data.corpora = ["brown"]
    cfg.data.vocab_size = 1000
    cfg.data.seq_len = 64
    cfg.data.max_documents = 40
    cfg.train = TrainConfig(steps=8, batch_size=8, lr=1e-3, warmup_steps=2, log_every=2,
                            checkpoint_every=4)
    f = cfg.finetune
    f.tasks, f.seeds, f.epochs, f.max_train, f.max_length = ["spam", "sotu-year"], 1, 1.0, 64, 64
    f.max_eval = 100
    f.regression_epochs = 1.0
    cfg.pretrain_seeds, cfg.bootstrap = 2, 2000
    return cfg


def gpu() -> Config:
    """ELECTRA-Small's shape (12 x 256, embedding 128, generator 1/4, length 128, batch 128) on
    the quick corpus, sized for about 8 minutes per pre-training on one H100 in bf16 (estimated
    from FLOPs: 8.6 GFLOP per example, 6,000 steps); the quick preset's learning settings."""
    cfg = quick()
    m = cfg.model
    m.layers, m.hidden, m.embedding, m.heads, m.ffn, m.generator_size = 12, 256, 128, 4, 1024, 0.25
    m.generator_layers = 1.0
    cfg.data.vocab_size = 8192
    cfg.train = TrainConfig(steps=6000, batch_size=128, lr=5e-4, warmup_steps=300, weight_decay=0.01,
                            schedule="electra", optimizer="electra_adam", bias_correction=True,
                            clip_norm=1.0, bf16=True, log_every=50, eval_every=1000, checkpoint_every=2000)
    f = cfg.finetune
    f.max_train, f.max_eval, f.seeds = 2000, 500, 3
    return cfg


PRESETS = {"tiny": tiny, "quick": quick, "gpu": gpu, "paper": paper, "small": paper}
