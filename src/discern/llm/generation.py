"""Text generation backends behind one interface, and a disk cache that makes evaluations resumable.

``backend.generate(prompts, n, params) -> list[list[str]]``: ``n`` completions per prompt.

- :class:`TransformersBackend`: an in-process Hugging Face causal LM (e.g. SmolLM2-135M from
  ``load_causal_lm("smollm2")``); prompts are left-padded into batches and all ``n`` samples of a
  batch come from one ``generate`` call (``num_return_sequences``), the batched sampling that
  self-consistency and ensemble refinement need.
- :class:`CachedBackend`: an SQLite file keyed by (model, prompt, n, parameters, seed).  Missing
  prompts are generated in chunks and each chunk is committed before the next starts, so an
  interrupted evaluation resumes with no lost and no repeated generations.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch


@dataclass(frozen=True)
class GenParams:
    temperature: float = 0.7  # 0 = greedy
    max_tokens: int = 256
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0
    stop_pattern: str | None = None  # a regex; a completion ends once it matches (in-process backend)


class Backend(Protocol):
    name: str

    def generate(self, prompts: list[str], n: int, params: GenParams) -> list[list[str]]: ...


def truncate_at_stop(text: str, stop: tuple[str, ...], pattern: str | None = None) -> str:
    """Cut ``text`` at the earliest stop string, and after the first match of ``pattern``."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    text = text[:cut]
    m = re.search(pattern, text) if pattern else None
    return text[:m.end()] if m else text


class _StopWhenDone:
    """Per-sequence stopping for ``generate``: a row is done once its completion contains a stop
    string or matches ``pattern`` (e.g. the "Answer: (X)" line that ends a chain of thought)."""

    def __init__(self, tokenizer, prompt_len: int, stop: tuple[str, ...], pattern: str | None):
        self.tokenizer, self.prompt_len, self.stop = tokenizer, prompt_len, tuple(s for s in stop if s)
        self.pattern = re.compile(pattern) if pattern else None
        self.done: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores=None, **kwargs) -> torch.Tensor:
        if self.done is None or self.done.shape[0] != input_ids.shape[0]:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for i in torch.nonzero(~self.done).flatten().tolist():
            text = self.tokenizer.decode(input_ids[i, self.prompt_len:], skip_special_tokens=True)
            if any(s in text for s in self.stop) or (self.pattern is not None and self.pattern.search(text)):
                self.done[i] = True
        return self.done.clone()


# ``generate`` seeds torch's process-wide RNG and switches the tokenizer to left padding for the length of a
# call: both are shared state, so calls from several threads (e.g. ``discern llm serve``) take this lock and
# never interleave, and the same request with the same seed samples the same tokens under concurrency.
_GENERATE_LOCK = threading.RLock()


class TransformersBackend:
    """``batch_size`` prompts per call for greedy decoding; for sampling, as many prompts as keep a
    call within ``max_sequences`` sequences (``n`` each).  With ``n > 1`` each prompt is prefilled
    once and its key/value cache repeated ``n`` times, so the ``n`` samples share the prompt's
    forward pass instead of recomputing it (``shared_prefix=False`` recomputes, as
    ``num_return_sequences`` does).  Sampling stops early once every sequence of a call has hit a
    stop string or ``params.stop_pattern``.  ``chat=True`` wraps each prompt as a user message in the
    tokenizer's chat template (when it has one)."""

    def __init__(self, model, tokenizer, name: str, batch_size: int = 8, max_sequences: int = 48,
                 shared_prefix: bool = True, chat: bool = False):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        self.max_sequences, self.shared_prefix = max_sequences, shared_prefix
        # chat: each prompt is sent as one user message through the tokenizer's chat template
        self.chat = bool(chat and getattr(tokenizer, "chat_template", None))
        self.name = f"{name}+chat" if self.chat else name
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @torch.no_grad()
    def generate(self, prompts: list[str], n: int, params: GenParams) -> list[list[str]]:
        out: list[list[str]] = []
        if self.chat:
            prompts = [self.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                          add_generation_prompt=True) for p in prompts]
        sample = params.temperature > 0
        per = n if sample else 1
        step = max(1, min(self.batch_size, self.max_sequences // per)) if sample else self.batch_size
        with _GENERATE_LOCK:  # the global seed and padding side below are process-wide state
            side = self.tokenizer.padding_side
            self.tokenizer.padding_side = "left"
            try:
                for s in range(0, len(prompts), step):
                    chunk = prompts[s:s + step]
                    enc = self.tokenizer(chunk, return_tensors="pt", padding=True).to(self.model.device)
                    torch.manual_seed(params.seed + s)
                    texts = self._generate(enc, per, params, sample)
                    for i in range(len(chunk)):
                        got = [truncate_at_stop(t, params.stop, params.stop_pattern)
                               for t in texts[i * per:(i + 1) * per]]
                        out.append(got if sample else got * n)  # greedy: n identical completions
            finally:
                self.tokenizer.padding_side = side
        return out

    def _generate(self, enc, per: int, params: GenParams, sample: bool) -> list[str]:
        ids, mask = enc["input_ids"], enc["attention_mask"]
        L = ids.shape[1]
        kw = dict(max_new_tokens=params.max_tokens, do_sample=sample, pad_token_id=self.tokenizer.pad_token_id,
                  temperature=params.temperature if sample else None, top_p=params.top_p if sample else None,
                  top_k=None)
        if params.stop or params.stop_pattern:
            kw["stopping_criteria"] = [_StopWhenDone(self.tokenizer, L, params.stop, params.stop_pattern)]
        if per > 1 and self.shared_prefix and L > 1:
            from .cascade import sample_shared_prefix

            stopper = _StopWhenDone(self.tokenizer, 0, params.stop, params.stop_pattern) \
                if params.stop or params.stop_pattern else None
            gen = sample_shared_prefix(self.model, ids, mask, per, params.max_tokens, params.temperature,
                                       params.top_p, self.model.generation_config.eos_token_id,
                                       self.tokenizer.pad_token_id, stopper)
            return self.tokenizer.batch_decode(gen, skip_special_tokens=True)
        gen = self.model.generate(input_ids=ids, attention_mask=mask, num_return_sequences=per, **kw)
        return self.tokenizer.batch_decode(gen[:, L:], skip_special_tokens=True)


class CachedBackend:
    """Wraps a backend with an SQLite cache; ``calls`` counts prompts sent to the backend."""

    def __init__(self, backend: Backend, path: str | Path, chunk: int = 8):
        self.backend, self.name, self.chunk, self.calls = backend, backend.name, chunk, 0
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.execute("CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, model TEXT, prompt TEXT, "
                        "n INTEGER, params TEXT, completions TEXT)")
        self.db.commit()

    def key(self, prompt: str, n: int, params: GenParams) -> str:
        blob = json.dumps({"model": self.name, "prompt": prompt, "n": n, "params": asdict(params)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _get(self, key: str) -> list[str] | None:
        row = self.db.execute("SELECT completions FROM generations WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def generate(self, prompts: list[str], n: int, params: GenParams) -> list[list[str]]:
        keys = [self.key(p, n, params) for p in prompts]
        found = {k: v for k in dict.fromkeys(keys) if (v := self._get(k)) is not None}
        todo = list(dict.fromkeys(p for p, k in zip(prompts, keys) if k not in found))
        for s in range(0, len(todo), self.chunk):
            part = todo[s:s + self.chunk]
            self.calls += len(part)
            res = self.backend.generate(part, n, params)
            with self.db:  # one transaction per chunk: a crash loses at most the chunk in flight
                for p, r in zip(part, res):
                    k = self.key(p, n, params)
                    self.db.execute("INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?)",
                                    (k, self.name, p, n, json.dumps(asdict(params)), json.dumps(r)))
                    found[k] = r
        return [found[k] for k in keys]

    def close(self) -> None:
        self.db.close()
