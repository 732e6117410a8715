"""Sampling with LoRA adapters scaled and mixed (W + sum_i a_i dW_i; DRaFT's LoRA scaling and
mixing), and image grids."""

from __future__ import annotations

from pathlib import Path

import torch

from discern.core.errors import DiscernError


def sample_with_adapters(model, loras: list[str], alphas: list[float], prompts: list[str], steps: int = 50,
                         guidance: float = 1.0, seed: int = 0, device=None, dtype=None) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] from the pipeline folder ``model`` with the LoRA folders
    ``loras`` active at scales ``alphas`` (default 1 each); deterministic DDIM from ``seed``
    (:func:`discern.diffusion.sample`, what ``TextToImagePipeline.__call__`` runs before converting
    to images; also decodes a Stable Diffusion folder's latents).  The networks run on ``device`` in
    ``dtype`` (None: the CPU, float32); the noise is drawn on the CPU, so a seed gives the same start
    everywhere, and the images come back in float32."""
    from discern.diffusion import load_pipeline, place, sample

    from .lora import load_adapters

    if alphas and len(alphas) != len(loras):
        raise DiscernError("give one --alpha per --lora")
    pipe = load_pipeline(model)
    if loras:
        names = [f"a{i}" for i in range(len(loras))]
        load_adapters(pipe, dict(zip(names, loras)), dict(zip(names, alphas or [1.0] * len(names))))
    place(pipe, device, dtype)
    with torch.no_grad():
        return sample(pipe, prompts, steps, guidance_scale=guidance, generator=torch.Generator().manual_seed(seed))


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    Image.fromarray(grid[..., 0] if c == 1 else grid).save(tmp)
    tmp.replace(path)
