"""ImageNet-1k classifiers for the model-vs-human stimuli: each one maps PIL images to (N, 1000)
softmax probabilities in ImageNet class-index order, which :mod:`.imagenet16` turns into the 16
categories (mean probability over each category's classes, as the toolbox does).

``load_classifier(spec)`` accepts:

- ``efficientnet-lite0``: the packaged EfficientNet-Lite0 (:mod:`.efficientnet`);
- a folder holding ``efficientnet-lite0-57934424.pth``;
- a Hugging Face image-classification folder (``config.json`` + weights + an image processor
  config), loaded offline with ``AutoModelForImageClassification`` and ``AutoImageProcessor``;
- a timm folder (``config.json`` with ``architecture``; weights ``model.safetensors`` or
  ``pytorch_model.bin``) when ``timm`` is installed.

Whatever the kind, the model must have exactly 1000 outputs; every problem is a one-line
:class:`~discern.core.errors.DiscernError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from discern.core.errors import DiscernError
from discern.core.files import brief

PACKAGED = ("efficientnet-lite0",)


def resolve_device(device="auto"):
    """A ``torch.device`` for ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` (:func:`discern.core.device.resolve_device`)
    or a ``torch.device`` itself."""
    import torch

    if isinstance(device, torch.device):
        return device
    from discern.core.device import resolve_device as resolve

    return resolve(device)


class TorchImageNetClassifier:
    """A torch module giving (N, 1000) logits, with its preprocessing (PIL images -> tensor); the module
    runs on ``device`` in ``dtype`` (None: float32) and the probabilities come back in float64."""

    def __init__(self, name: str, module, preprocess, device="cpu", dtype=None):
        self.name, self.preprocess, self.device, self.dtype = name, preprocess, device, dtype
        self.module = module.to(device=device, dtype=dtype).eval()

    def probabilities(self, images) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = self.preprocess(images).to(device=self.device, dtype=self.dtype)
            logits = self.module(x)
            logits = getattr(logits, "logits", logits)
            if logits.ndim != 2 or logits.shape[1] != 1000:
                raise DiscernError(f"{self.name}: the model returned outputs of shape {tuple(logits.shape)}, "
                                   "expected (N, 1000) ImageNet logits")
            return logits.float().softmax(-1).cpu().numpy().astype(np.float64)


def _efficientnet(folder, name: str, device: str, dtype=None) -> TorchImageNetClassifier:
    from . import efficientnet as E

    return TorchImageNetClassifier(name, E.load(folder), E.preprocess, device, dtype)


def _read_config(folder: Path) -> dict:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DiscernError(f"{folder / 'config.json'}: not a readable JSON config ({type(e).__name__})") from None
    if not isinstance(cfg, dict):
        raise DiscernError(f"{folder / 'config.json'}: not a model config (expected a JSON object)")
    return cfg


def _huggingface(folder: Path, name: str, device: str, dtype=None) -> TorchImageNetClassifier:
    import logging

    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise DiscernError(f"{folder}: not a loadable Hugging Face config "
                           f"({brief(str(e), 120, quote=False)})") from None
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    if config.model_type not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        raise DiscernError(f"{folder}: a {config.model_type} model is not an image classifier")
    if config.num_labels != 1000:
        raise DiscernError(f"{folder}: the classifier has {config.num_labels} outputs; the 16-class mapping "
                           "needs the 1000 ImageNet-1k classes")
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForImageClassification.from_pretrained(folder, local_files_only=True)
    except ValueError as e:
        if "Unrecognized configuration class" in str(e):
            raise DiscernError(f"{folder}: a {config.model_type} model is not an image classifier") from None
        raise DiscernError(f"{folder}: cannot load the image classifier ({brief(str(e), 120, quote=False)})") from None
    except OSError as e:
        raise DiscernError(f"{folder}: cannot load the weights ({brief(str(e), 120, quote=False)})") from None
    finally:
        hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(level)
    if not (folder / "preprocessor_config.json").is_file():
        raise DiscernError(f"{folder}: no preprocessor_config.json (the image processor that prepares its inputs)")
    hf_logging.set_verbosity(logging.ERROR)
    try:
        processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise DiscernError(f"{folder}: no usable image processor ({brief(str(e), 100, quote=False)})") from None
    finally:
        hf_logging.set_verbosity(level)

    def preprocess(images):
        return processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]

    return TorchImageNetClassifier(name, model, preprocess, device, dtype)


def _timm(folder: Path, cfg: dict, name: str, device: str, dtype=None) -> TorchImageNetClassifier:
    try:
        import timm
    except ImportError:
        raise DiscernError(f"{folder}: a timm model folder; loading it needs the timm package "
                           "(pip install timm)") from None
    import torch

    from . import efficientnet as E

    num_classes = cfg.get("num_classes", cfg.get("pretrained_cfg", {}).get("num_classes", 1000))
    if num_classes != 1000:
        raise DiscernError(f"{folder}: the classifier has {num_classes} outputs; the 16-class mapping "
                           "needs the 1000 ImageNet-1k classes")
    try:
        model = timm.create_model(cfg["architecture"], pretrained=False, num_classes=1000)
    except Exception as e:  # an unknown architecture name
        raise DiscernError(f"{folder}: timm cannot build {brief(cfg['architecture'])} ({type(e).__name__})") from None
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").is_file():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise DiscernError(f"{folder}: no model.safetensors or pytorch_model.bin")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise DiscernError(f"{folder}: the weights do not match timm's {cfg['architecture']}") from None
    pc = cfg.get("pretrained_cfg", {})
    size = int(pc.get("input_size", (3, 224, 224))[-1])
    crop_pct = float(pc.get("crop_pct", 0.875))
    norm = (tuple(pc.get("mean", E.NORMS["imagenet"][0])), tuple(pc.get("std", E.NORMS["imagenet"][1])))
    resample = pc.get("interpolation", "bicubic")

    def preprocess(images):
        return E.preprocess(images, norm=norm, resize=int(size / crop_pct), crop=size, resample=resample)

    return TorchImageNetClassifier(name, model, preprocess, device, dtype)


def model_name(spec: str) -> str:
    """The decision maker's name in the CSVs: the packaged name, or the folder's name, with every
    character outside ``[A-Za-z0-9.-]`` replaced by "-" (the toolbox splits file names on "_")."""
    base = spec if spec in PACKAGED else Path(spec).resolve().name
    return "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in base) or "model"


def load_classifier(spec: str, device="auto", dtype=None) -> TorchImageNetClassifier:
    """``efficientnet-lite0`` or a model folder (see the module docstring) -> a classifier on ``device``
    (auto, cpu, cuda, cuda:N or a ``torch.device``) in ``dtype`` (None: float32)."""
    device = resolve_device(device)
    name = model_name(spec)
    if spec in PACKAGED:
        return _efficientnet(None, name, device, dtype)
    folder = Path(spec)
    if not folder.exists():
        raise DiscernError(f"{spec}: no such model folder (give efficientnet-lite0 or a Hugging Face / timm "
                           "image-classifier folder)")
    if not folder.is_dir():
        raise DiscernError(f"{spec}: not a folder (give efficientnet-lite0 or a model folder)")
    from .efficientnet import CHECKPOINT

    if (folder / CHECKPOINT).is_file():
        return _efficientnet(folder, name, device, dtype)
    if not (folder / "config.json").is_file():
        raise DiscernError(f"{spec}: not a model folder (no config.json and no {CHECKPOINT})")
    cfg = _read_config(folder)
    if "architecture" in cfg and "model_type" not in cfg:
        return _timm(folder, cfg, name, device, dtype)
    if "model_type" not in cfg:
        raise DiscernError(f"{folder / 'config.json'}: neither a Hugging Face config (no model_type) "
                           "nor a timm config (no architecture)")
    return _huggingface(folder, name, device, dtype)
