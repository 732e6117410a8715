"""``discern reproduce``: each selected paper's reproduction in its own run folder.

The report (``runs/report/index.html`` and ``results.json``) is rewritten after every experiment,
so an interrupted or failed reproduction still leaves one; an experiment that raises is recorded
in its own section (error line, traceback in its run folder) and the others still run.  Progress
is printed as ``[i/n] name`` with the elapsed time and an overall ETA (from the durations this
preset took in the previous report, else from the experiments finished so far).

Before any experiment, once every config is built, a data preflight (:mod:`.preflight`) checks that
the registry entries each selected paper's preset reads are installed.  If any is missing the
reproduction stops at once with one line naming them per paper and the ``discern data fetch``
command that installs them; with ``skip_missing`` (``--skip-missing``) the papers that miss data
are recorded in the report as skipped, with the reason, and the others run.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from discern.core import Run, build_config, runs_root
from discern.core.errors import DiscernError
from discern.core.results import Result

from .preflight import fetch_command, missing_by_paper, missing_message
from .registry import get, papers
from .report import write_report


def environment() -> dict:
    """Package versions and hardware, recorded beside each result."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("discern", "torch", "transformers", "diffusers", "peft", "numpy", "scipy", "fastapi", "sqlalchemy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    hw = {"cpu": cpu, "cores": _cores(), "os": f"{platform.system()} {platform.release()}"}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        hw["gpu"] = torch.cuda.get_device_name(0)
    return {"versions": versions, "hardware": hw}


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _history(report_dir: Path, preset: str) -> dict[str, float]:
    f = report_dir / "results.json"
    try:
        rows = json.loads(f.read_text()) if f.is_file() else []
        return {r["paper"]: float(r["meta"]["duration_s"]) for r in rows
                if isinstance(r, dict) and r.get("meta", {}).get("preset") == preset and r.get("status") == "ok"}
    except (ValueError, KeyError, TypeError):
        return {}


def reproduce(only: list[str] | None = None, preset: str = "quick", config_file: str | None = None,
              sets: list[str] | None = None, resume: str | None = None, report_dir: str | None = None,
              echo=print, skip_missing: bool = False, print_config: bool = False) -> Path | None:
    """Run each selected paper (default: all, in the project's order) and write the report.

    Raises ``DiscernError`` before any experiment if a paper's data is not installed (unless
    ``skip_missing``: then those papers are reported as skipped), and after the last experiment if
    any failed (the report is written).  ``print_config``: print every selected paper's config as one
    JSON object and return None, running nothing."""
    selected = [get(n) for n in only] if only else papers()
    if resume and len(selected) != 1:
        raise DiscernError("--resume continues one experiment: add --only NAME")
    out_dir = Path(report_dir) if report_dir else runs_root() / "report"
    # every config first, so a bad --set or preset fails in the first second, before any work
    configs = []
    for paper in selected:
        presets = paper.presets_dict()
        if resume:
            from discern.core import config_from_dict

            run = Run.open(resume)
            configs.append((config_from_dict(presets[preset](), run.load_config()), run))
        else:
            configs.append((build_config(presets, preset, config_file, sets), None))
    if print_config:
        from discern.core import config_to_dict

        print(json.dumps({p.name: config_to_dict(c) for p, (c, _) in zip(selected, configs)}, indent=2, default=str))
        return None
    # then the data, so a missing dataset or model also fails in the first seconds
    missing = missing_by_paper(selected, preset)
    if missing and not skip_missing:
        raise DiscernError(missing_message(missing, len(selected), preset))
    history = _history(out_dir, preset)
    env = environment()
    if missing:
        _record_skipped([p for p in selected if p.name in missing], missing, preset, out_dir, echo)
    runnable = [(p, c) for p, c in zip(selected, configs) if p.name not in missing]
    selected = [p for p, _ in runnable]
    t_all = time.time()
    done: list[tuple[str, float]] = []
    failed: list[str] = []
    n = len(runnable)
    for i, (paper, (cfg, run)) in enumerate(runnable, 1):
        elapsed = time.time() - t_all
        remaining = [p.name for p in selected[i - 1:]]
        known = [history[r] for r in remaining if r in history]
        if len(known) == len(remaining):
            eta = f"ETA {_fmt_s(sum(known))}"
        elif done:
            per = sum(d for _, d in done) / len(done)
            eta = f"ETA ~{_fmt_s(per * len(remaining))} (from the experiments so far)"
        else:
            eta = "ETA unknown (no earlier timing of this preset)"
        echo(f"[{i}/{n}] {paper.cli_command} ({preset}): elapsed {_fmt_s(elapsed)}, {eta}")
        run = run or Run.create(paper.name, f"reproduce-{preset}", cfg)
        started = datetime.now(timezone.utc)
        t0 = time.time()
        meta = {"preset": preset, "started": started.strftime("%Y-%m-%d %H:%M:%S UTC"), "run": str(run.path), **env}
        try:
            res = paper.load(paper.run)(cfg, run)
            res = res if isinstance(res, Result) else Result.from_dict(res)
            entry = {**res.to_dict(), "status": "ok"}
        except Exception as e:  # one experiment's failure is recorded; the others still run
            if not resume:
                run.remove_if_unstarted()
            line = str(e).splitlines()[0] if str(e) else type(e).__name__
            tb = traceback.format_exc()
            if run.path.is_dir():
                (run.path / "error.txt").write_text(tb)
            entry = {"paper": paper.name, "title": paper.title, "claims": [], "plots": [], "table": [],
                     "status": "failed", "error": f"{type(e).__name__}: {line}",
                     "traceback": tb if not isinstance(e, DiscernError) else ""}
            failed.append(f"{paper.name} ({entry['error']})")
            echo(f"[{i}/{n}] {paper.cli_command} failed: {entry['error']}")
        meta["duration_s"] = round(time.time() - t0, 1)
        entry["run"] = str(run.path)
        entry["meta"] = meta
        done.append((paper.name, meta["duration_s"]))
        write_report([entry], out_dir)
    path = out_dir / "index.html"
    if missing:
        echo(f"skipped {len(missing)} of {len(configs)} papers for missing data: {', '.join(missing)} (see the report)")
    if failed:
        raise DiscernError(f"{len(failed)} of {n} experiments failed: {'; '.join(failed)} (report: {path})")
    return path


def _record_skipped(skipped: list, missing: dict[str, list[str]], preset: str, out_dir: Path, echo) -> None:
    """Write the papers that miss data into the report as skipped, each with the reason."""
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    entries = []
    for paper in skipped:
        names = missing[paper.name]
        reason = f"data missing: {', '.join(names)} (install: {fetch_command(names)})"
        entries.append({"paper": paper.name, "title": paper.title, "claims": [], "plots": [], "table": [],
                        "status": "skipped", "error": reason, "run": "",
                        "meta": {"preset": preset, "started": started}})
        echo(f"skip {paper.cli_command}: {reason}")
    write_report(entries, out_dir)
