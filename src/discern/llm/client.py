"""A client for OpenAI-compatible servers (vLLM, llama.cpp, ``discern llm serve``, hosted APIs) behind
the generation interface: completions and chat, ``n`` emulated with extra requests (distinct
seeds) where a server returns fewer choices than asked, retries with exponential back-off on
connection errors, 429 and 5xx, and a limit on concurrent requests.

The base URL may end in ``/v1`` (as the ``openai`` SDK takes it) or not; the API key is the one given,
else ``$OPENAI_API_KEY``, else none."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from discern.core.errors import DiscernError

from .generation import GenParams, truncate_at_stop


class OpenAIClient:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, max_concurrency: int = 4,
                 retries: int = 4, backoff: float = 0.5, timeout: float = 120.0, chat: bool = False):
        import httpx

        if max_concurrency < 1:
            raise DiscernError(f"max_concurrency must be at least 1, not {max_concurrency}")
        base = base_url.rstrip("/")
        self.base_url = base[:-3] if base.endswith("/v1") else base
        self.model, self.name, self.chat = model, model, chat
        self.retries, self.backoff, self.max_concurrency = retries, backoff, max_concurrency
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(timeout=timeout, headers=headers)
        self.requests = 0  # HTTP requests sent, retries included

    def _post(self, path: str, body: dict) -> dict:
        import httpx

        delay = self.backoff
        for attempt in range(self.retries + 1):
            self.requests += 1
            try:
                r = self.http.post(self.base_url + path, json=body)
                if r.status_code == 429 or r.status_code >= 500:
                    raise httpx.HTTPStatusError(f"status {r.status_code}", request=r.request, response=r)
                if r.status_code >= 400:
                    raise DiscernError(f"{self.base_url}{path}: {r.status_code} {r.text[:200]}")
                return r.json()
            except (httpx.TransportError, httpx.HTTPStatusError) as e:
                if attempt == self.retries:
                    raise DiscernError(f"{self.base_url}{path}: failed after {attempt + 1} attempts ({e})") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _one(self, prompt: str, n: int, params: GenParams) -> list[str]:
        body = {"model": self.model, "temperature": params.temperature, "max_tokens": params.max_tokens,
                "top_p": params.top_p, "stop": list(params.stop) or None}
        out: list[str] = []
        seed = params.seed
        while len(out) < n:  # servers that ignore n return one choice: ask again with the next seed
            body.update({"n": n - len(out), "seed": seed})
            if self.chat:
                res = self._post("/v1/chat/completions", {**body, "messages": [{"role": "user", "content": prompt}]})
                got = [c["message"]["content"] for c in sorted(res["choices"], key=lambda c: c["index"])]
            else:
                res = self._post("/v1/completions", {**body, "prompt": prompt})
                got = [c["text"] for c in sorted(res["choices"], key=lambda c: c["index"])]
            if not got:
                raise DiscernError(f"{self.base_url}: a response with no choices")
            out.extend(truncate_at_stop(t, params.stop, params.stop_pattern) for t in got[:n - len(out)])
            seed += 1
        return out

    def generate(self, prompts: list[str], n: int, params: GenParams) -> list[list[str]]:
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(lambda p: self._one(p, n, params), prompts))

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"OpenAIClient({self.base_url!r}, {self.model!r}, params={asdict(GenParams())})"
