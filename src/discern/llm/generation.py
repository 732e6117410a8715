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

    @property
    def context_length(self) -> int | None:
        """The longest sequence (prompt and completion) the model's positions allow; None if unbounded."""
        cfg = self.model.config
        for key in ("max_position_embeddings", "n_positions"):
            if isinstance(getattr(cfg, key, None), int):
                return getattr(cfg, key)
        return None

    def encode(self, prompt: str) -> list[int]:
        """The token ids ``generate`` would feed for ``prompt`` (the tokenizer's special tokens included)."""
        return self.tokenizer(prompt)["input_ids"]

    @torch.no_grad()
    def complete(self, prompt: str | list[int], n: int, params: GenParams, logprobs: int | None = None,
                 echo: bool = False, on_text=None, should_stop=None) -> Completed:
        """``n`` completions of one prompt (text, or token ids used as they are) with what an OpenAI-style
        server reports: finish reasons, token counts and, with ``logprobs=k``, each generated token's
        log-probability under the model (before temperature and top-p) with the ``k`` most likely
        tokens; ``echo`` adds the prompt's own log-probabilities (one forward pass).  ``on_text(text)``
        receives the completion decoded so far after every token (one sequence: ``n == 1`` or greedy);
        ``should_stop()`` returning true ends the generation early (a client that disconnected).
        ``max_tokens == 0`` generates nothing (with ``echo``: score the prompt only)."""
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise ValueError("the prompt has no tokens")
        dev = self.model.device
        x = torch.tensor([ids], device=dev)
        sample = params.temperature > 0
        rows = n if sample else 1
        ends = end_token_ids(self.model, self.tokenizer)
        out = Completed(ids, [])
        with _GENERATE_LOCK:
            torch.manual_seed(params.seed)
            if echo and logprobs is not None:
                logp = self.model(input_ids=x).logits[0, :-1].float().log_softmax(-1)
                chosen = logp.gather(1, x[0, 1:, None])[:, 0].tolist()
                out.prompt_logprobs = [None] + chosen
                out.prompt_top = [None] + _top(logp, logprobs)
            if params.max_tokens == 0:
                out.choices = [Scored("", "length", []) for _ in range(n)]
                return out
            kw = dict(max_new_tokens=params.max_tokens, do_sample=sample, top_k=None,
                      temperature=params.temperature if sample else None, top_p=params.top_p if sample else None,
                      pad_token_id=self.tokenizer.pad_token_id, num_return_sequences=rows,
                      return_dict_in_generate=True, output_logits=logprobs is not None)
            criteria = []
            if params.stop or params.stop_pattern:
                criteria.append(_StopWhenDone(self.tokenizer, len(ids), params.stop, params.stop_pattern))
            if should_stop is not None:
                criteria.append(_Cancelled(should_stop))
            if criteria:
                kw["stopping_criteria"] = criteria
            if on_text is not None and rows == 1:
                kw["streamer"] = _TextStreamer(self.tokenizer, on_text, ends)
            res = self.model.generate(input_ids=x, attention_mask=torch.ones_like(x), **kw)
            gen_all = res.sequences[:, len(ids):].tolist()
            logits = torch.stack(res.logits, 1) if logprobs is not None else None
        for r, gen in enumerate(gen_all):
            choice = self._finish(gen, params)
            if logits is not None:
                logp = logits[r, :len(choice.token_ids)].float().log_softmax(-1)
                choice.logprobs = logp.gather(1, torch.tensor(choice.token_ids, dtype=torch.long,
                                                              device=logp.device)[:, None])[:, 0].tolist()
                choice.top = _top(logp, logprobs)
            out.choices.append(choice)
        if not sample:
            out.choices = [out.choices[0]] + [Scored(c.text, c.finish_reason, list(c.token_ids),
                                                     c.logprobs, c.top) for c in out.choices * (n - 1)]
        return out

    def _finish(self, gen: list[int], params: GenParams) -> Scored:
        """Cut a generated row after its first end token (kept among the tokens, as generated and
        counted, not in the text), then at the first stop string; the tokens kept are those up to the
        one that completed the stop string."""
        ends = end_token_ids(self.model, self.tokenizer) | (
            {self.tokenizer.pad_token_id} if self.tokenizer.pad_token_id is not None else set())
        cut = next((i for i, t in enumerate(gen) if t in ends), None)
        finish = "length" if cut is None else "stop"
        gen = gen if cut is None else gen[:cut + 1]
        decode = lambda k: self.tokenizer.decode(gen[:k], skip_special_tokens=True)  # noqa: E731
        text = decode(len(gen))
        cut_text = truncate_at_stop(text, params.stop, params.stop_pattern)
        if cut_text != text:
            lo, hi = 1, len(gen)  # the fewest tokens whose text already holds the stop string
            while lo < hi:
                mid = (lo + hi) // 2
                t = decode(mid)
                if truncate_at_stop(t, params.stop, params.stop_pattern) != t:
                    hi = mid
                else:
                    lo = mid + 1
            gen, finish = gen[:lo], "stop"
        return Scored(cut_text, finish, gen)


@dataclass
class Scored:
    """One completion as an OpenAI-style answer reports it: the text, why it ended (``"stop"``: the
    end-of-sequence token or a stop string; ``"length"``: ``max_tokens`` reached), its token ids and,
    when asked, each token's log-probability and the ``k`` most likely tokens at its position."""

    text: str
    finish_reason: str
    token_ids: list[int]
    logprobs: list[float] | None = None
    top: list[list[tuple[int, float]]] | None = None


@dataclass
class Completed:
    """The prompt's token ids, its per-token log-probabilities when echoed (the first is ``None``:
    nothing predicts it) and the completions."""

    prompt_ids: list[int]
    choices: list[Scored]
    prompt_logprobs: list[float | None] | None = None
    prompt_top: list[list[tuple[int, float]] | None] | None = None


class _Cancelled:
    """A stopping criterion that ends every row once ``should_stop()`` is true (a client went away)."""

    def __init__(self, should_stop):
        self.should_stop = should_stop

    def __call__(self, input_ids, scores=None, **kwargs):
        return torch.full((input_ids.shape[0],), bool(self.should_stop()), dtype=torch.bool, device=input_ids.device)


class _TextStreamer:
    """``generate``'s streamer protocol (``put``/``end``) for one sequence: calls ``on_text`` with the
    whole completion decoded so far after each new token (the first ``put`` is the prompt)."""

    def __init__(self, tokenizer, on_text, ends: set[int]):
        self.tokenizer, self.on_text, self.ends = tokenizer, on_text, ends
        self.ids: list[int] = []
        self.prompt_seen = self.ended = False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for t in value.flatten().tolist():
            self.ended = self.ended or t in self.ends
            if not self.ended:
                self.ids.append(t)
        self.on_text(self.tokenizer.decode(self.ids, skip_special_tokens=True))

    def end(self) -> None:
        pass


def _top(logp: torch.Tensor, k: int) -> list[list[tuple[int, float]]]:
    """The ``k`` most likely (token id, log-probability) pairs of each row of ``logp``."""
    if k <= 0:
        return [[] for _ in range(logp.shape[0])]
    v, i = logp.topk(k, dim=-1)
    return [list(zip(ii, vv)) for ii, vv in zip(i.tolist(), v.tolist())]


def end_token_ids(model, tokenizer) -> set[int]:
    """The ids that end a completion: the generation config's end-of-sequence id(s) and the tokenizer's."""
    ends = model.generation_config.eos_token_id
    ends = set(ends if isinstance(ends, (list, tuple)) else [ends] if ends is not None else [])
    if tokenizer.eos_token_id is not None:
        ends.add(tokenizer.eos_token_id)
    return ends


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
