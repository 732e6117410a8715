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
import json
import sqlite3
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


class Backend(Protocol):
    name: str

    def generate(self, prompts: list[str], n: int, params: GenParams) -> list[list[str]]: ...


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut ``text`` at the earliest stop string."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


class TransformersBackend:
    def __init__(self, model, tokenizer, name: str, batch_size: int = 8):
        self.model, self.tokenizer, self.name, self.batch_size = model.eval(), tokenizer, name, batch_size
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @torch.no_grad()
    def generate(self, prompts: list[str], n: int, params: GenParams) -> list[list[str]]:
        out: list[list[str]] = []
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            for s in range(0, len(prompts), self.batch_size):
                chunk = prompts[s:s + self.batch_size]
                enc = self.tokenizer(chunk, return_tensors="pt", padding=True).to(self.model.device)
                torch.manual_seed(params.seed + s)
                sample = params.temperature > 0
                gen = self.model.generate(
                    **enc, max_new_tokens=params.max_tokens, do_sample=sample, num_return_sequences=n if sample else 1,
                    temperature=params.temperature if sample else None, top_p=params.top_p if sample else None,
                    top_k=None, pad_token_id=self.tokenizer.pad_token_id)
                texts = self.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                per = n if sample else 1
                for i in range(len(chunk)):
                    got = [truncate_at_stop(t, params.stop) for t in texts[i * per:(i + 1) * per]]
                    out.append(got if sample else got * n)  # greedy: n identical completions
        finally:
            self.tokenizer.padding_side = side
        return out


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
