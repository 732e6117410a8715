"""Choice of the attention kernel of Hugging Face encoders trained here, and their residual
stream's dtype under autocast."""

from __future__ import annotations

import torch

from discern.core import ConfigError

KERNELS = ("auto", "eager", "sdpa", "fused")

#: Hugging Face model types whose attention passes the fused kernel nothing but query, key, value,
#: an additive mask, the scale and dropout (checked against eager in ``tests/nn/test_attention.py``);
#: other models keep ``eager`` under ``auto`` (a relative-position bias or a sliding window would
#: be ignored)
FUSED_MODEL_TYPES = ("electra", "bert")


def attention_kernel(name: str, cuda: bool | None = None, model_type: str | None = None) -> str | None:
    """``attn_implementation`` for ``name``; ``cuda``: whether the model runs on CUDA (default:
    whether CUDA is available); ``model_type``: the Hugging Face ``config.model_type``.

    - ``"auto"``: on CUDA ``None`` (the library's default, SDPA where the model supports it); on
      the CPU ``"fused"`` for the model types of :data:`FUSED_MODEL_TYPES`, else ``"eager"``.  On
      the CPU the flash kernel behind SDPA has a slow backward pass (33% of an ELECTRA quick step
      on 2 cores, against 7% for eager's matmuls);
    - ``"fused"``: the eager formula with the scale and a key-padding row folded into the score
      product and a written-out backward (:mod:`discern.nn.attention`), registered with
      ``transformers`` under ``"discern_fused"``;
    - ``"eager"``, ``"sdpa"``: Hugging Face's own."""
    if name not in KERNELS:
        raise ConfigError(f"model.attention must be one of {', '.join(KERNELS)}, not {name!r}")
    if name == "auto":
        if cuda is None:
            cuda = torch.cuda.is_available()
        if cuda:
            return None
        name = "fused" if model_type in FUSED_MODEL_TYPES else "eager"
    if name == "fused":
        from .attention import register

        return register()
    return name


def _to_bf16_under_autocast(module, args, output):
    if (isinstance(output, torch.Tensor) and output.dtype == torch.float32
            and torch.is_autocast_enabled(output.device.type)
            and torch.get_autocast_dtype(output.device.type) == torch.bfloat16):
        return output.to(torch.bfloat16)
    return output


def bf16_stream(embeddings) -> None:
    """Make the residual stream of a Hugging Face encoder bf16 under bf16 autocast.

    Under CPU autocast the embedding module's LayerNorm returns fp32 (fp32 tables and
    LayerNorm weights), every residual add with it stays fp32, and each linear layer then
    casts its fp32 input to bf16 again (the query, key and value projections three times), in
    the forward and again for the gradients: 30 activation copies per quick ELECTRA step.
    A forward hook on ``embeddings`` casts its output to bf16 once, so the residual adds and
    LayerNorms downstream take and give bf16 (LayerNorm still normalises in fp32 inside the
    kernel; weights and their gradients stay fp32).  An encoder with a factorised embedding
    (a projection after the embeddings) already has a bf16 stream; this gives the others the
    same.  Outside bf16 autocast the hook returns the output unchanged.  Idempotent."""
    if getattr(embeddings, "_discern_bf16_stream", False):
        return
    embeddings.register_forward_hook(_to_bf16_under_autocast)
    embeddings._discern_bf16_stream = True


#: widest LayerNorm that :func:`fp32_narrow_layer_norms` moves to fp32: PyTorch's bf16 LayerNorm
#: kernel (forward + backward, 32 x 128 rows, 2 CPU cores) takes 1.11 ms at width 8 and 0.35 ms at
#: 16 against 0.47 and 0.18 ms in fp32 with the casts; from width 32 on bf16 is the faster
NARROW_LAYER_NORM = 16


def _narrow_ln_in(module, args):
    x = args[0]
    if (x.dtype == torch.bfloat16 and torch.is_autocast_enabled(x.device.type)
            and torch.get_autocast_dtype(x.device.type) == torch.bfloat16):
        module._discern_cast_back = True
        return (x.float(),) + tuple(args[1:])
    module._discern_cast_back = False
    return None


def _narrow_ln_out(module, args, output):
    if module._discern_cast_back:
        return output.to(torch.bfloat16)
    return output


def fp32_narrow_layer_norms(model, max_width: int = NARROW_LAYER_NORM) -> int:
    """Under bf16 autocast, every ``nn.LayerNorm`` of ``model`` at most ``max_width`` wide
    takes its bf16 input in fp32 and returns bf16 again: the same normalisation (PyTorch's bf16
    kernel also computes in fp32 inside), up to the rounding of its gradient, in less than half
    the time at width 8 (Electric's quick noise towers).  Outside bf16 autocast nothing changes.
    Returns how many layers this call hooked; idempotent."""
    n = 0
    for m in model.modules():
        if (isinstance(m, torch.nn.LayerNorm) and m.normalized_shape and m.normalized_shape[-1] <= max_width
                and not getattr(m, "_discern_narrow_fp32", False)):
            m.register_forward_pre_hook(_narrow_ln_in)
            m.register_forward_hook(_narrow_ln_out)
            m._discern_narrow_fp32 = True
            m._discern_cast_back = False
            n += 1
    return n
