"""Human evaluation of long-form answers as in Med-PaLM 2 (Singhal et al. 2023, "Towards Expert-Level Medical
Question Answering with Large Language Models", section 4 and the appendix on human evaluation).

- ``schema``: the rubric (9 pairwise axes, 12 physician axes, 2 lay axes) and ``validate``.
- ``db``: studies, items (one answer, or two shown in a blinded random order), raters with invitation tokens,
  assignments (e.g. triple rating) and ratings in SQLite or PostgreSQL (SQLAlchemy); CSV export.
- ``app``: the web application (FastAPI): an admin JSON API and a rating page for raters.
- ``stats``: item- or answer-clustered bootstrap intervals and permutation tests.

Only ``schema`` and ``stats`` are imported here; ``db`` needs SQLAlchemy and ``app`` FastAPI (extra ``rating``).
"""

from __future__ import annotations

__all__ = ["app", "db", "schema", "stats"]
