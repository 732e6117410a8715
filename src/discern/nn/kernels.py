"""Choice of the attention kernel of Hugging Face encoders trained here."""

from __future__ import annotations

from discern.core import ConfigError

KERNELS = ("auto", "eager", "sdpa")


def attention_kernel(name: str, cuda: bool | None = None) -> str | None:
    """``attn_implementation`` for ``name``; ``cuda``: whether the model runs on CUDA (default:
    whether CUDA is available).  ``"auto"`` is ``"eager"`` (matmul + softmax) on the CPU, where
    the flash kernel behind SDPA has a slow backward pass (33% of an ELECTRA quick step on 2
    cores, against 7% for eager's matmuls), and ``None`` on CUDA: the library's default (SDPA
    where the model supports it)."""
    if name not in KERNELS:
        raise ConfigError(f"model.attention must be one of {', '.join(KERNELS)}, not {name!r}")
    if name != "auto":
        return name
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    return None if cuda else "eager"
