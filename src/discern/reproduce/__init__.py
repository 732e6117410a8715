"""L4: run the registered reproductions and collect them into ``runs/report/index.html``."""

from __future__ import annotations

from pathlib import Path

from discern.core import Run, build_config, runs_root
from discern.core.errors import DiscernError

from .registry import EXPERIMENTS, get, load, run_bench
from .report import write_report

__all__ = ["EXPERIMENTS", "reproduce", "run_bench", "write_report"]


def reproduce(only: list[str] | None = None, preset: str = "quick", config_file: str | None = None,
              sets: list[str] | None = None, resume: str | None = None, report_dir: str | None = None) -> Path:
    """Run each selected experiment in its own run folder, then write the HTML report."""
    names = only or list(EXPERIMENTS)
    if resume and len(names) != 1:
        raise DiscernError("--resume continues one experiment: add --only NAME")
    results = []
    for name in names:
        exp = get(name)
        presets = load(exp.presets)
        if resume:
            run = Run.open(resume)
            from discern.core import config_from_dict
            cfg = config_from_dict(presets[preset](), run.load_config())
        else:
            cfg = build_config(presets, preset, config_file, sets)
            run = Run.create(name, f"reproduce-{preset}", cfg)
        try:
            result = load(exp.runner)(cfg, run)
        except Exception:
            if not resume:
                run.remove_if_unstarted()
            raise
        result["run"] = str(run.path)
        results.append(result)
    return write_report(results, Path(report_dir) if report_dir else runs_root() / "report")

