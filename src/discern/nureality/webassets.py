"""The browser assets of the nuReality page: three.js, pinned in ``web/package.json`` and vendored into
``web/vendor/``.

The publications (Schmitt et al. 2022, arXiv 2201.04742) built nuReality in Unreal Engine; delivering it in
the browser with three.js and WebXR is our reconstruction (assumption).  The page imports
``./vendor/three.module.js`` through an import map; three.js r170 and later split that build into
``three.module.js`` and ``three.core.js``, so every file of the split that exists is copied.

How the vendor files are produced: ``npm ci`` (or ``npm install``) in ``web/`` fetches the pinned ``three``
from the npm registry and its ``postinstall`` script (``web/copy-vendor.mjs``) copies the build into
``web/vendor/``; :func:`ensure_vendor` does the same copy from Python (and, with ``install=True``, runs
``npm ci`` first).  ``web/node_modules/`` and ``web/vendor/`` are git-ignored.  Nothing here touches the
network unless ``install=True`` is asked for explicitly (a setup step, never the server or the tests).

Command line: ``python -m discern.nureality.webassets [--install]`` prints the vendor folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from discern.core.errors import DataError, DiscernError

WEB_DIR = Path(__file__).resolve().parent / "web"
VENDOR_FILES = ("three.module.js", "three.core.js")
VERSION_FILE = "three.version"


def pinned_three_version(web: Path | str = WEB_DIR) -> str:
    """The exact ``three`` version that ``web/package.json`` pins (DataError when it is missing or a range)."""
    path = Path(web) / "package.json"
    try:
        deps = json.loads(path.read_text(encoding="utf-8")).get("dependencies", {})
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable as JSON ({e})") from None
    version = deps.get("three") if isinstance(deps, dict) else None
    if not isinstance(version, str) or not version[:1].isdigit():
        raise DataError(f"{path}: dependencies.three must pin an exact version such as \"0.187.0\", got {version!r}")
    return version


def _read_version(path: Path) -> str | None:
    try:
        if path.name == "package.json":
            return json.loads(path.read_text(encoding="utf-8")).get("version")
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, json.JSONDecodeError):
        return None


def vendor_status(web: Path | str = WEB_DIR) -> dict:
    """``{"pinned", "installed", "vendored", "files"}``: the pinned version, the version in ``node_modules``
    (None when absent), the version last copied into ``vendor/`` (None when absent) and the vendored files."""
    web = Path(web)
    vendor = web / "vendor"
    return {
        "pinned": pinned_three_version(web),
        "installed": _read_version(web / "node_modules" / "three" / "package.json"),
        "vendored": _read_version(vendor / VERSION_FILE) if (vendor / VENDOR_FILES[0]).is_file() else None,
        "files": sorted(p.name for p in vendor.glob("*.js")) if vendor.is_dir() else [],
    }


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _copy_build(web: Path, version: str) -> Path:
    build = web / "node_modules" / "three" / "build"
    vendor = web / "vendor"
    vendor.mkdir(exist_ok=True)
    for name in VENDOR_FILES:
        if (build / name).is_file():
            _copy_atomic(build / name, vendor / name)
        elif (vendor / name).exists():
            (vendor / name).unlink()   # a stale half of an older split build
    tmp = vendor / (VERSION_FILE + ".tmp")
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, vendor / VERSION_FILE)
    return vendor


def ensure_vendor(web: Path | str = WEB_DIR, *, install: bool = False) -> Path:
    """Make ``web/vendor/`` hold the pinned three.js build and return that folder.

    Already vendored at the pinned version: nothing is done.  ``node_modules/three`` at the pinned version:
    its build is copied (each file written under a temporary name, then renamed).  Otherwise, with
    ``install=True``, ``npm ci`` runs in ``web/`` (this needs npm and the npm registry) and the copy follows;
    without it, DiscernError says which command installs it.
    """
    web = Path(web)
    status = vendor_status(web)
    pinned = status["pinned"]
    pkg = web / "package.json"
    if status["vendored"] == pinned:
        return web / "vendor"
    if status["installed"] != pinned:
        if not install:
            installed = status["installed"]
            have = f"node_modules has three {installed}" if installed else "node_modules/three is missing"
            raise DiscernError(f"{pkg}: three {pinned} is not installed ({have}); run `npm ci` in {web} "
                               "or `python -m discern.nureality.webassets --install`")
        npm = shutil.which("npm")
        if npm is None:
            raise DiscernError(f"{pkg}: npm is not on PATH; install Node.js 20 (with npm) to fetch three {pinned}")
        command = [npm, "ci" if (web / "package-lock.json").is_file() else "install", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=web, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DiscernError(f"{pkg}: `{' '.join(command[1:])}` failed: {last[0]}")
        if _read_version(web / "node_modules" / "three" / "package.json") != pinned:
            raise DiscernError(f"{pkg}: npm did not install three {pinned}")
    build = web / "node_modules" / "three" / "build"
    if not (build / VENDOR_FILES[0]).is_file():
        raise DataError(f"{build}: {VENDOR_FILES[0]} is missing from the three {pinned} package")
    return _copy_build(web, pinned)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    unknown = [a for a in args if a != "--install"]
    if unknown:
        print(f"error: unknown argument {unknown[0]!r}; usage: python -m discern.nureality.webassets [--install]",
              file=sys.stderr)
        return 2
    try:
        print(ensure_vendor(install="--install" in args))
    except DiscernError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
