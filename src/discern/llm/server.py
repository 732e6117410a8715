"""An OpenAI-compatible HTTP server over any generation backend (``discern llm serve``), so a local
model serves other tools and the HTTP client is tested against a real server.

Endpoints: ``GET /v1/models``, ``POST /v1/completions`` (prompt or list of prompts, ``n``,
``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed``) and ``POST /v1/chat/completions``
(``messages``, rendered with the tokenizer's chat template when the backend has one).  Choices are
ordered prompt-major, as the OpenAI API orders them.
"""

from __future__ import annotations

from .generation import GenParams


def _params(body: dict) -> GenParams:
    stop = body.get("stop") or ()
    return GenParams(temperature=float(body.get("temperature", 1.0)), max_tokens=int(body.get("max_tokens", 16)),
                     top_p=float(body.get("top_p", 1.0)), stop=(stop,) if isinstance(stop, str) else tuple(stop),
                     seed=int(body.get("seed") or 0))


def render_chat(backend, messages: list[dict]) -> str:
    tok = getattr(backend, "tokenizer", None)
    if tok is not None and getattr(tok, "chat_template", None):
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


def make_app(backend, model_name: str | None = None):
    from fastapi import FastAPI, HTTPException

    name = model_name or backend.name
    app = FastAPI(title=f"discern llm serve ({name})")

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "discern"}]}

    @app.post("/v1/completions")
    def completions(body: dict):
        prompts = body.get("prompt")
        if prompts is None:
            raise HTTPException(400, "prompt is required")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        n = int(body.get("n", 1))
        outs = backend.generate(prompts, n, _params(body))
        choices = [{"index": i * n + j, "text": t, "finish_reason": "stop", "logprobs": None}
                   for i, o in enumerate(outs) for j, t in enumerate(o)]
        return {"object": "text_completion", "model": name, "choices": choices}

    @app.post("/v1/chat/completions")
    def chat(body: dict):
        messages = body.get("messages")
        if not messages:
            raise HTTPException(400, "messages are required")
        n = int(body.get("n", 1))
        (out,) = backend.generate([render_chat(backend, messages)], n, _params(body))
        return {"object": "chat.completion", "model": name,
                "choices": [{"index": j, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                            for j, t in enumerate(out)]}

    return app


def serve(backend, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None) -> None:
    import uvicorn

    uvicorn.run(make_app(backend, model_name), host=host, port=port, log_level="warning")
