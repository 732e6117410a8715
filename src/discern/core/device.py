"""``--device`` and ``--dtype``: one meaning on every command that runs a model.

- ``--device auto`` (the default) is CUDA when a GPU is visible, else the CPU; ``cpu``, ``cuda`` and
  ``cuda:N`` ask for one (a CUDA request without a GPU is a one-line error, not a silent CPU run).
- ``--dtype auto`` (the default) is the command's own documented choice (bfloat16 where it was measured
  to pay, float32 elsewhere); ``float32``, ``bfloat16`` and ``float16`` ask for one.  For training
  commands the dtype is the autocast precision (parameters stay float32); for inference commands it is
  the precision the model is loaded in.

A command calls :func:`add_device_args` on its parser and :func:`apply` on its parsed arguments; training
code that picks its device through :func:`discern.core.dist.device` then follows the choice too.
"""

from __future__ import annotations

from discern.core.errors import DiscernError

DTYPES = ("auto", "float32", "bfloat16", "float16")
_CHOSEN: list = []  # the process-wide choice of apply(), read by discern.core.dist.device()


def add_device_args(parser, dtype_help: str = "the command's default") -> None:
    """Add ``--device`` and ``--dtype`` (both default ``auto``)."""
    parser.add_argument("--device", default="auto",
                        help="where the model runs: auto (CUDA when available, else CPU), cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="auto", choices=DTYPES,
                        help=f"model precision; auto = {dtype_help}")


def resolve_device(name: str = "auto"):
    """``torch.device`` for ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` (one-line errors for the rest)."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise DiscernError(f"--device {name}: no CUDA device is available (use --device cpu or auto)")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DiscernError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        return torch.device("cuda", index)
    raise DiscernError(f"--device {name[:40]!r}: choose auto, cpu, cuda or cuda:N")


def resolve_dtype(name: str = "auto", default: str = "float32", device=None):
    """``torch.dtype`` for a ``--dtype`` value; ``auto`` gives ``default``.  float16 on the CPU is refused
    (its CPU kernels are slow or missing), bfloat16 on a GPU without it too."""
    import torch

    name = default if (name or "auto") == "auto" else name
    if name not in DTYPES[1:]:
        raise DiscernError(f"--dtype {str(name)[:40]!r}: choose one of {', '.join(DTYPES)}")
    dev = resolve_device("auto") if device is None else torch.device(device)
    if name == "float16" and dev.type == "cpu":
        raise DiscernError("--dtype float16 needs a GPU (use bfloat16 or float32 on the CPU)")
    if name == "bfloat16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DiscernError("--dtype bfloat16: this GPU has no bfloat16 support (use float16 or float32)")
    return getattr(torch, name)


def apply(args, cpu: str = "float32", cuda: str = "bfloat16"):
    """Resolve a command's ``--device`` / ``--dtype`` once: returns ``(device, dtype)``, ``--dtype auto``
    giving ``cpu`` or ``cuda`` by the device, and makes the device the process-wide choice that
    :func:`discern.core.dist.device` returns."""
    device = resolve_device(getattr(args, "device", "auto"))
    dtype = resolve_dtype(getattr(args, "dtype", "auto"), cuda if device.type == "cuda" else cpu, device)
    _CHOSEN[:] = [device]
    return device, dtype


def chosen():
    """The process-wide device set by :func:`apply`, or None when no command set one."""
    return _CHOSEN[0] if _CHOSEN else None
