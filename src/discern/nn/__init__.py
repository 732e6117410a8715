"""L1: small torch pieces shared by more than one paper."""

from .kernels import attention_kernel, bf16_stream, fp32_narrow_layer_norms
from .ops import row_cross_entropy, top_hit
from .sampling import gumbel_sample

__all__ = ["attention_kernel", "bf16_stream", "fp32_narrow_layer_norms", "gumbel_sample", "row_cross_entropy",
           "top_hit"]
