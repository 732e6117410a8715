"""The registry of reproductions and benchmarks, one entry per paper (lazy imports)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from discern.core.errors import DiscernError


@dataclass(frozen=True)
class Experiment:
    name: str
    presets: str  # "module:PRESETS"
    runner: str  # "module:function(cfg, run) -> result dict"
    bench: str | None = None  # "module:function(quick) -> dict"


EXPERIMENTS = {
    "electra": Experiment("electra", "discern.electra.config:PRESETS", "discern.electra.experiment:run",
                          "discern.electra.bench:bench"),
    "electric": Experiment("electric", "discern.electric.config:PRESETS", "discern.reproduce.electric:run",
                           "discern.electric.bench:bench"),
    "bam": Experiment("bam", "discern.bam.config:PRESETS", "discern.bam.experiment:run", "discern.bam.bench:bench"),
    "attention": Experiment("attention", "discern.attention.experiment:PRESETS", "discern.attention.experiment:run",
                            "discern.attention.bench:bench"),
    "fwl": Experiment("fwl", "discern.fwl.experiment:PRESETS", "discern.fwl.experiment:run",
                      "discern.fwl.bench:bench"),
    "diffusion_classifier": Experiment("diffusion_classifier", "discern.diffusion_classifier.experiment:PRESETS",
                                       "discern.diffusion_classifier.experiment:run",
                                       "discern.diffusion_classifier.bench:bench"),
    "psychophysics": Experiment("psychophysics", "discern.psychophysics.experiment:PRESETS",
                                "discern.reproduce.psychophysics:run"),
    "draft": Experiment("draft", "discern.draft.experiment:PRESETS", "discern.draft.experiment:run",
                        "discern.draft.bench:bench"),
    "medqa": Experiment("medqa", "discern.medqa.experiment:PRESETS", "discern.medqa.experiment:run",
                        "discern.medqa.bench:bench"),
    "nureality": Experiment("nureality", "discern.nureality.experiment:PRESETS", "discern.nureality.experiment:run",
                            "discern.nureality.bench:bench"),
}


def load(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise DiscernError(f"unknown experiment '{name}' (choose from: {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]


def run_bench(name: str, quick: bool = False) -> dict:
    exp = get(name)
    if exp.bench is None:
        raise DiscernError(f"experiment '{name}' has no benchmark")
    return load(exp.bench)(quick=quick)
