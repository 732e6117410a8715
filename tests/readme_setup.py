"""Small artifacts for the README snippets (``tests/test_readme_snippets.py``): each helper writes, in
seconds, the folder a command would write, with the library's own public functions on a small model.
The snippets' ``<!-- setup: ... -->`` comments call them; the snippets themselves use only the library.
"""

from __future__ import annotations

from pathlib import Path


def spam_classifier(folder: str | Path = "RUN/model") -> Path:
    """What ``discern tasks finetune --model minilm --task spam`` saves to ``RUN/model``, at a few seconds'
    scale: the packaged MiniLM-L6 fine-tuned for 10 steps on 96 SpamAssassin e-mails."""
    from discern.data.models import model_path
    from discern.tasks import FinetuneConfig, finetune_from_pretrained, get_task

    task = get_task("spam", max_train=96, max_dev=8, max_test=8)
    cfg = FinetuneConfig(lr=4e-4, max_steps=10, batch_size=16, max_length=48, device="cpu")
    return Path(finetune_from_pretrained(model_path("minilm"), task, cfg, save=folder)["model"])


def bam_student(folder: str | Path = "RUN/model") -> Path:
    """What ``discern bam distill --preset tiny`` (no ``--teachers``) saves to ``RUN/model``: a multi-task
    student (MiniLM-L6, spam and sotu-year heads) trained one epoch on 32 examples per task, on gold labels."""
    from discern.bam.config import PRESETS
    from discern.bam.student import save_student
    from discern.bam.train import distill, load_tasks

    cfg = PRESETS["tiny"]()
    model, tok, _, _ = distill(cfg, load_tasks(cfg), seed=0, teachers=None)
    save_student(model, tok, Path(folder))
    return Path(folder)


def fwl_model(folder: str | Path = "RUN/model") -> Path:
    """A stand-in for what ``discern fwl train --preset tiny`` saves to ``RUN/model``: the tiny preset's
    one-layer GPT-2-style LM (the GPT-2 BPE) with its FWL block, trained 5 steps on one sentence (the
    command trains on WikiText-2 windows), saved with its tokenizer."""
    import torch

    from discern.fwl.config import PRESETS
    from discern.fwl.train import load_model, wrap

    cfg = PRESETS["tiny"]()
    base, tok = load_model(cfg)
    model = wrap(base, cfg)
    ids = torch.tensor([tok("It is a truth universally acknowledged, that a single man in possession of a good "
                            "fortune, must be in want of a wife.")["input_ids"]])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(5):
        opt.zero_grad()
        model.loss(ids).backward()
        opt.step()
    model.eval().save_pretrained(folder)
    tok.save_pretrained(str(folder))
    return Path(folder)


def t2i_pipeline(folder: str | Path = "RUN/pipeline") -> Path:
    """What ``discern diffusion train --preset tiny`` writes to ``RUN/pipeline``: a small 28 x 28 text-to-image
    model trained a few steps on 64 Fashion-MNIST images."""
    from discern.core import Run
    from discern.data.corpora import fashion_mnist
    from discern.diffusion import ModelConfig, build_pipeline
    from discern.diffusion.captions import FASHION_NAMES, to_tensor
    from discern.train.text_to_image import TextToImageTrainConfig, train_text_to_image

    folder = Path(folder)
    images, labels = fashion_mnist("train")
    model = ModelConfig(image_size=28, block_out_channels=(8, 16), cross_attention_dim=16, text_intermediate=32,
                        attention_head_dim=4, max_length=8, text_layers=1)
    run = Run(folder.parent)
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    train_text_to_image(build_pipeline(model), to_tensor(images[:64], 28), labels[:64], FASHION_NAMES,
                        TextToImageTrainConfig(steps=3, batch_size=8, warmup_steps=0), run)
    if folder.name != "pipeline":
        (run.path / "pipeline").rename(folder)
    return folder
