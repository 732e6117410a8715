"""L1: small torch pieces shared by more than one paper."""

from .sampling import gumbel_sample

__all__ = ["gumbel_sample"]
