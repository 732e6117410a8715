"""``discern diffusion-classifier classify``: parsing and printing; the work is in ``run``."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def add_commands(sub) -> None:
    cp = sub.add_parser("diffusion-classifier", help="zero-shot classification with a text-to-image diffusion model")
    cs = cp.add_subparsers(dest="dc_command", required=True)
    cl = cs.add_parser("classify", help="classify a folder of images; writes predictions.csv and summary.json")
    cl.add_argument("--model", required=True, help="a pipeline folder (discern diffusion train, or Stable Diffusion)")
    cl.add_argument("--images", required=True,
                    help="a folder of images; images in sub-folders named after a class are scored against it")
    cl.add_argument("--classes", required=True, help="text file, one class name per line")
    cl.add_argument("--template", default="a photo of a {}", help="prompt template, {} = class name")
    cl.add_argument("--policy", choices=["pruned", "full", "li"], default="pruned", help="pruned: adaptive elimination of classes (Sec. 3.2); full: every class at every timestep; li: the schedule of Li et al.")
    cl.add_argument("--samples", type=int, default=128, help="(t, noise) pairs per image (full; pruned: maximum)")
    cl.add_argument("--weighting", choices=["uniform", "elbo"], default="uniform", help="weight of each timestep's error (uniform, as the paper recommends, or the ELBO's)")
    cl.add_argument("--loss", choices=["mse", "l1", "huber"], default="mse", help="error between true and predicted noise")
    cl.add_argument("--li-samples", default="16,128", help="Li schedule: samples per stage")
    cl.add_argument("--li-keep", default="3,1", help="Li schedule: classes kept after each stage")
    cl.add_argument("--shard", default="0/1", help="i/n: classify every n-th image starting at i")
    cl.add_argument("--out", required=True, help="output folder")
    from discern.core.device import add_device_args

    add_device_args(cl, "float32 (the pipeline is loaded in this precision; errors are summed in float32)")


def run_command(args) -> int:
    from discern.core import DiscernError, atomic_write_json
    from discern.diffusion import load_pipeline

    from discern.data.images import read_image_folder

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
    from discern.core.device import apply
    from discern.diffusion import place

    device, dtype = apply(args, cpu="float32", cuda="float32")
    pipe = place(load_pipeline(args.model), device, dtype)
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
