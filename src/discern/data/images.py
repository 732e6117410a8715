"""Image folders as tensors (shared by the diffusion trainer and the zero-shot classifier)."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


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
