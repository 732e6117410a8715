"""Seeding and explicit random generators."""

from __future__ import annotations

import hashlib
import random

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: torch-free packages (nureality) import discern.core
    import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global generators (for code we do not control)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts, e.g. ``derive_seed(cfg.seed, "batch", step)``."""
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def generator(*parts: object) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``parts`` (see :func:`derive_seed`)."""
    import torch

    g = torch.Generator()
    g.manual_seed(derive_seed(*parts))
    return g


def rng_state() -> dict:
    import torch

    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
