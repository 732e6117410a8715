"""``discern draft train`` and ``discern draft sample``: argument parsing and printing only."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.config import add_config_args
from discern.core.device import add_device_args
from discern.core.errors import DiscernError


def add_commands(sub) -> None:
    dp = sub.add_parser("draft", help="DRaFT: reward fine-tuning of diffusion models through the sampler")
    ds = dp.add_subparsers(dest="draft_command", required=True)
    tr = ds.add_parser("train", help="fine-tune a pipeline's LoRA weights on a differentiable reward")
    add_config_args(tr)
    tr.add_argument("--model", required=True, help="a pipeline folder (discern diffusion train, or Stable Diffusion)")
    tr.add_argument("--reward", default=None,
                    help="contrast | brightness | compressibility | classifier:<Fashion-MNIST class> | aesthetic | "
                         "preference (default: the preset's)")
    tr.add_argument("--method", choices=["lv", "k", "full", "refl", "ddpo"], default=None, help="DRaFT-LV, DRaFT-K, full DRaFT, ReFL or the DDPO baseline (default: the preset's)")
    tr.add_argument("--k", type=int, default=None, help="DRaFT-K: steps with gradient")
    tr.add_argument("--prompts", default=None, help="text file, one prompt per line")
    tr.add_argument("--aesthetic-weights", default=None, help="the LAION aesthetic MLP .pth (reward aesthetic)")
    tr.add_argument("--clip", default=None, help="a CLIP folder (rewards aesthetic, preference)")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    tr.add_argument("--name", default="train", help="run name (the run folder is runs/draft/<date>-<name>)")
    add_device_args(tr, "the preset's autocast, draft.bf16 (float32 in every preset); bfloat16 / float32 set "
                        "draft.bf16, float16 is refused")
    sp = ds.add_parser("sample", help="sample with LoRA adapters scaled (and mixed): W + sum a_i dW_i")
    sp.add_argument("--model", required=True, help="a text-to-image pipeline folder (discern diffusion train writes RUN/pipeline)")
    sp.add_argument("--lora", action="append", default=[], help="a LoRA folder (repeat to mix adapters)")
    sp.add_argument("--alpha", action="append", type=float, default=[], help="scale of each --lora (default 1)")
    sp.add_argument("--prompt", action="append", default=[], help="prompt (repeatable)")
    sp.add_argument("--steps", type=int, default=50, help="sampler steps")
    sp.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = none)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the initial noise")
    sp.add_argument("--out", required=True, help="output PNG (a grid: one row per prompt)")
    add_device_args(sp, "float32 (the pipeline is loaded in this precision)")


def run_command(args) -> int:
    from discern.core.runs import run_training_command

    from .config import TRAIN_PRESETS

    if args.draft_command == "train":
        from discern.core.device import apply_training

        apply_training(args, ["draft.bf16"])

        def adjust(cfg):
            if args.reward:
                cfg.reward = args.reward
            if args.method:
                cfg.draft.method = args.method
            if args.k is not None:
                cfg.draft.K = args.k
            if args.prompts:
                cfg.prompts = [ln.strip() for ln in Path(args.prompts).read_text().splitlines() if ln.strip()]
            return cfg

        def fn(cfg, run, resume):
            from .train import fine_tune

            return fine_tune(args.model, cfg, run, resume, args.aesthetic_weights, args.clip)

        run, history = run_training_command("draft", TRAIN_PRESETS, args, fn, adjust=adjust)

        def brief(row):
            return {k: v for k, v in row.items() if k != "per_image"}

        print(json.dumps({"run": str(run.path), "lora": str(run.path / "lora"), "first": brief(history[0]),
                          "last": brief(history[-1])}, indent=2))
        return 0
    if args.draft_command == "sample":
        from .samples import sample_with_adapters, save_grid

        from discern.core.device import apply

        device, dtype = apply(args, cpu="float32", cuda="float32")
        prompts = args.prompt or ["a photo of a bag"]
        imgs = sample_with_adapters(args.model, args.lora, args.alpha, prompts, args.steps, args.guidance, args.seed,
                                    device=device, dtype=dtype)
        save_grid(imgs, args.out)
        print(json.dumps({"out": args.out, "images": len(prompts)}))
        return 0
    raise DiscernError(f"unknown draft command {args.draft_command}")

