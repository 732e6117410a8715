"""The language model behind the strategies: a ``discern.llm`` backend from a command-line spec, or the
reproduction's in-process model with its generation cache.

- ``make_backend("qwen2.5-0.5b" | "qwen2.5-1.5b" | "smollm2" | folder | hub id | http(s)://URL, ...)``: an in-process transformers model
  (``TransformersBackend``) or an OpenAI-compatible server (``OpenAIClient``).
- ``cached_model_backend(model, dtype, cache, max_sequences)``: the in-process model behind an SQLite
  cache (``CachedBackend``), so an interrupted run resumes without repeating a generation.
"""

from __future__ import annotations

from pathlib import Path

BACKEND_HELP = ("qwen2.5-0.5b, qwen2.5-1.5b or smollm2 (registry models, 'discern data fetch NAME'), a model folder, "
                ".gguf file or hub id (in-process), or an http(s):// OpenAI-compatible URL")


def make_backend(spec: str, model: str | None = None, chat: bool = False, dtype: str = "bfloat16",
                 api_key: str | None = None, concurrency: int = 4, device=None):
    """A backend for ``spec``: a server URL (with or without ``/v1``) gets the OpenAI-compatible client
    (``model`` is the name sent to it; ``api_key``, else ``$OPENAI_API_KEY``; ``concurrency`` requests in
    flight), anything else is loaded in process in ``dtype`` (a name: float32, bfloat16, float16) and moved
    to ``device`` (None: it stays on the CPU); ``model`` names it in the cache key."""
    if spec.startswith(("http://", "https://")):
        from discern.llm.client import OpenAIClient

        return OpenAIClient(spec, model or spec, api_key=api_key, max_concurrency=concurrency, chat=chat)
    import torch

    from discern.llm import load_causal_lm
    from discern.llm.generation import TransformersBackend

    m, tok = load_causal_lm(spec, dtype=getattr(torch, dtype))
    if device is not None:
        m.to(device)
    name = model or spec
    return TransformersBackend(m, tok, name if dtype == "float32" else f"{name}@{dtype}", chat=chat)


def cached_model_backend(model: str, dtype: str, cache, max_sequences: int = 48):
    """The in-process ``model`` in ``dtype`` behind the SQLite generation cache ``cache``."""
    import torch

    from discern.llm import load_causal_lm
    from discern.llm.generation import CachedBackend, TransformersBackend

    m, tok = load_causal_lm(model, dtype=getattr(torch, dtype))
    return CachedBackend(TransformersBackend(m, tok, Path(str(model)).name, max_sequences=max_sequences), cache)
