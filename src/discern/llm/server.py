"""An OpenAI-compatible HTTP server over any generation backend (``discern llm serve``), so a local
model serves other tools and the HTTP client is tested against a real server.

Endpoints: ``GET /v1/models``, ``POST /v1/completions`` (prompt or list of prompts, ``n``,
``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed``) and ``POST /v1/chat/completions``
(``messages``, rendered with the tokenizer's chat template when the backend has one; ``max_tokens`` or
``max_completion_tokens``).  Choices are ordered prompt-major, as the OpenAI API orders them.

Every request body is validated before the backend sees it (strict types, so ``true`` is not an
integer; bounded ``n``, ``max_tokens``, prompt count and lengths, ``stop``, ``temperature``, ``top_p``,
``seed``, messages); unknown fields are ignored, as OpenAI clients send many.  A malformed JSON body is
answered 400, an invalid value 422, an oversized body 413 (before it is parsed), each with an
OpenAI-style ``{"error": {"message", "type", "param", "code"}}``.  With ``api_key`` set every ``/v1/``
route requires ``Authorization: Bearer <key>`` (401 otherwise, compared in constant time).  A missing
``seed`` means seed 0; ``stream: true`` is refused (422: no streaming); a backend failure is a 500
``server_error`` that names no internals.

The backend runs on one worker thread: requests queue for it one at a time (at most ``max_queue`` in
the queue, the running one included; 503 beyond), so the event loop keeps answering (``/v1/models``) during a generation, and a
request's ``seed`` reproduces its output however many requests arrive at once.
"""

import asyncio
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .generation import GenParams

log = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1


class APIError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``, the way the OpenAI API answers."""

    def __init__(self, status: int, message: str, param: str | None = None, type: str = "invalid_request_error",
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.type, self.code = status, message, param, type, code
        self.headers = headers

    def response(self):
        from fastapi.responses import JSONResponse

        message = " ".join(self.message.split())  # one line
        return JSONResponse({"error": {"message": message, "type": self.type, "param": self.param,
                                       "code": self.code}}, status_code=self.status, headers=self.headers)


def _listify(v):
    """A single string stands for a one-item list (``prompt``, ``stop``); null for an empty ``stop``."""
    return [v] if isinstance(v, str) else v


def request_models(max_n: int = 16, max_tokens_limit: int = 2048, max_prompts: int = 64,
                   max_prompt_chars: int = 32_768, max_messages: int = 256):
    """The pydantic models of the two POST bodies under these limits: ``(Completion, Chat)``."""
    Text = Annotated[str, Field(max_length=max_prompt_chars)]
    Stop = Annotated[str, Field(max_length=100)]

    class Sampling(BaseModel):
        model_config = ConfigDict(strict=True, extra="ignore")

        model: Annotated[str, Field(max_length=256)] | None = None
        n: Annotated[int, Field(ge=1, le=max_n)] | None = None
        max_tokens: Annotated[int, Field(ge=1, le=max_tokens_limit)] | None = None
        temperature: Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)] | None = None
        top_p: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
        stop: Annotated[list[Stop], Field(max_length=4), BeforeValidator(_listify)] | None = None
        seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
        stream: bool | None = None

        @field_validator("stream")
        @classmethod
        def _no_stream(cls, v):
            if v:
                raise ValueError("streaming is not supported")
            return v

        def params(self, max_tokens: int | None = None) -> GenParams:
            return GenParams(temperature=1.0 if self.temperature is None else self.temperature,
                             max_tokens=max_tokens or self.max_tokens or 16,
                             top_p=1.0 if self.top_p is None else self.top_p, stop=tuple(self.stop or ()),
                             seed=self.seed or 0)

    class Completion(Sampling):
        prompt: Annotated[list[Annotated[str, Field(min_length=1, max_length=max_prompt_chars)]],
                          Field(min_length=1, max_length=max_prompts), BeforeValidator(_listify)]

    class Message(BaseModel):
        model_config = ConfigDict(strict=True, extra="ignore")

        role: Literal["system", "user", "assistant"]
        content: Text

    class Chat(Sampling):
        messages: Annotated[list[Message], Field(min_length=1, max_length=max_messages)]
        max_completion_tokens: Annotated[int, Field(ge=1, le=max_tokens_limit)] | None = None

    return Completion, Chat


_FIELDS = {"model", "n", "max_tokens", "temperature", "top_p", "stop", "seed", "stream", "prompt", "messages",
           "role", "content", "max_completion_tokens"}


def _invalid(e: ValidationError) -> APIError:
    """400 for a body that is not JSON, else 422 naming the most specific field that failed."""
    errors = e.errors(include_url=False, include_input=False, include_context=False)
    if any(err["type"] == "json_invalid" for err in errors):
        detail = errors[0]["msg"].removeprefix("Invalid JSON: ")
        return APIError(400, f"the request body is not valid JSON: {detail}")
    err = max(errors, key=lambda x: len(x["loc"]))
    loc = [str(p) for p in err["loc"] if isinstance(p, int) or p in _FIELDS]
    param = ".".join(loc) or None
    msg = err["msg"]
    if err["type"] == "model_type" and not loc:
        msg = "the request body must be a JSON object"
    elif err["type"] == "list_type" and param in ("prompt", "stop"):
        msg = "Input should be a string or an array of strings"
    return APIError(422, f"{param}: {msg}" if param else msg, param=param)


def render_chat(backend, messages: list[dict]) -> str:
    tok = getattr(backend, "tokenizer", None)
    if tok is not None and getattr(tok, "chat_template", None):
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


class _Worker:
    """One thread runs every backend call, in arrival order; at most ``max_queue`` calls wait."""

    def __init__(self, max_queue: int):
        self.max_queue, self.waiting, self.pool = max_queue, 0, None

    async def run(self, fn, *args):
        if self.waiting >= self.max_queue:
            raise APIError(503, "the server is busy: too many requests are waiting", type="server_error")
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="discern-llm-serve")
        self.waiting += 1
        try:  # a request cancelled while it waits is dropped from the queue (the future is cancelled)
            return await asyncio.wrap_future(self.pool.submit(fn, *args))
        finally:
            self.waiting -= 1

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


class _BearerAuth:
    """ASGI middleware: every ``/v1`` path needs ``Authorization: Bearer <key>`` (401 otherwise)."""

    def __init__(self, app, key: str):
        self.app, self.key = app, key.encode("utf-8")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (scope.get("path", "") + "/").startswith("/v1/"):
            from starlette.requests import Request

            from discern.core.serving import bearer_token

            token = bearer_token(Request(scope))
            # compare_digest takes time independent of where the bytes differ
            if token is None or not hmac.compare_digest(token.encode("latin-1", "replace"), self.key):
                err = APIError(401, "a valid API key is required: Authorization: Bearer <key>",
                               code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
                return await err.response()(scope, receive, send)
        return await self.app(scope, receive, send)


def make_app(backend, model_name: str | None = None, *, api_key: str | None = None, max_tokens_limit: int = 2048,
             max_n: int = 16, max_prompts: int = 64, max_prompt_chars: int = 32_768, max_messages: int = 256,
             max_body_bytes: int = 1 << 20, max_queue: int = 64):
    from fastapi import FastAPI, Request
    from starlette.exceptions import HTTPException

    from discern.core.serving import SECURITY_HEADERS, RequestLimits

    name = model_name or backend.name
    Completion, Chat = request_models(max_n, max_tokens_limit, max_prompts, max_prompt_chars, max_messages)
    worker = _Worker(max_queue)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        worker.close()

    app = FastAPI(title=f"discern llm serve ({name})", lifespan=lifespan)
    if api_key:
        app.add_middleware(_BearerAuth, key=api_key)
    app.add_middleware(RequestLimits, max_bytes=max_body_bytes, headers=SECURITY_HEADERS,  # outermost
                       error_body=lambda status, message: {"error": {"message": message, "type": "invalid_request_error",
                                                                     "param": None, "code": None}})

    @app.exception_handler(APIError)
    async def api_error(_request, exc: APIError):
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        return APIError(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None)).response()

    async def parse(request: Request, model):
        try:
            return model.model_validate_json(await request.body())
        except ValidationError as e:
            raise _invalid(e) from None

    async def generate(prompts: list[str], n: int, params: GenParams) -> list[list[str]]:
        try:
            return await worker.run(backend.generate, prompts, n, params)
        except APIError:
            raise
        except Exception:
            log.exception("generation failed")
            raise APIError(500, "the model failed to generate a completion", type="server_error") from None

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "discern"}]}

    @app.post("/v1/completions")
    async def completions(request: Request):
        req = await parse(request, Completion)
        n = req.n or 1
        outs = await generate(req.prompt, n, req.params())
        choices = [{"index": i * n + j, "text": t, "finish_reason": "stop", "logprobs": None}
                   for i, o in enumerate(outs) for j, t in enumerate(o)]
        return {"object": "text_completion", "model": name, "choices": choices}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        req = await parse(request, Chat)
        n = req.n or 1
        try:
            prompt = render_chat(backend, [m.model_dump() for m in req.messages])
        except Exception as e:  # e.g. a template that insists on alternating roles
            raise APIError(422, f"the messages do not fit the model's chat template: {e}", param="messages") from None
        (out,) = await generate([prompt], n, req.params(req.max_completion_tokens))
        return {"object": "chat.completion", "model": name,
                "choices": [{"index": j, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                            for j, t in enumerate(out)]}

    return app


def serve(backend, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None, **limits) -> None:
    """Serve ``make_app(backend, model_name, **limits)`` (``api_key``, ``max_tokens_limit``, ...) with uvicorn."""
    import uvicorn

    uvicorn.run(make_app(backend, model_name, **limits), host=host, port=port, log_level="warning")
