"""The registry of papers: every L3 package that exports a ``PAPER`` descriptor (no hand list).

``papers()`` finds them by importing each top-level package of ``discern`` above the shared
layers; a new paper package appears in the CLI, ``discern reproduce`` and ``discern bench`` by
exporting its descriptor.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

import discern
from discern.core.errors import DiscernError
from discern.core.paper import Paper

# The shared layers (L0-L2) and L4: never paper packages, and some are heavy to import.
SHARED = frozenset({"core", "data", "metrics", "nn", "diffusion", "llm", "train", "tasks", "reproduce", "cli",
                    "__main__"})


@lru_cache(maxsize=1)
def _registry() -> dict[str, Paper]:
    found = []
    for info in pkgutil.iter_modules(discern.__path__):
        if not info.ispkg or info.name in SHARED:
            continue
        desc = getattr(importlib.import_module(f"discern.{info.name}"), "PAPER", None)
        if isinstance(desc, Paper):
            found.append(desc)
    return {p.name: p for p in sorted(found, key=lambda p: (p.number, p.name))}


def papers() -> list[Paper]:
    """The paper descriptors in the project's order."""
    return list(_registry().values())


def names() -> list[str]:
    return list(_registry())


def get(name: str) -> Paper:
    """A paper by its name or its CLI command (``diffusion-classifier`` = ``diffusion_classifier``)."""
    reg = _registry()
    key = name.replace("-", "_")
    if key not in reg:
        raise DiscernError(f"unknown paper '{name}' (choose from: {', '.join(p.cli_command for p in reg.values())})")
    return reg[key]


def load(target: str, paper: Paper | None = None):
    """Import an absolute ``"module:attr"`` target (or one relative to ``paper``'s package)."""
    if paper is not None:
        return paper.load(target)
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def run_bench(name: str, quick: bool = False) -> dict:
    p = get(name)
    if p.bench is None:
        raise DiscernError(f"paper '{p.cli_command}' has no benchmark (papers with one: "
                           f"{', '.join(x.cli_command for x in papers() if x.bench)})")
    out = p.load(p.bench)(quick=quick)
    check_bench(out, p.name)
    return out


def check_bench(out, name: str) -> None:
    """The JSON convention of ``discern bench``: ``{"bench", "ratios", "goals", "details"}``, every
    ratio a finite number and every goal naming a ratio."""
    import math

    if not isinstance(out, dict) or set(out) != {"bench", "ratios", "goals", "details"}:
        keys = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise DiscernError(f"bench {name}: expected the keys bench, ratios, goals, details; got {keys}")
    if not isinstance(out["ratios"], dict) or not out["ratios"]:
        raise DiscernError(f"bench {name}: 'ratios' must be a non-empty object")
    for k, v in out["ratios"].items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise DiscernError(f"bench {name}: ratio {k!r} = {v!r} is not a finite number")
    for k, g in out["goals"].items():
        if k not in out["ratios"] or not isinstance(g, str):
            raise DiscernError(f"bench {name}: goal {k!r} must name a ratio and be a string like '>= 3'")
