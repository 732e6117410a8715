"""Synthetic two-object scenes for attribute-binding tests (after the CLEVR test of Lewis et al.
2022 used by Clark & Jaini 2023): coloured shapes on a black background, two per image, with
captions such as "a red circle and a blue square".

Each image holds two objects with different shapes and different colours, one in the left half
and one in the right half.  The caption names them in a random order (not left to right, so the
word order does not give away the position); the **swapped** caption exchanges the two colours
("a blue circle and a red square"), so it names the same words with the attributes bound to the
wrong objects: a model that binds attributes must prefer the true caption, one that only counts
words cannot (chance: 50%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 240), "yellow": (240, 220, 40)}
SHAPES = ("circle", "square", "triangle")


@dataclass
class Scene:
    shapes: tuple[str, str]  # left, right
    colours: tuple[str, str]  # left, right
    left_first: bool = True  # whether the caption names the left object first

    def _order(self) -> tuple[int, int]:
        return (0, 1) if self.left_first else (1, 0)

    @property
    def caption(self) -> str:
        a, b = self._order()
        return f"a {self.colours[a]} {self.shapes[a]} and a {self.colours[b]} {self.shapes[b]}"

    @property
    def swapped(self) -> str:
        a, b = self._order()
        return f"a {self.colours[b]} {self.shapes[a]} and a {self.colours[a]} {self.shapes[b]}"


def _mask(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if shape == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    if shape == "square":
        return (np.abs(xx - cx) <= r * 0.85) & (np.abs(yy - cy) <= r * 0.85)
    if shape == "triangle":  # apex up: inside when below the two slanted edges and above the base
        top, base = cy - r, cy + r * 0.8
        half = (yy - top) / (base - top) * r
        return (yy >= top) & (yy <= base) & (np.abs(xx - cx) <= half)
    raise ValueError(f"unknown shape {shape!r}")


def make_scenes(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, list[Scene]]:
    """``n`` scenes: uint8 images (n, size, size, 3) and their :class:`Scene` descriptions."""
    rng = np.random.default_rng(seed)
    colours = list(COLOURS)
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    scenes = []
    for i in range(n):
        s = rng.choice(len(SHAPES), 2, replace=False)
        c = rng.choice(len(colours), 2, replace=False)
        scene = Scene((SHAPES[s[0]], SHAPES[s[1]]), (colours[c[0]], colours[c[1]]), bool(rng.integers(2)))
        r = size * rng.uniform(0.16, 0.21)
        for k in range(2):  # left half, then right half
            cx = size * (0.25 + 0.5 * k) + rng.uniform(-0.04, 0.04) * size
            cy = size * 0.5 + rng.uniform(-0.15, 0.15) * size
            images[i][_mask(scene.shapes[k], size, cx, cy, r)] = COLOURS[scene.colours[k]]
        scenes.append(scene)
    return images, scenes
