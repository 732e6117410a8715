"""The memory allocator of a ``discern`` process: mimalloc in place of glibc's malloc (Linux).

A PyTorch training step on the CPU allocates and frees a few hundred activation and gradient
tensors of 0.1 to 10 MB.  glibc's malloc serves blocks of that size from fresh ``mmap`` pages and
unmaps them on ``free``, so every step touches thousands of new pages (about 10,000 minor page
faults per ELECTRA quick step, each a page the kernel zeroes); elementwise kernels that write a new
tensor then run at half their speed inside a step.  mimalloc keeps freed pages for reuse.  On two
cores this makes the ELECTRA and Electric quick pre-training steps 1.2-1.3x faster (``discern bench
electra`` and ``discern bench electric`` report the gain as ``allocator_gain``).  PyTorch's own CPU launcher
(``python -m torch.backends.xeon.run_cpu``) preloads tcmalloc or jemalloc for the same reason.

A malloc can only be replaced before a process allocates, so the ``discern`` command re-executes
itself once with ``LD_PRELOAD`` naming the mimalloc library of the ``cmeel-mimalloc`` package, and
removes that entry from ``LD_PRELOAD`` again in the new process, so programs it starts (a browser,
a database, a compiler) keep their own allocator.  ``DISCERN_ALLOCATOR=system`` keeps glibc's
malloc.  Freed memory is kept for reuse rather than returned to the system
(``MIMALLOC_PURGE_DELAY=-1`` unless set): a process's resident memory stays at its peak.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import ConfigError

ENV = "DISCERN_ALLOCATOR"
CHOICES = ("mimalloc", "system")
# set by the re-execution: LD_PRELOAD as it was before (possibly empty); its presence stops a second one
_BEFORE = "DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE"


def choice(env: dict | None = None) -> str:
    """``DISCERN_ALLOCATOR`` (``mimalloc`` unless set); another value is a one-line error."""
    value = (os.environ if env is None else env).get(ENV, "mimalloc").strip().lower() or "mimalloc"
    if value not in CHOICES:
        raise ConfigError(f"{ENV} must be one of {', '.join(CHOICES)}, not {value!r}")
    return value


def library() -> Path | None:
    """The mimalloc shared library installed by the ``cmeel-mimalloc`` package, or None (not
    installed, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    from importlib import metadata

    try:
        dist = metadata.distribution("cmeel-mimalloc")
    except metadata.PackageNotFoundError:
        return None
    found = []
    for f in dist.files or []:
        name = Path(str(f)).name
        if name.startswith("libmimalloc.so") and "debug" not in name:
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                found.append(path)
    # the shortest name is the development link libmimalloc.so; the soname libmimalloc.so.N is what the
    # loader would pick: take it where present
    found.sort(key=lambda p: (p.name.count(".") != 2, len(p.name)))
    return found[0] if found else None


def active() -> str:
    """``mimalloc`` when the mimalloc library is mapped into this process, else ``system``."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "system"
    return "mimalloc" if "libmimalloc" in maps else "system"


def _without(preload: str) -> str:
    """``LD_PRELOAD`` with every mimalloc entry removed (entries are separated by ':' or spaces)."""
    parts = [p for p in preload.replace(" ", ":").split(":") if p]
    return ":".join(p for p in parts if "libmimalloc" not in Path(p).name)


def child_env(kind: str, env: dict | None = None) -> dict:
    """A copy of ``env`` (default ``os.environ``) for a child process that must use ``kind``'s malloc:
    ``mimalloc`` preloads the library (a ConfigError if it is not installed), ``system`` removes it."""
    if kind not in CHOICES:
        raise ConfigError(f"allocator must be one of {', '.join(CHOICES)}, not {kind!r}")
    out = dict(os.environ if env is None else env)
    out.pop(_BEFORE, None)
    lib = library()
    rest = _without(out.get("LD_PRELOAD", ""))
    if kind == "mimalloc":
        if lib is None:
            raise ConfigError("mimalloc is not installed (pip install cmeel-mimalloc) or this is not Linux")
        out["LD_PRELOAD"] = f"{lib}:{rest}" if rest else str(lib)
        out.setdefault("MIMALLOC_PURGE_DELAY", "-1")
        out[ENV] = "mimalloc"
    else:
        if rest:
            out["LD_PRELOAD"] = rest
        else:
            out.pop("LD_PRELOAD", None)
        out[ENV] = "system"
    return out


def reexec_plan(env: dict, argv0: str, loaded: str, lib: Path | None) -> dict | None:
    """The environment to re-execute this process with, or None to go on as it is.

    ``env`` this process's environment, ``argv0`` its ``sys.argv[0]`` (a script or ``__main__.py``
    path; ``-c`` and an interactive interpreter are not re-executed), ``loaded`` :func:`active`'s
    answer, ``lib`` :func:`library`'s.  Pure, so that every branch is testable without exec."""
    if _BEFORE in env or choice(env) == "system" or loaded == "mimalloc" or lib is None:
        return None
    if not argv0 or argv0 in ("-c", "-") or not Path(argv0).is_file():
        return None
    out = child_env("mimalloc", env)
    out[_BEFORE] = env.get("LD_PRELOAD", "")
    return out


def settle_after_reexec() -> None:
    """In the re-executed process: put ``LD_PRELOAD`` back as it was, so that child processes do not
    inherit mimalloc (this process keeps it: the library is already loaded)."""
    if _BEFORE not in os.environ:
        return
    before = os.environ.pop(_BEFORE)
    if before:
        os.environ["LD_PRELOAD"] = before
    else:
        os.environ.pop("LD_PRELOAD", None)


def use_mimalloc() -> None:
    """Re-execute this process under mimalloc when :func:`reexec_plan` says so (the ``discern``
    command calls it first); otherwise only :func:`settle_after_reexec`.  Never returns when it
    re-executes."""
    plan = reexec_plan(dict(os.environ), sys.argv[0] if sys.argv else "", active(), library())
    if plan is None:
        settle_after_reexec()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], plan)
