"""Choice of the attention kernel of Hugging Face encoders trained here."""

from __future__ import annotations

from discern.core import ConfigError

KERNELS = ("auto", "eager", "sdpa")


def attention_kernel(name: str) -> str:
    """``attn_implementation`` for ``name``: ``"auto"`` is ``"sdpa"`` when CUDA is available and
    ``"eager"`` (matmul + softmax) otherwise: on the CPU, the flash kernel behind SDPA has a slow
    backward pass (33% of an ELECTRA quick step on 2 cores, against 6% for eager's matmuls)."""
    if name not in KERNELS:
        raise ConfigError(f"model.attention must be one of {', '.join(KERNELS)}, not {name!r}")
    if name != "auto":
        return name
    import torch

    return "sdpa" if torch.cuda.is_available() else "eager"
