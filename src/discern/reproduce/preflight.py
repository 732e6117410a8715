"""The data preflight of ``discern reproduce``: which registry entries the selected papers' preset
reads that are not installed.

Each paper names its needs in ``Paper.data`` (see :meth:`discern.core.paper.Paper.data_for`).  An
entry counts as installed when its folder holds the registry's manifest, the marker a fetch writes
last (:func:`discern.data.registry.is_installed`): one ``stat`` per entry, no hashing and no network,
so the check takes milliseconds.  ``discern data verify`` re-hashes the files when that is wanted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from discern.core.paper import Paper


def missing_by_paper(papers: Iterable[Paper], preset: str) -> dict[str, list[str]]:
    """``{paper name: [entries of its preset not installed]}``, in paper order, only the papers that
    miss something.  An unknown entry name raises ``DataError``."""
    from discern.data import registry

    out: dict[str, list[str]] = {}
    for paper in papers:
        missing = [name for name in paper.data_for(preset) if not registry.is_installed(name)]
        if missing:
            out[paper.name] = missing
    return out


def missing_data(papers: Iterable[Paper], preset: str) -> list[str]:
    """The registry entries the papers' ``preset`` reads that are not installed, each once, in the
    order the papers name them."""
    return _unique(n for names in missing_by_paper(papers, preset).values() for n in names)


def fetch_command(names: Iterable[str]) -> str:
    """The one command that installs ``names``: ``discern data fetch A B ...``."""
    return "discern data fetch " + " ".join(_unique(names))


def missing_message(missing: dict[str, list[str]], n_papers: int, preset: str) -> str:
    """One line for the user: the missing entries per paper, the command that installs them, and
    ``--skip-missing`` when other papers could still run."""
    names = _unique(n for ns in missing.values() for n in ns)
    per_paper = "; ".join(f"{paper.replace('_', '-')}: {', '.join(ns)}" for paper, ns in missing.items())
    msg = (f"data missing for {len(missing)} of {n_papers} papers ({preset} preset) -- {per_paper}; "
           f"install them with: {fetch_command(names)}")
    local = _local_only(names)
    if local:
        msg += f" (offline, add --from DIR to take {', '.join(local)} from a folder of local copies)"
    if len(missing) < n_papers:
        msg += f"; or add --skip-missing to run the other {n_papers - len(missing)}"
    return msg


def _local_only(names: Sequence[str]) -> list[str]:
    """Those of ``names`` that install offline only from a local copy (``--from DIR``)."""
    from discern.data import registry

    return [n for n in names if registry.get(n).route == "local"]


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
