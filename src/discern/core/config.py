"""Dataclass configs with named presets, ``--set a.b=v`` overrides and ``--config file``.

Every method keeps one ``@dataclass Config`` (nested dataclasses for sections) and a
``PRESETS`` dict mapping a name (``tiny``, ``quick``, ``paper`` ...) to a function that
returns a fresh ``Config``.  Overrides are applied by dotted key; an unknown key or a
value of the wrong type is a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ConfigError
from .files import brief, read_json

__all__ = [
    "apply_overrides",
    "build_config",
    "check_choices",
    "check_ranges",
    "config_from_dict",
    "config_to_dict",
    "parse_set",
]


def config_to_dict(cfg: Any) -> dict:
    """Nested plain dict of a dataclass config (JSON-serialisable)."""
    return dataclasses.asdict(cfg)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (a str from the command line or a JSON value) to type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        non_none = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for a in non_none:
            try:
                return _coerce(value, a, key)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{key}' expects {_tname(tp)}, got {brief(value)}")
    if tp is typing.Any:
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ConfigError(f"config key '{key}' expects a list, got {brief(value)}") from None
            else:
                value = [v for v in text.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' expects a list, got {brief(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"config key '{key}' expects {len(args)} values, got {brief(value)}")
            return tuple(_coerce(v, a, key) for v, a in zip(value, args))
        inner = args[0] if args else typing.Any
        out = [_coerce(v, inner, key) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"config key '{key}' expects a bool (true/false), got {brief(value)}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' expects an int, got {brief(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                raise ConfigError(f"config key '{key}' expects an int, got {brief(value)}") from None
            if f.is_integer():
                return int(f)
        raise ConfigError(f"config key '{key}' expects an int, got {brief(value)}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' expects a float, got {brief(value)}")
        if isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:  # an integer beyond the float range (10**400)
                raise ConfigError(f"config key '{key}' expects a float, got an integer beyond the float range "
                                  f"({brief(value)})") from None
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}' expects a float, got {brief(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}' expects a string, got {brief(value)}")
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise ConfigError(f"config key '{key}' expects one of {list(choices)}, got {brief(value)}")
    return value


def _get(cfg: Any, dotted: str) -> Any:
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def check_ranges(cfg: Any, rules: Mapping[str, str], prefix: str = "") -> None:
    """Each ``"dotted.key": "[lo, hi)"`` rule holds (``[``/``]`` closed, ``(``/``)`` open; ``inf`` for
    no bound; a list value is checked item by item), else a one-line :class:`ConfigError` naming the
    key.  NaN and infinities fail every rule with an open infinite bound, so a run never starts on a
    value that would only fail (or hang) later, deep in training."""
    for key, spec in rules.items():
        lo_text, hi_text = spec[1:-1].split(",")
        lo, hi = float(lo_text), float(hi_text)
        value = _get(cfg, key)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            above = lo <= v if spec[0] == "[" else lo < v
            below = v <= hi if spec[-1] == "]" else v < hi
            if not (above and below):
                raise ConfigError(f"config key '{prefix}{key}' must be in {spec}, got {brief(v)}")


def check_choices(cfg: Any, rules: Mapping[str, tuple], prefix: str = "") -> None:
    """Each ``"dotted.key": (allowed, ...)`` rule holds, else a one-line :class:`ConfigError`."""
    for key, allowed in rules.items():
        value = _get(cfg, key)
        if value not in allowed:
            raise ConfigError(f"config key '{prefix}{key}' must be one of {', '.join(map(str, allowed))}, got {brief(value)}")


def _tname(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _quoted(key: str) -> str:
    """``'a.b'`` for a plain dotted key; a key with other characters (a newline, a megabyte of text) as a
    short ``repr``, so that the message stays one short line."""
    if len(key) <= 80 and all(ch.isalnum() or ch in "._-" for ch in key) and key.isascii():
        return f"'{key}'"
    return brief(key)


def _set_key(cfg: Any, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    obj = cfg
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(obj):
            raise ConfigError(f"unknown config key {_quoted(dotted)}")
        names = {f.name for f in dataclasses.fields(obj)}
        if part not in names:
            prefix = ".".join(parts[:i])
            valid = ", ".join(sorted(names))
            where = f" in section '{prefix}'" if prefix else ""
            raise ConfigError(f"unknown config key {_quoted(dotted)}{where} (valid: {valid})")
        if i == len(parts) - 1:
            tp = _field_types(type(obj))[part]
            current = getattr(obj, part)
            if dataclasses.is_dataclass(current):
                if not isinstance(value, Mapping):
                    raise ConfigError(f"config key '{dotted}' is a section; set its fields, e.g. '{dotted}.x=...'")
                for k, v in value.items():
                    _set_key(cfg, f"{dotted}.{k}", v)
            else:
                setattr(obj, part, _coerce(value, tp, dotted))
        else:
            obj = getattr(obj, part)


def parse_set(item: str) -> tuple[str, str]:
    """Split ``a.b=v`` into ``("a.b", "v")``."""
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
    return key, value


def apply_overrides(cfg: Any, overrides: Mapping[str, Any] | None = None) -> Any:
    """Apply ``{"a.b": value}`` (values may be strings) in place and return ``cfg``."""
    for key, value in (overrides or {}).items():
        _set_key(cfg, key, value)
    post = getattr(cfg, "__post_init__", None)
    if post is not None:
        post()
    return cfg


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_from_dict(cfg: Any, data: Mapping[str, Any]) -> Any:
    """Overlay a nested dict (e.g. a saved ``config.json``) onto ``cfg``."""
    return apply_overrides(cfg, _flatten(data))


def load_config_file(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    return read_json(p, expect=dict, error=ConfigError, label=f"config file {p}")


# set by the command line for ``--print-config``: build_config prints the config it built and exits
PRINT_AND_EXIT: list[bool] = []


def build_config(
    presets: Mapping[str, Callable[[], Any]],
    preset: str,
    config_file: str | Path | None = None,
    sets: list[str] | None = None,
    final: bool = True,
) -> Any:
    """Preset, then ``--config file`` (JSON), then ``--set`` overrides, in that order.  Under
    ``--print-config`` the result is printed as JSON and the command ends there (exit status 0);
    ``final=False``: the caller adjusts the config further and calls :func:`print_config_and_exit`."""
    if preset not in presets:
        raise ConfigError(f"unknown preset '{preset}' (choose from: {', '.join(presets)})")
    cfg = presets[preset]()
    if config_file is not None:
        data = load_config_file(config_file)
        try:
            config_from_dict(cfg, data)
        except ConfigError as e:  # an unknown key or a mistyped value: say which file holds it
            raise ConfigError(f"config file {config_file}: {e}") from None
        except RecursionError:
            raise ConfigError(f"config file {config_file}: sections nested too deeply") from None
    overrides = dict(parse_set(s) for s in (sets or []))
    cfg = apply_overrides(cfg, overrides)
    if final:
        print_config_and_exit(cfg)
    return cfg


def print_config_and_exit(cfg: Any) -> None:
    """Under ``--print-config``: print ``cfg`` as JSON and end the command (exit status 0); else nothing."""
    if PRINT_AND_EXIT:
        import json
        import sys

        print(json.dumps(config_to_dict(cfg), indent=2, default=str))
        sys.stdout.flush()
        raise SystemExit(0)


def add_config_args(p, presets: str = "tiny, quick or paper", default: str = "quick") -> None:
    """The ``--preset``, ``--config`` and ``--set KEY=VALUE`` options every config-driven command takes."""
    p.add_argument("--preset", default=default, help=f"named preset ({presets})")
    p.add_argument("--config", default=None, help="JSON file of config values, applied after the preset")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set train.steps=2000 (repeatable)")
    p.add_argument("--print-config", action="store_true",
                   help="print the config the preset, --config and --set give, as JSON, and exit")
