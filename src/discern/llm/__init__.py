"""L1: causal language-model backends: loading (Hugging Face folders, hub ids, the SmolLM2 GGUF), exact
sequence log-likelihoods, and text generation (``generation``: batched sampling, an SQLite cache)."""

from .likelihood import choice_logprobs, sequence_logprobs
from .models import check_causal_lm, clear_cache, load_causal_lm, smollm2_path

__all__ = ["check_causal_lm", "choice_logprobs", "clear_cache", "load_causal_lm", "sequence_logprobs", "smollm2_path"]
