"""Lazy public names for packages whose modules import torch: ``import discern.<package>`` stays light and
a name's module is imported on first use (PEP 562); and hooks that run once another module is imported
(:func:`when_imported`: registering the library's classes with ``transformers``' auto classes without
importing ``transformers``)."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_names(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that finds ``name`` in its submodule ``names[name]``."""
    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f".{names[name]}", package), name)

    return __getattr__


# --------------------------------------------------------------------------- post-import hooks

_PENDING: dict[str, list[Callable[[Any], None]]] = {}


def when_imported(module: str, hook: Callable[[Any], None]) -> None:
    """Call ``hook(sys.modules[module])`` once ``module`` is imported: now if it already is, else right
    after its import finishes (a finder at the front of ``sys.meta_path`` wraps that one module's loader).

    Lets a light package register classes with a heavy library (``transformers``' auto classes) without
    importing it: the hook runs only in processes that import the library anyway.  A hook that raises is
    reported as a warning and does not break the import."""
    import sys

    loaded = sys.modules.get(module)
    if loaded is not None and not getattr(getattr(loaded, "__spec__", None), "_initializing", False):
        _run_hook(module, hook, loaded)
        return
    _PENDING.setdefault(module, []).append(hook)
    if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())


def _run_hook(name: str, hook: Callable[[Any], None], module: Any) -> None:
    try:
        hook(module)
    except Exception as e:  # a failed registration must not break the library's import
        import warnings

        warnings.warn(f"discern: a hook run after importing {name} failed: {type(e).__name__}: {e}", stacklevel=2)


class _PostImportFinder:
    """Finds the modules with pending hooks through the other finders and wraps their loaders."""

    _busy: set[str] = set()

    def find_spec(self, fullname: str, path=None, target=None):
        import sys

        if fullname not in _PENDING or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy.discard(fullname)
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _HookLoader(spec.loader, fullname)
        return spec


class _HookLoader:
    """A loader that runs the pending hooks of its module after the wrapped loader executed it."""

    def __init__(self, loader: Any, name: str):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        import sys

        self._loader.exec_module(module)
        hooks = _PENDING.pop(self._name, [])
        loaded = sys.modules.get(self._name, module)  # a package may replace itself (transformers' lazy module)
        for hook in hooks:
            _run_hook(self._name, hook, loaded)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_code, ...
        return getattr(self._loader, name)


def register_with_transformers(package: str, module: str) -> None:
    """Once ``transformers`` is imported, import ``package.module`` and call its ``register_auto_classes()``
    (the module registers itself when it is what imports ``transformers``)."""
    import sys

    def hook(_transformers) -> None:
        loading = sys.modules.get(f"{package}.{module}")
        if loading is not None and getattr(loading.__spec__, "_initializing", False):
            return
        import_module(f".{module}", package).register_auto_classes()

    when_imported("transformers", hook)
