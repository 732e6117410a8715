"""L4: run the registered reproductions and collect them into ``runs/report/index.html``."""

from __future__ import annotations

from .preflight import missing_data
from .registry import get, load, papers, run_bench
from .report import write_report
from .run import reproduce

__all__ = ["get", "load", "missing_data", "papers", "reproduce", "run_bench", "write_report"]
