"""``discern reproduce``: each selected paper in its own run folder (placeholder, rewritten below)."""

from __future__ import annotations

from pathlib import Path

from discern.core import Run, build_config, runs_root
from discern.core.errors import DiscernError

from .registry import get, papers
from .report import write_report


def reproduce(only: list[str] | None = None, preset: str = "quick", config_file: str | None = None,
              sets: list[str] | None = None, resume: str | None = None, report_dir: str | None = None) -> Path:
    selected = [get(n) for n in only] if only else papers()
    if resume and len(selected) != 1:
        raise DiscernError("--resume continues one experiment: add --only NAME")
    results = []
    for paper in selected:
        presets = paper.presets_dict()
        if resume:
            run = Run.open(resume)
            from discern.core import config_from_dict
            cfg = config_from_dict(presets[preset](), run.load_config())
        else:
            cfg = build_config(presets, preset, config_file, sets)
            run = Run.create(paper.name, f"reproduce-{preset}", cfg)
        try:
            result = paper.load(paper.run)(cfg, run)
        except Exception:
            if not resume:
                run.remove_if_unstarted()
            raise
        result = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        result["run"] = str(run.path)
        results.append(result)
    return write_report(results, Path(report_dir) if report_dir else runs_root() / "report")
