"""Lazy public names for packages whose modules import torch: ``import discern.<package>`` stays light and
a name's module is imported on first use (PEP 562)."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_names(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that finds ``name`` in its submodule ``names[name]``."""
    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f".{names[name]}", package), name)

    return __getattr__
