"""``discern diffusion train``: train a small text-to-image model (UNet + text encoder) with the
one training loop; writes ``RUN/pipeline`` that ``discern diffusion-classifier classify`` and the
psychophysics toolbox load."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.config import add_config_args


def _presets():
    from discern.diffusion.config import ModelConfig
    from discern.train.text_to_image import TextToImageTrainConfig, TrainCommandConfig

    def tiny():
        return TrainCommandConfig(model=ModelConfig(image_size=28, block_out_channels=(8, 16), cross_attention_dim=16,
                                                    text_intermediate=32, attention_head_dim=4, max_length=8,
                                                    text_layers=1),
                                  train=TextToImageTrainConfig(steps=3, batch_size=8, warmup_steps=0), max_images=64)

    def paper():
        return TrainCommandConfig(model=ModelConfig(image_size=32, block_out_channels=(32, 64, 64)),
                                  train=TextToImageTrainConfig(steps=20000, batch_size=128, lr=1e-3))

    return {"tiny": tiny, "quick": TrainCommandConfig, "paper": paper}


def add_diffusion_commands(sub) -> None:
    dp = sub.add_parser("diffusion", help="small text-to-image diffusion models")
    ds = dp.add_subparsers(dest="diffusion_command", required=True)
    tr = ds.add_parser("train", help="train a text-to-image model (UNet + text encoder); writes RUN/pipeline")
    add_config_args(tr)
    tr.add_argument("--images", default="fashion-mnist",
                    help="'fashion-mnist' or a folder with one sub-folder of images per class (the folder name is "
                         "the class word in the captions)")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    tr.add_argument("--name", default="train", help="run name (the run folder is runs/diffusion/<date>-<name>)")
    from discern.core.device import add_device_args

    add_device_args(tr, "the preset's autocast, train.bf16 (float32 in every preset); bfloat16 / float32 set "
                        "train.bf16, float16 is refused")


def run_diffusion_command(args) -> int:
    from discern.core.device import apply_training

    apply_training(args, ["train.bf16"])  # a bad --device / --dtype fails before anything loads
    import numpy as np

    from discern.core import dist as ddist
    from discern.core.runs import run_training_command
    from discern.diffusion import build_pipeline
    from discern.diffusion.captions import FASHION_NAMES, to_tensor
    from discern.train.text_to_image import train_text_to_image

    def fn(cfg, run, resume):
        if args.images == "fashion-mnist":
            from discern.data.corpora import fashion_mnist

            imgs, labels = fashion_mnist("train")
            x, y, names = to_tensor(imgs[:cfg.max_images], cfg.model.image_size), np.asarray(labels[:cfg.max_images]), \
                list(FASHION_NAMES)
        else:
            folder = Path(args.images)
            names = sorted(p.name for p in folder.iterdir() if p.is_dir())
            from discern.data.images import read_image_folder

            x, y, _ = read_image_folder(folder, cfg.model.image_size, cfg.model.channels, names)
            keep = [i for i, v in enumerate(y) if v >= 0][:cfg.max_images]
            x, y = x[keep], np.asarray(y)[keep]
        pipe = build_pipeline(cfg.model, seed=cfg.seed).to(ddist.device())  # CUDA when available; --device chooses
        state = train_text_to_image(pipe, x, y, names, cfg.train, run, resume=resume)
        return {"steps": state.step, "classes": names, "images": len(y), "last": state.last_metrics}

    run, info = run_training_command("diffusion", _presets(), args, fn)
    print(json.dumps({"run": str(run.path), "pipeline": str(run.path / "pipeline"), **info}, indent=2, default=float))
    return 0
