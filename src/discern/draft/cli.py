"""``discern draft train`` and ``discern draft sample``."""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.config import add_config_args
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
    tr.add_argument("--method", choices=["lv", "k", "full", "refl", "ddpo"], default=None)
    tr.add_argument("--k", type=int, default=None, help="DRaFT-K: steps with gradient")
    tr.add_argument("--prompts", default=None, help="text file, one prompt per line")
    tr.add_argument("--aesthetic-weights", default=None, help="the LAION aesthetic MLP .pth (reward aesthetic)")
    tr.add_argument("--clip", default=None, help="a CLIP folder (rewards aesthetic, preference)")
    tr.add_argument("--resume", default=None, metavar="RUN_DIR")
    tr.add_argument("--name", default="train")
    sp = ds.add_parser("sample", help="sample with LoRA adapters scaled (and mixed): W + sum a_i dW_i")
    sp.add_argument("--model", required=True)
    sp.add_argument("--lora", action="append", default=[], help="a LoRA folder (repeat to mix adapters)")
    sp.add_argument("--alpha", action="append", type=float, default=[], help="scale of each --lora (default 1)")
    sp.add_argument("--prompt", action="append", default=[], help="prompt (repeatable)")
    sp.add_argument("--steps", type=int, default=50)
    sp.add_argument("--guidance", type=float, default=1.0)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", required=True, help="output PNG (a grid: one row per prompt)")


def build_reward(name: str, aesthetic_weights=None, clip=None):
    from .rewards import AestheticReward, ClassifierReward, ImageStatReward, PreferenceReward

    if name in ImageStatReward.KINDS:
        return ImageStatReward(name)
    if name.startswith("classifier:"):
        from discern.diffusion.captions import FASHION_NAMES

        target = name.split(":", 1)[1]
        if target not in FASHION_NAMES:
            raise DiscernError(f"unknown Fashion-MNIST class {target!r} (choose from {', '.join(FASHION_NAMES)})")
        return ClassifierReward(fashion_classifier(), FASHION_NAMES.index(target))
    if name == "aesthetic":
        if not aesthetic_weights or not clip:
            raise DiscernError("reward 'aesthetic' needs --aesthetic-weights PTH and --clip DIR")
        return AestheticReward.from_pretrained(aesthetic_weights, clip)
    if name == "preference":
        if not clip:
            raise DiscernError("reward 'preference' needs --clip DIR (a PickScore or HPS CLIP folder)")
        return PreferenceReward.from_pretrained(clip)
    raise DiscernError(f"unknown reward {name!r} (contrast, brightness, compressibility, classifier:<class>, "
                       "aesthetic, preference)")


def fashion_classifier(epochs: int = 1, size: int = 28):
    """The small CNN trained on Fashion-MNIST (data registry), cached in the runs folder."""
    import torch

    from discern.core.runs import runs_root
    from discern.data.corpora import fashion_mnist
    from discern.diffusion.captions import to_tensor
    from discern.nn.cnn import SmallCNN, train_cnn

    path = runs_root() / "draft" / f"fashion-cnn-{size}.pt"
    if path.is_file():
        model = SmallCNN(10, 1, size)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    imgs, labels = fashion_mnist("train")
    model = train_cnn(to_tensor(imgs, size), labels, 10, epochs=epochs, desc="Fashion-MNIST CNN (reward)")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


def run_command(args) -> int:
    from discern.core.runs import run_training_command
    from discern.diffusion import load_pipeline

    from .config import PRESETS

    if args.draft_command == "train":
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
            from .train import train_draft

            pipe = load_pipeline(args.model)
            reward = build_reward(cfg.reward, args.aesthetic_weights, args.clip)
            return train_draft(pipe, reward, cfg.prompts, cfg.draft, run, resume=resume)

        run, history = run_training_command("draft", PRESETS, args, fn, adjust=adjust)
        print(json.dumps({"run": str(run.path), "lora": str(run.path / "lora"), "first": history[0],
                          "last": history[-1]}, indent=2))
        return 0
    if args.draft_command == "sample":
        import torch

        from .lora import load_adapters

        if args.alpha and len(args.alpha) != len(args.lora):
            raise DiscernError("give one --alpha per --lora")
        pipe = load_pipeline(args.model)
        if args.lora:
            names = [f"a{i}" for i in range(len(args.lora))]
            load_adapters(pipe, dict(zip(names, args.lora)), dict(zip(names, args.alpha or [1.0] * len(names))))
        prompts = args.prompt or ["a photo of a bag"]
        imgs = pipe(prompts, num_inference_steps=args.steps, guidance_scale=args.guidance,
                    generator=torch.Generator().manual_seed(args.seed))
        save_grid(imgs, args.out)
        print(json.dumps({"out": args.out, "images": len(prompts)}))
        return 0
    raise DiscernError(f"unknown draft command {args.draft_command}")


def save_grid(images, path, ncol: int | None = None) -> None:
    """(N, C, H, W) in [-1, 1] -> one PNG, ``ncol`` images per row (default: one row)."""
    import numpy as np
    from PIL import Image

    x = ((images.detach().clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()
    n, c, h, w = x.shape
    ncol = ncol or n
    rows = (n + ncol - 1) // ncol
    grid = np.zeros((rows * h, ncol * w, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = x[i].transpose(1, 2, 0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if c == 1 else grid).save(path)
