"""A small shape x texture world for model-vs-human style experiments (after the stimuli of
Geirhos et al. 2019 and 2021, which need ImageNet): grayscale images of one textured object on a background of pixel noise, whose **class is its
shape**; each class has its own texture, and in training images the texture matches the class
with probability ``texture_match`` (a cue a learner can take as a shortcut: it is local, while the
shape shows only where the texture meets the noise).

Test sets, in the toolbox's layout and file names:

- ``cue-conflict/<shape>/<shape><i>-<texture><j>.png``: the shape of one class filled with the
  texture of another (pairs with equal shape and texture are included and, as in the toolbox,
  dropped by the shape-bias analysis);
- ``silhouette/<class>/<class><i>.png``: the shape filled black on white;
- ``edge/<class>/<class><i>.png``: the shape's outline, black on white;
- parametric distortions of clean test images, ``<dataset>/dnn/session-1/
  <trial>_<code>_dnn_<condition>_<class>_10_<class><i>.png`` with the toolbox's condition names:
  contrast (``c50`` = 50%), uniform-noise (width ``w`` on a 30% contrast image), low-pass and
  high-pass (Gaussian std in pixels *at 224 px*, scaled to this image size), phase-scrambling
  (phase noise of +-w degrees) and rotation (degrees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "star", "diamond")
TEXTURES = ("hstripes", "vstripes", "checker", "dots", "diagonal", "blocks")  # class k's own texture: TEXTURES[k]
DISTORTIONS = {"contrast": "cop", "uniform-noise": "nse", "low-pass": "lp", "high-pass": "hp",
               "phase-scrambling": "ps", "rotation": "rot"}  # dataset -> the toolbox's experiment code


def shape_mask(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean (size, size) mask of ``shape`` centred at (cx, cy) with radius ``r`` pixels."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        return dx ** 2 + dy ** 2 <= r * r
    if shape == "square":
        return (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.1 * r
    if shape == "triangle":  # apex up
        top, base = -r, 0.8 * r
        return (dy >= top) & (dy <= base) & (np.abs(dx) <= (dy - top) / (base - top) * r)
    if shape == "cross":
        arm = 0.33 * r
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    if shape == "star":  # five points: radius varies between 0.45 r and r with the angle
        ang = np.arctan2(dy, dx) + math.pi / 2
        frac = (ang / (2 * math.pi / 5)) % 1.0
        rad = r * (0.45 + 0.55 * np.abs(1 - 2 * frac))
        return dx ** 2 + dy ** 2 <= rad ** 2
    raise ValueError(f"unknown shape {shape!r} (choose from {', '.join(SHAPES)})")


def texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) texture in [0, 1] with a random phase."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    ox, oy = rng.uniform(0, 8, 2)
    if kind == "hstripes":
        t = ((yy + oy) // 2) % 2
    elif kind == "vstripes":
        t = ((xx + ox) // 2) % 2
    elif kind == "diagonal":
        t = ((xx + yy + ox) // 3) % 2
    elif kind == "checker":
        t = (((xx + ox) // 3) + ((yy + oy) // 3)) % 2
    elif kind == "dots":
        t = ((((xx + ox) % 4) - 1.5) ** 2 + (((yy + oy) % 4) - 1.5) ** 2 <= 1.3).astype(np.float64)
    elif kind == "blocks":  # random 2 x 2 blocks
        t = np.kron(rng.integers(0, 2, (size // 2 + 1, size // 2 + 1)), np.ones((2, 2)))[:size, :size]
    else:
        raise ValueError(f"unknown texture {kind!r} (choose from {', '.join(TEXTURES)})")
    return t.astype(np.float64)


def render(shape: str, tex: str | None, size: int, rng: np.random.Generator, style: str = "textured") -> np.ndarray:
    """One object at a random position and scale: float (size, size) in [0, 1].

    ``textured``: the shape filled with the texture (0.2..0.8) on a background of pixel noise with the
    same mean (0.2..0.8), so the shape shows only where the texture stops, as in a cluttered photo;
    ``silhouette``: black shape on white; ``edge``: the shape's one-pixel outline, black on white."""
    r = size * rng.uniform(0.28, 0.36)
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    m = shape_mask(shape, size, cx, cy, r)
    if style == "textured":
        background = 0.2 + 0.6 * rng.random((size, size))
        return np.where(m, 0.2 + 0.6 * texture(tex, size, rng), background)
    if style == "silhouette":
        return np.where(m, 0.0, 1.0)
    if style == "edge":
        inner = m.copy()
        inner[1:, :] &= m[:-1, :]
        inner[:-1, :] &= m[1:, :]
        inner[:, 1:] &= m[:, :-1]
        inner[:, :-1] &= m[:, 1:]
        return np.where(m & ~inner, 0.0, 1.0)
    raise ValueError(f"unknown style {style!r} (textured, silhouette, edge)")


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def training_set(n: int, size: int = 32, texture_match: float = 0.8, seed: int = 0):
    """``n`` training images: uint8 (n, size, size), class labels (shape index), texture indices.
    The texture is the class's own with probability ``texture_match``, another one otherwise."""
    rng = np.random.default_rng(seed)
    K = len(SHAPES)
    labels = rng.integers(0, K, n)
    match = rng.random(n) < texture_match
    other = (labels + rng.integers(1, K, n)) % K  # uniform over the other textures
    textures = np.where(match, labels, other)
    images = np.stack([to_uint8(render(SHAPES[c], TEXTURES[t], size, rng)) for c, t in zip(labels, textures)])
    return images, labels, textures


# ----------------------------------------------------------------------------- distortions


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma, mode="reflect") if sigma > 0 else x


def distort(x: np.ndarray, dataset: str, condition: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one model-vs-human parametric distortion (condition string as in the toolbox) to a
    float image in [0, 1]; filter widths given at 224 px are scaled to ``x``'s size."""
    scale = x.shape[-1] / 224.0
    if dataset == "contrast":
        c = int(condition.lstrip("c")) / 100.0
        return 0.5 + c * (x - 0.5)
    if dataset == "uniform-noise":
        w = float(condition)
        return np.clip(0.5 + 0.3 * (x - 0.5) + rng.uniform(-w, w, x.shape), 0.0, 1.0)
    if dataset == "low-pass":
        return _gaussian(x, float(condition) * scale)
    if dataset == "high-pass":
        s = float(condition)
        if math.isinf(s):
            return x
        return np.clip(x - _gaussian(x, s * scale) + 0.5, 0.0, 1.0)
    if dataset == "phase-scrambling":
        w = math.radians(float(condition))
        f = np.fft.fft2(x)
        noise = np.angle(np.fft.fft2(rng.standard_normal(x.shape)))  # uniform phases, antisymmetric
        noise[0, 0] = 0.0
        out = np.fft.ifft2(np.abs(f) * np.exp(1j * (np.angle(f) + noise * w / math.pi))).real
        return np.clip(out, 0.0, 1.0)
    if dataset == "rotation":
        return np.rot90(x, k=int(condition) // 90, axes=(-2, -1)).copy()
    raise ValueError(f"unknown distortion {dataset!r} (choose from {', '.join(DISTORTIONS)})")


# ----------------------------------------------------------------------------- test sets


@dataclass
class Stimulus:
    dataset: str
    category: str  # the true class (the shape)
    condition: str  # "NaN" for the sets without conditions, as the toolbox writes them
    imagename: str  # the file name, in the toolbox's convention
    relpath: str  # where it is written below the stimulus root
    image: np.ndarray  # uint8 (size, size)


def cue_conflict(per_pair: int, size: int = 32, seed: int = 0) -> list[Stimulus]:
    rng = np.random.default_rng(seed)
    out = []
    for a, shape in enumerate(SHAPES):
        for b, tex in enumerate(TEXTURES):
            for i in range(per_pair):
                name = f"{shape}{i + 1}-{SHAPES[b]}{b * per_pair + i + 1}.png"
                img = to_uint8(render(shape, tex, size, rng))
                out.append(Stimulus("cue-conflict", shape, "NaN", name, f"cue-conflict/{shape}/{name}", img))
    return out


def outlines(dataset: str, per_class: int, size: int = 32, seed: int = 0) -> list[Stimulus]:
    """``silhouette`` or ``edge`` images of every class."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in SHAPES:
        for i in range(per_class):
            name = f"{shape}{i + 1}.png"
            img = to_uint8(render(shape, None, size, rng, style=dataset))
            out.append(Stimulus(dataset, shape, "NaN", name, f"{dataset}/{shape}/{name}", img))
    return out


def parametric(dataset: str, conditions: list[str], per_class: int, size: int = 32, seed: int = 0) -> list[Stimulus]:
    """Clean test images (class-matching textures) under every condition of ``dataset``; the same base
    images in every condition."""
    rng = np.random.default_rng(seed)
    base = [(shape, i, render(shape, TEXTURES[k], size, rng)) for k, shape in enumerate(SHAPES)
            for i in range(per_class)]
    out, trial = [], 0
    for cond in conditions:
        for shape, i, x in base:
            trial += 1
            name = f"{trial:04d}_{DISTORTIONS[dataset]}_dnn_{cond}_{shape}_10_{shape}{i + 1:04d}.png"
            img = to_uint8(distort(x, dataset, cond, rng))
            out.append(Stimulus(dataset, shape, cond, name, f"{dataset}/dnn/session-1/{name}", img))
    return out


def all_stimuli(per_pair: int = 4, per_class: int = 10, param_per_class: int = 4, size: int = 32, seed: int = 0,
                datasets=None, conditions: dict | None = None) -> list[Stimulus]:
    """Every test set; ``conditions`` maps a parametric dataset to the conditions to render (all of
    the toolbox's by default)."""
    from .metrics import DATA_CONDITIONS

    from discern.core import derive_seed

    wanted = list(datasets or ("cue-conflict", "silhouette", "edge", *DISTORTIONS))
    out = []
    for ds in wanted:
        s = derive_seed(seed, "stimuli", ds)
        if ds == "cue-conflict":
            out += cue_conflict(per_pair, size, s)
        elif ds in ("silhouette", "edge"):
            out += outlines(ds, per_class, size, s)
        elif ds in DISTORTIONS:
            out += parametric(ds, list((conditions or {}).get(ds, DATA_CONDITIONS[ds])), param_per_class, size, s)
        else:
            raise ValueError(f"unknown stimulus set {ds!r}")
    return out


def write_stimuli(stimuli: list[Stimulus], root) -> list[dict]:
    """PNG files below ``root`` and a ``manifest.csv``; returns the manifest rows."""
    import csv

    from PIL import Image

    root = Path(root)
    rows = []
    for s in stimuli:
        p = root / s.relpath
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(s.image).save(p)
        rows.append({"dataset": s.dataset, "category": s.category, "condition": s.condition,
                     "imagename": s.imagename, "path": s.relpath})
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["dataset", "category", "condition", "imagename", "path"])
        w.writeheader()
        w.writerows(rows)
    return rows
