"""L0: the typed result of a reproduction (``Result``) and of each claim in it (``Claim``).

A claim is data: ``statement`` (the paper's words), ``paper`` (its number or finding), ``ours``,
``test`` (the named statistical test or rule), ``p_value`` and/or ``ci``, and ``verdict``:

- ``held``: the named test says so at the stated level;
- ``not held``: the test says the opposite (the interval lies wholly on the wrong side, or the
  paper's direction is rejected);
- ``inconclusive``: anything else, including ties, overlapping intervals and experiments that
  could not test the claim (say why in ``ours``);
- ``self-test``: our own platform tested on our own simulation; never evidence about the paper.

``Result.to_dict()`` is what ``results.json`` holds: the envelope keys ``paper``, ``title``,
``claims``, ``plots``, ``table`` plus the experiment's own details; ``Result.from_dict`` reads it
back and validates it, so a malformed results file is one clear error.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import DiscernError

VERDICTS = ("held", "not held", "inconclusive", "self-test")
CLAIM_KEYS = ("statement", "paper", "ours", "test", "p_value", "ci", "verdict")


class ResultError(DiscernError):
    """A result or claim that does not follow the contract."""


def _finite_or_none(x, what: str):
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ResultError(f"{what}: expected a number or null, got {type(x).__name__}")
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and how our run decided it (see the module docstring)."""

    statement: str
    paper: str
    ours: str
    test: str
    verdict: str
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    level: float = 0.95

    def __post_init__(self):
        for k in ("statement", "paper", "ours", "test"):
            v = getattr(self, k)
            if not isinstance(v, str) or not v.strip():
                raise ResultError(f"claim {k!r}: expected a non-empty string, got {v!r}")
        if self.verdict not in VERDICTS:
            raise ResultError(f"claim {self.statement[:60]!r}: verdict {self.verdict!r} is not one of {VERDICTS}")
        p = _finite_or_none(self.p_value, f"claim {self.statement[:60]!r}: p_value")
        if p is not None and not 0.0 <= p <= 1.0:
            raise ResultError(f"claim {self.statement[:60]!r}: p_value {p} outside [0, 1]")
        object.__setattr__(self, "p_value", p)
        ci = self.ci
        if ci is not None:
            if len(ci) != 2:
                raise ResultError(f"claim {self.statement[:60]!r}: ci must be [low, high]")
            lo = _finite_or_none(ci[0], "ci low")
            hi = _finite_or_none(ci[1], "ci high")
            if lo is None or hi is None:
                ci = None
            elif lo > hi:
                raise ResultError(f"claim {self.statement[:60]!r}: ci low {lo} > high {hi}")
            else:
                ci = (lo, hi)
            object.__setattr__(self, "ci", ci)
        if self.verdict in ("held", "not held") and self.p_value is None and self.ci is None:
            raise ResultError(f"claim {self.statement[:60]!r}: a {self.verdict!r} verdict needs a p_value or a ci "
                              "from its test")
        if not 0 < self.level < 1:
            raise ResultError(f"claim {self.statement[:60]!r}: level {self.level} outside (0, 1)")

    @property
    def held(self) -> bool:
        return self.verdict == "held"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Claim:
        if not isinstance(d, dict):
            raise ResultError(f"claim: expected an object, got {type(d).__name__}")
        missing = [k for k in ("statement", "paper", "ours", "test", "verdict") if k not in d]
        if missing:
            raise ResultError(f"claim {str(d.get('statement', d))[:60]!r}: missing keys {missing}")
        if "p_value" not in d and "ci" not in d:
            raise ResultError(f"claim {str(d['statement'])[:60]!r}: needs the keys p_value and/or ci")
        return cls(statement=d["statement"], paper=d["paper"], ours=d["ours"], test=d["test"],
                   verdict=d["verdict"], p_value=d.get("p_value"), ci=d.get("ci"), level=d.get("level", 0.95))


ENVELOPE = ("paper", "title", "claims", "plots", "table")


@dataclass
class Result:
    """What one reproduction returns: its claims, plots (paths relative to the run folder), an
    optional summary table (a list of flat rows) and any further details (JSON-able)."""

    paper: str
    title: str
    claims: list[Claim]
    plots: list[str] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.paper, str) or not self.paper:
            raise ResultError("result: 'paper' must be a non-empty string")
        if not isinstance(self.title, str) or not self.title:
            raise ResultError(f"result {self.paper}: 'title' must be a non-empty string")
        if not isinstance(self.claims, list) or not all(isinstance(c, Claim) for c in self.claims):
            raise ResultError(f"result {self.paper}: 'claims' must be a list of Claim")
        if not self.claims:
            raise ResultError(f"result {self.paper}: no claims")
        clash = set(self.details) & set(ENVELOPE)
        if clash:
            raise ResultError(f"result {self.paper}: details may not use the keys {sorted(clash)}")

    def to_dict(self) -> dict:
        return {"paper": self.paper, "title": self.title, "claims": [c.to_dict() for c in self.claims],
                "plots": list(self.plots), "table": list(self.table), **self.details}

    @classmethod
    def from_dict(cls, d: dict) -> Result:
        if not isinstance(d, dict):
            raise ResultError(f"result: expected an object, got {type(d).__name__}")
        for k in ("paper", "title", "claims"):
            if k not in d:
                raise ResultError(f"result {d.get('paper', '?')}: missing key {k!r}")
        if not isinstance(d["claims"], list):
            raise ResultError(f"result {d['paper']}: 'claims' must be a list")
        return cls(paper=d["paper"], title=d["title"], claims=[Claim.from_dict(c) for c in d["claims"]],
                   plots=list(d.get("plots") or []), table=list(d.get("table") or []),
                   details={k: v for k, v in d.items() if k not in ENVELOPE})

    def __getitem__(self, key):
        """Read access like the dict it is saved as (``result["claims"]`` gives claim dicts)."""
        return self.to_dict()[key]

    def verdicts(self) -> dict[str, int]:
        out = {v: 0 for v in VERDICTS}
        for c in self.claims:
            out[c.verdict] += 1
        return out
