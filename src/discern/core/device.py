"""``--device`` and ``--dtype``: one meaning on every command that runs a model.

- ``--device auto`` (the default) is CUDA when a GPU is visible, else the CPU; ``cpu``, ``cuda`` and
  ``cuda:N`` ask for one (a CUDA request without a GPU is a one-line error, not a silent CPU run).
- ``--dtype auto`` (the default) is the command's own documented choice (bfloat16 where it was measured
  to pay, float32 elsewhere); ``float32``, ``bfloat16`` and ``float16`` ask for one.  For training
  commands the dtype is the autocast precision (parameters stay float32); for inference commands it is
  the precision the model is loaded in.

A command calls :func:`add_device_args` on its parser and :func:`apply` on its parsed arguments; training
code that picks its device through :func:`discern.core.dist.device` then follows the choice too.  A training
command calls :func:`apply_training` instead: ``--dtype`` becomes the ``--set`` override of the run's autocast
setting (``train.bf16=true`` ...), so the saved config records it and ``--resume`` keeps it
(:func:`check_resumed`).
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


def apply_training(args, keys):
    """Resolve a training command's ``--device`` (the process-wide choice, as :func:`apply`) and turn its
    ``--dtype`` into config overrides of the run's bf16 autocast setting(s) ``keys`` (dotted config keys):
    ``bfloat16`` gives ``KEY=true``, ``float32`` ``KEY=false``, ``auto`` nothing (the preset's own setting).

    The overrides are appended to ``args.sets`` (the ``--set`` list the config is built from, so the saved
    config records them) and kept in ``args.dtype_overrides`` for :func:`check_resumed`.  ``float16`` is
    refused: the training loop's autocast is bfloat16 or none (it has no float16 loss scaling).  Returns the
    device."""
    device = resolve_device(getattr(args, "device", "auto"))
    name = getattr(args, "dtype", "auto") or "auto"
    if name != "auto":
        resolve_dtype(name, device=device)  # float16 on the CPU, bfloat16 on a GPU without it: one line
    if name == "float16":
        raise DiscernError("--dtype float16: training runs in float32 or under bfloat16 autocast (no float16 "
                           "loss scaling); use --dtype bfloat16 or float32")
    value = {"auto": None, "float32": False, "bfloat16": True}.get(name)
    overrides = {} if value is None else {k: value for k in keys}
    sets = list(getattr(args, "sets", None) or [])
    for item in sets:
        key = item.split("=", 1)[0].strip()
        if key in overrides:
            raise DiscernError(f"--dtype {name} and --set {key}=...: give one of them")
    args.sets = sets + [f"{k}={'true' if v else 'false'}" for k, v in overrides.items()]
    args.dtype_overrides = overrides
    _CHOSEN[:] = [device]
    return device


def check_resumed(cfg, args) -> None:
    """A resumed run keeps the autocast setting its saved config records: an explicit ``--dtype`` that
    differs from it is a one-line error (``--dtype auto`` keeps the saved setting)."""
    for key, want in (getattr(args, "dtype_overrides", None) or {}).items():
        have = cfg
        for part in key.split("."):
            have = getattr(have, part)
        if bool(have) != want:
            saved = "bfloat16" if have else "float32"
            raise DiscernError(f"--dtype {getattr(args, 'dtype', '?')}: the resumed run was started with {key}="
                               f"{str(bool(have)).lower()} ({saved}); drop --dtype or give --dtype {saved}")


def chosen():
    """The process-wide device set by :func:`apply`, or None when no command set one."""
    return _CHOSEN[0] if _CHOSEN else None
