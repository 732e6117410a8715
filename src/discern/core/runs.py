"""Run folders: ``runs/<paper>/<UTC time>-<name>/`` with config, metrics, checkpoints, results, plots."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from .checkpoint import atomic_write_json, atomic_write_text
from .config import config_to_dict
from .errors import ConfigError, DataError, DiscernError
from .files import brief, json_failure, read_json


def runs_root() -> Path:
    return Path(os.environ.get("DISCERN_RUNS", "runs"))


class Run:
    """One run folder.  Create with :meth:`create` or reopen with :meth:`open` (``--resume``)."""

    def __init__(self, path: str | Path, main: bool = True):
        self.path = Path(path)
        self.main = main  # only the main process writes files

    @classmethod
    def create(cls, paper: str, name: str, config: Any = None, root: str | Path | None = None,
               main: bool = True) -> "Run":
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = Path(root or runs_root()) / paper / f"{stamp}-{name}"
        run = cls(path, main=main)
        if main:
            (path / "checkpoints").mkdir(parents=True, exist_ok=True)
            (path / "plots").mkdir(exist_ok=True)
            if config is not None:
                run.save_config(config)
        return run

    @classmethod
    def open(cls, path: str | Path, main: bool = True) -> "Run":
        path = Path(path)
        if not (path / "config.json").is_file():
            raise DiscernError(f"--resume {path}: not a run folder (no config.json)")
        return cls(path, main=main)

    # files -------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    def save_config(self, config: Any) -> None:
        if self.main:
            data = config_to_dict(config) if not isinstance(config, dict) else config
            atomic_write_json(self.path / "config.json", data)

    def load_config(self) -> dict:
        """The run's ``config.json``; malformed JSON or a top level that is not an object is a
        one-line ConfigError naming the file."""
        return read_json(self.path / "config.json", expect=dict, error=ConfigError)

    def save_results(self, results: dict) -> None:
        if self.main:
            atomic_write_json(self.path / "results.json", results)

    def stage(self, name: str, fn):
        """Run ``fn()`` once: its JSON-able result is kept in ``<run>/<name>.json``, so a
        resumed run skips the stages it finished."""
        path = self.path / f"{name}.json"
        if path.is_file():  # written atomically, so a malformed one was edited: a one-line DataError
            return read_json(path)
        out = fn()
        atomic_write_json(path, out)
        return out

    def log(self, record: dict) -> None:
        """Append one JSON line to ``metrics.jsonl`` (adds wall time)."""
        if not self.main:
            return
        rec = {"time": round(time.time(), 3), **record}
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec, default=float) + "\n")

    def metrics(self) -> list[dict]:
        """The records of ``metrics.jsonl``.  A last line cut short by a process killed while
        writing it (no newline at its end) is skipped; any other line that is not a JSON object
        is a one-line DataError naming ``file:line``."""
        p = self.path / "metrics.jsonl"
        if not p.is_file():
            return []
        text = p.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        out = []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (RecursionError, ValueError) as e:
                if lineno == len(lines):  # the unfinished last line of an interrupted write
                    continue
                raise DataError(f"{p}:{lineno}: {json_failure(e)}") from None
            if not isinstance(rec, dict):
                raise DataError(f"{p}:{lineno}: expected a JSON object per line, got {type(rec).__name__}")
            step = rec.get("step", 0)
            if isinstance(step, bool) or not isinstance(step, int):
                raise DataError(f"{p}:{lineno}: \"step\" must be an integer, got {brief(step)}")
            out.append(rec)
        return out

    def remove_if_unstarted(self) -> None:
        """Delete the folder of a run that failed before writing a checkpoint or a stage result,
        so bad input leaves nothing behind."""
        import shutil

        if not self.main or not self.path.is_dir():
            return
        results = [p for p in self.path.glob("*.json") if p.name != "config.json"]
        if not results and not any(self.path.rglob("*.pt")):
            shutil.rmtree(self.path, ignore_errors=True)

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, drop records logged after the checkpoint's step so no step appears twice."""
        if not self.main:
            return
        keep = [r for r in self.metrics() if r.get("step", -1) <= after_step]
        text = "".join(json.dumps(r) + "\n" for r in keep)
        atomic_write_text(self.path / "metrics.jsonl", text)


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "",
             initial: int = 0, enabled: bool = True) -> Iterator:
    """A progress bar with rate and ETA (tqdm), silent when disabled or ``DISCERN_QUIET=1``."""
    from tqdm.auto import tqdm

    disable = (not enabled) or os.environ.get("DISCERN_QUIET") == "1"
    return tqdm(iterable, total=total, desc=desc, initial=initial, disable=disable,
                dynamic_ncols=True, mininterval=1.0, leave=False)


def run_training_command(paper: str, presets: dict, args: Any, fn, name=None, adjust=None) -> tuple["Run", Any]:
    """The shared body of a ``<paper> pretrain`` command, also under ``torchrun``.

    ``args`` has ``resume``, ``preset``, ``config``, ``sets`` and ``name``.  With ``--resume`` the
    run folder's saved config is used; otherwise rank 0 creates ``runs/<paper>/<time>-<name>``
    (``name(cfg)`` when given, after ``adjust(cfg)``) and the other ranks follow.  Calls
    ``fn(cfg, run, resume)``; a new run folder that never started is removed if it fails."""
    from . import dist
    from .config import build_config, config_from_dict, print_config_and_exit

    dist.init_from_env()
    if args.resume:
        run = Run.open(args.resume, main=dist.is_main())
        # the run's own preset under its saved config, so a key the saved file lacks keeps the
        # value of the preset the run started from (not another preset's)
        marker = run.path / "preset.txt"
        preset = marker.read_text().strip() if marker.is_file() else "paper"
        if preset not in presets:
            raise DiscernError(f"--resume {run.path}: its preset '{preset}' is not one of {', '.join(presets)}")
        cfg = config_from_dict(presets[preset](), run.load_config())
        from .device import check_resumed

        check_resumed(cfg, args)  # an explicit --dtype must agree with the run's saved autocast setting
    else:
        cfg = build_config(presets, args.preset, args.config, args.sets, final=False)
        if adjust is not None:
            cfg = adjust(cfg)
        print_config_and_exit(cfg)
        label = name(cfg) if name is not None else args.name
        path = None
        if dist.is_main():
            created = Run.create(paper, label, cfg)
            (created.path / "preset.txt").write_text(args.preset + "\n")
            path = str(created.path)
        run = Run(dist.broadcast_object(path), main=dist.is_main())
    try:
        return run, fn(cfg, run, bool(args.resume))
    except Exception:
        if not args.resume:
            run.remove_if_unstarted()
        raise
