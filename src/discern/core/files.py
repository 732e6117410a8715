"""Reading user-supplied JSON files with one-line errors.

Every reader of a file a user hands to ``discern`` (a config, a scenario, a study export, a task folder's
``task.json``, a checkpoint's metadata) goes through :func:`read_json`, so that a missing file, bad bytes,
broken JSON or the wrong top-level type all end in the same kind of message: the file, the line and column
where that applies, and what was expected. No traceback reaches the user.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import DataError

_TYPE_NAMES = {dict: "a JSON object", list: "a JSON list", str: "a JSON string", int: "a JSON integer",
               float: "a JSON number", bool: "true or false"}


def read_json(path: str | Path, *, expect: type | None = None, error: type[Exception] = DataError,
              label: str | None = None, missing: str | None = None) -> Any:
    """Parse the JSON file at ``path``.

    ``expect`` (``dict`` or ``list``) checks the top-level type; ``error`` is the exception class raised
    (a :class:`~discern.core.errors.DiscernError` subclass, DataError by default); ``label`` is how the file
    is named in messages (the path by default); ``missing`` is appended to the message for a missing file
    (e.g. the command that creates it).
    """
    path = Path(path)
    name = label if label is not None else str(path)
    if not path.is_file():
        hint = f" ({missing})" if missing else ""
        raise error(f"{name}: no such file{hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{name}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise error(f"{name}: cannot be read ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except (RecursionError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise error(f"{name}: {json_failure(e)}") from None
    if expect is not None and not (isinstance(data, expect) and not (expect is int and isinstance(data, bool))):
        want = _TYPE_NAMES.get(expect, expect.__name__)
        got = "null" if data is None else type(data).__name__
        raise error(f"{name}: expected {want} at the top level, got {got}")
    return data


def json_failure(e: BaseException) -> str:
    """A few words on why ``json.loads`` refused a text, for a one-line message.

    Besides :class:`json.JSONDecodeError`, ``json.loads`` raises :class:`RecursionError` on deeply nested
    brackets and a plain :class:`ValueError` on an integer of more than 4300 digits (``sys.int_info``); a
    reader that catches only ``JSONDecodeError`` lets those through as tracebacks.
    """
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
    if isinstance(e, RecursionError):
        return "JSON nested too deeply"
    if "integer string conversion" in str(e):
        return "invalid JSON (an integer with too many digits)"
    return f"invalid JSON ({brief(str(e).splitlines()[0] if str(e) else type(e).__name__, quote=False)})"


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its class name when the message is empty), cut
    to ``limit`` characters: how a one-line error quotes a library's multi-line failure."""
    return (str(e).splitlines() or [type(e).__name__])[0][:limit]


def brief(value: Any, limit: int = 60, quote: bool = True) -> str:
    """``repr(value)`` (``str`` with ``quote=False``) cut to about ``limit`` characters, on one line: how a
    message quotes a piece of the input without dumping a few megabytes of it."""
    text = repr(value) if quote else " ".join(str(value).splitlines())
    return text if len(text) <= limit else text[: max(limit - 3, 1)] + "..."


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite as a float: NaN, +-inf and integers beyond the float
    range (``10**400``; ``math.isfinite`` raises OverflowError on them) are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_saved_model(folder: str | Path, model_type: str, legacy_file: str | None = None) -> bool:
    """A ``save_pretrained`` folder whose ``config.json`` names ``model_type`` (or, for an older layout,
    one holding ``legacy_file``); False for anything unreadable."""
    folder = Path(folder)
    if legacy_file is not None and (folder / legacy_file).is_file():
        return True
    try:
        return json.loads((folder / "config.json").read_text()).get("model_type") == model_type
    except (OSError, ValueError, AttributeError):
        return False

