"""``discern diffusion train`` and ``discern diffusion-classifier classify``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from discern.core.config import add_config_args

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


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
    tr.add_argument("--resume", default=None, metavar="RUN_DIR")
    tr.add_argument("--name", default="train")

    cp = sub.add_parser("diffusion-classifier", help="zero-shot classification with a text-to-image diffusion model")
    cs = cp.add_subparsers(dest="dc_command", required=True)
    cl = cs.add_parser("classify", help="classify a folder of images; writes predictions.csv and summary.json")
    cl.add_argument("--model", required=True, help="a pipeline folder (discern diffusion train, or Stable Diffusion)")
    cl.add_argument("--images", required=True,
                    help="a folder of images; images in sub-folders named after a class are scored against it")
    cl.add_argument("--classes", required=True, help="text file, one class name per line")
    cl.add_argument("--template", default="a photo of a {}", help="prompt template, {} = class name")
    cl.add_argument("--policy", choices=["pruned", "full", "li"], default="pruned")
    cl.add_argument("--samples", type=int, default=128, help="(t, noise) pairs per image (full; pruned: maximum)")
    cl.add_argument("--weighting", choices=["uniform", "elbo"], default="uniform")
    cl.add_argument("--loss", choices=["mse", "l1", "huber"], default="mse")
    cl.add_argument("--li-samples", default="16,128", help="Li schedule: samples per stage")
    cl.add_argument("--li-keep", default="3,1", help="Li schedule: classes kept after each stage")
    cl.add_argument("--shard", default="0/1", help="i/n: classify every n-th image starting at i")
    cl.add_argument("--out", required=True, help="output folder")


def read_image_folder(folder: Path, size: int, channels: int, class_names: list[str] | None = None):
    """(images (M, C, size, size) in [-1, 1], labels (index or -1), file names), sorted by path."""
    import numpy as np
    import torch
    from PIL import Image

    from discern.core import DiscernError

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DiscernError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    lookup = {n.lower(): i for i, n in enumerate(class_names or [])}
    arrs, labels = [], []
    for p in files:
        try:
            img = Image.open(p).convert("L" if channels == 1 else "RGB").resize((size, size), Image.BICUBIC)
        except OSError as e:
            raise DiscernError(f"{p}: not a readable image ({e})") from None
        a = np.asarray(img, dtype=np.float32)
        arrs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        parent = p.parent.name.lower() if p.parent != folder else ""
        labels.append(lookup.get(parent, -1))
    x = torch.from_numpy(np.stack(arrs)) / 127.5 - 1.0
    return x, labels, [str(p.relative_to(folder)) for p in files]


def run_diffusion_command(args) -> int:
    import numpy as np

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
            x, y, _ = read_image_folder(folder, cfg.model.image_size, cfg.model.channels, names)
            keep = [i for i, v in enumerate(y) if v >= 0][:cfg.max_images]
            x, y = x[keep], np.asarray(y)[keep]
        pipe = build_pipeline(cfg.model, seed=cfg.seed)
        state = train_text_to_image(pipe, x, y, names, cfg.train, run, resume=resume)
        return {"steps": state.step, "classes": names, "images": len(y), "last": state.last_metrics}

    run, info = run_training_command("diffusion", _presets(), args, fn)
    print(json.dumps({"run": str(run.path), "pipeline": str(run.path / "pipeline"), **info}, indent=2, default=float))
    return 0


def run_classifier_command(args) -> int:
    from discern.core import DiscernError, atomic_write_json
    from discern.diffusion import load_pipeline

    from .run import Policy, classify_images, summary

    classes_file, folder, out = Path(args.classes), Path(args.images), Path(args.out)
    if not classes_file.is_file():
        raise DiscernError(f"--classes {classes_file}: no such file")
    names = [line.strip() for line in classes_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < 2:
        raise DiscernError(f"--classes {classes_file}: needs at least two class names")
    if "{}" not in args.template:
        raise DiscernError(f"--template {args.template!r} has no {{}} for the class name")
    if not folder.is_dir():
        raise DiscernError(f"--images {folder}: no such folder")
    try:
        i, n = (int(v) for v in args.shard.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise DiscernError(f"--shard {args.shard!r}: expected i/n with 0 <= i < n") from None
    pipe = load_pipeline(args.model)
    unet = pipe.unet.config
    vae = getattr(pipe, "vae", None)
    size = unet.sample_size * (2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1)
    channels = vae.config.in_channels if vae is not None else unet.in_channels
    x, labels, files = read_image_folder(folder, size, channels, names)
    policy = Policy(kind=args.policy, samples=args.samples, weighting=args.weighting, loss=args.loss,
                    li_samples=[int(v) for v in args.li_samples.split(",")],
                    li_keep=[int(v) for v in args.li_keep.split(",")])
    labelled = all(v >= 0 for v in labels)
    out.mkdir(parents=True, exist_ok=True)
    recs = classify_images(pipe, x, names, policy, out / f"records-{i}-of-{n}.jsonl",
                           labels=labels if labelled else None, shard=(i, n), template=args.template)
    with open(out / f"predictions-{i}-of-{n}.csv" if n > 1 else out / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "prediction", "label", "evaluations"] + [f"score:{c}" for c in names])
        for r in recs:
            lab = names[labels[r["index"]]] if labels[r["index"]] >= 0 else ""
            w.writerow([files[r["index"]], r["pred_name"], lab, r["evaluations"]] + [f"{s:.6g}" for s in r["scores"]])
    s = {"model": args.model, "policy": args.policy, "classes": names, **summary(recs)}
    atomic_write_json(out / ("summary.json" if n == 1 else f"summary-{i}-of-{n}.json"), s)
    print(json.dumps(s, indent=2, default=float))
    return 0
