"""An OpenAI-compatible HTTP server over any generation backend (``discern llm serve``), so a local
model serves other tools (the official ``openai`` SDK, lm-evaluation-harness's ``local-completions``
and ``local-chat-completions``) and the HTTP client is tested against a real server.

Endpoints:

- ``GET /v1/models``;
- ``POST /v1/completions``: ``prompt`` as a string, a list of strings, a list of token ids or a list of
  such lists; ``n``, ``temperature``, ``max_tokens`` (default 16, as OpenAI's; ``0`` with ``echo`` scores
  the prompt only), ``top_p``, ``stop``, ``seed``, ``echo``, ``logprobs`` (0-5: each token's
  log-probability with the most likely alternatives, the prompt's too with ``echo``: how harnesses
  compute log-likelihoods), ``stream``;
- ``POST /v1/chat/completions``: ``messages`` rendered with the tokenizer's chat template when it has
  one; ``max_completion_tokens`` or ``max_tokens`` (default: the server's limit), ``logprobs`` /
  ``top_logprobs`` (0-20), ``stream`` with ``stream_options.include_usage``;
- ``GET /tokenizer_info``, ``POST /tokenize``, ``POST /detokenize``: the model's tokenizer, in the shape
  vLLM serves it (lm-evaluation-harness finds them and then sends token ids).

Answers carry ``id``, ``created``, ``model``, ``usage`` (prompt, completion and total tokens) and a
``finish_reason`` of ``"stop"`` (end of sequence or a stop string) or ``"length"`` (``max_tokens``
reached).  Choices are ordered prompt-major, as the OpenAI API orders them.  ``stream: true`` answers
server-sent events (``data: {chunk}`` ... ``data: [DONE]``): with one sequence (``n == 1`` or greedy)
the text arrives token by token as it is generated, held back only while it could still become a stop
string; a client that disconnects ends its generation.  Backends other than the in-process model
(``TransformersBackend``) answer text only: their finish reason is ``"stop"``, their usage is counted
with their tokenizer when they have one, and ``logprobs`` or token-id prompts are refused (422).

Every request body is validated before the backend sees it (strict types, so ``true`` is not an
integer; bounded ``n``, ``max_tokens``, prompt count and lengths, token ids within the vocabulary,
``stop``, ``temperature``, ``top_p``, ``seed``, messages); unknown fields are ignored, as OpenAI clients
send many.  A malformed JSON body is answered 400, an invalid value 422, an oversized body 413 (before
it is parsed), each with an OpenAI-style ``{"error": {"message", "type", "param", "code"}}``.  With
``api_key`` set every ``/v1/`` route requires ``Authorization: Bearer <key>`` (401 otherwise, compared
in constant time); the tokenizer routes stay open, as vLLM's do, since harnesses probe them without a key.  A missing ``seed`` means seed 0; a backend failure is a
500 ``server_error`` that names no internals (inside a stream: an ``error`` event, then the end).

The backend runs on one worker thread: requests queue for it one at a time (at most ``max_queue`` in
the queue, the running one included; 503 beyond), so the event loop keeps answering (``/v1/models``)
during a generation, and a request's ``seed`` reproduces its output however many requests arrive at
once.
"""

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .generation import Completed, GenParams, Scored

log = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1


class APIError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``, the way the OpenAI API answers."""

    def __init__(self, status: int, message: str, param: str | None = None, type: str = "invalid_request_error",
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.type, self.code = status, message, param, type, code
        self.headers = headers

    def body(self) -> dict:
        message = " ".join(self.message.split())  # one line
        return {"error": {"message": message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self):
        from fastapi.responses import JSONResponse

        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _listify(v):
    """A single string stands for a one-item list (``prompt``, ``stop``), and so does a single list of
    token ids (``prompt``)."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and v and all(isinstance(t, int) and not isinstance(t, bool) for t in v):
        return [v]
    return v


def request_models(max_n: int = 16, max_tokens_limit: int = 2048, max_prompts: int = 64,
                   max_prompt_chars: int = 32_768, max_messages: int = 256, max_prompt_tokens: int = 32_768):
    """The pydantic models of the two POST bodies under these limits: ``(Completion, Chat)``."""
    Text = Annotated[str, Field(max_length=max_prompt_chars)]
    Stop = Annotated[str, Field(max_length=100)]
    TokenIds = Annotated[list[Annotated[int, Field(ge=0, le=2**31 - 1)]],
                         Field(min_length=1, max_length=max_prompt_tokens)]

    class StreamOptions(BaseModel):
        model_config = ConfigDict(strict=True, extra="ignore")

        include_usage: bool | None = None

    class Sampling(BaseModel):
        model_config = ConfigDict(strict=True, extra="ignore")

        model: Annotated[str, Field(max_length=256)] | None = None
        n: Annotated[int, Field(ge=1, le=max_n)] | None = None
        max_tokens: Annotated[int, Field(ge=0, le=max_tokens_limit)] | None = None
        temperature: Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)] | None = None
        top_p: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
        stop: Annotated[list[Stop], Field(max_length=4), BeforeValidator(_listify)] | None = None
        seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
        stream: bool | None = None
        stream_options: StreamOptions | None = None

        def params(self, max_tokens: int) -> GenParams:
            return GenParams(temperature=1.0 if self.temperature is None else self.temperature,
                             max_tokens=max_tokens, top_p=1.0 if self.top_p is None else self.top_p,
                             stop=tuple(self.stop or ()), seed=self.seed or 0)

    class Completion(Sampling):
        prompt: Annotated[list[Annotated[str, Field(min_length=1, max_length=max_prompt_chars)] | TokenIds],
                          Field(min_length=1, max_length=max_prompts), BeforeValidator(_listify)]
        echo: bool | None = None
        logprobs: Annotated[int, Field(ge=0, le=5)] | None = None

        @model_validator(mode="after")
        def _zero_tokens_need_echo(self):
            if self.max_tokens == 0 and not self.echo:
                raise ValueError("max_tokens: 0 is allowed only with echo (to score the prompt)")
            return self

    class Message(BaseModel):
        model_config = ConfigDict(strict=True, extra="ignore")

        role: Literal["system", "user", "assistant"]
        content: Text

    class Chat(Sampling):
        messages: Annotated[list[Message], Field(min_length=1, max_length=max_messages)]
        max_completion_tokens: Annotated[int, Field(ge=1, le=max_tokens_limit)] | None = None
        logprobs: bool | None = None
        top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None

        @model_validator(mode="after")
        def _chat_tokens(self):
            if self.max_tokens == 0:
                raise ValueError("max_tokens: Input should be greater than or equal to 1")
            if self.top_logprobs is not None and not self.logprobs:
                raise ValueError("top_logprobs: needs logprobs: true")
            return self

    return Completion, Chat


_FIELDS = {"model", "n", "max_tokens", "temperature", "top_p", "stop", "seed", "stream", "prompt", "messages",
           "role", "content", "max_completion_tokens", "echo", "logprobs", "top_logprobs", "stream_options",
           "include_usage", "tokens", "add_special_tokens"}


def _invalid(e: ValidationError) -> APIError:
    """400 for a body that is not JSON, else 422 naming the most specific field that failed."""
    errors = e.errors(include_url=False, include_input=False, include_context=False)
    if any(err["type"] == "json_invalid" for err in errors):
        detail = errors[0]["msg"].removeprefix("Invalid JSON: ")
        return APIError(400, f"the request body is not valid JSON: {detail}")
    err = max(errors, key=lambda x: len(x["loc"]))
    loc = [str(p) for p in err["loc"] if isinstance(p, int) or p in _FIELDS]
    if err["loc"] and err["loc"][0] == "prompt" and len(loc) > 2:
        loc = loc[:2]  # prompt.i: a string or a list of token ids
    param = ".".join(loc) or None
    msg = err["msg"]
    if err["type"] == "model_type" and not loc:
        msg = "the request body must be a JSON object"
    elif err["type"] == "list_type" and param == "stop":
        msg = "Input should be a string or an array of strings"
    elif param == "prompt" and err["type"] in ("list_type",):
        msg = "Input should be a string, an array of strings or an array of token ids"
    elif param and param.startswith("prompt."):
        msg = "each prompt should be a non-empty string or a non-empty array of token ids within the limits"
    elif err["type"] == "value_error" and not loc:
        msg = msg.removeprefix("Value error, ")
        param = msg.split(":", 1)[0] if ":" in msg else None
        return APIError(422, msg, param=param)
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
        self._lock = threading.Lock()

    def submit(self, fn, *args) -> Future:
        """Queue ``fn(*args)``, or answer 503 at once when ``max_queue`` calls already wait."""
        with self._lock:
            if self.waiting >= self.max_queue:
                raise APIError(503, "the server is busy: too many requests are waiting", type="server_error")
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="discern-llm-serve")
            self.waiting += 1
        fut = self.pool.submit(fn, *args)
        fut.add_done_callback(self._done)
        return fut

    def _done(self, _fut) -> None:
        with self._lock:
            self.waiting -= 1

    async def run(self, fn, *args):
        # a request cancelled while it waits is dropped from the queue (the future is cancelled)
        return await asyncio.wrap_future(self.submit(fn, *args))

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


@dataclass
class _Job:
    """One request for the worker: its prompts, sampling and what the answer must carry."""

    prompts: list  # strings or token-id lists
    n: int
    params: GenParams
    logprobs: int | None = None
    echo: bool = False
    on_text: object = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    stream_usage: bool = False
    chat: bool = False
    default_tokens: bool = False  # max tokens left to the server: whatever the context has room for


def _sse(obj) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"


class _Held:
    """The part of a growing completion that can be sent: all of it but a tail that might still grow
    into a stop string (the longest stop minus one character), and nothing past a stop string."""

    def __init__(self, stop: tuple[str, ...]):
        self.stop, self.keep = tuple(s for s in stop if s), max((len(s) for s in stop if s), default=1) - 1
        self.sent = 0

    def delta(self, text: str) -> str:
        cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=None)
        if cut is None:
            text = text.rstrip("\ufffd")  # a character whose bytes have not all arrived yet
        safe = cut if cut is not None else max(self.sent, len(text) - self.keep)
        out = text[self.sent:safe] if safe > self.sent else ""
        self.sent = max(self.sent, safe)
        return out

    def rest(self, final: str) -> str:
        return final[self.sent:] if len(final) > self.sent else ""


def make_app(backend, model_name: str | None = None, *, api_key: str | None = None, max_tokens_limit: int = 2048,
             max_n: int = 16, max_prompts: int = 64, max_prompt_chars: int = 32_768, max_messages: int = 256,
             max_body_bytes: int = 1 << 20, max_queue: int = 64, max_prompt_tokens: int = 32_768):
    from fastapi import FastAPI, Request
    from fastapi.responses import StreamingResponse
    from starlette.exceptions import HTTPException

    from discern.core.serving import SECURITY_HEADERS, RequestLimits

    name = model_name or backend.name
    Completion, Chat = request_models(max_n, max_tokens_limit, max_prompts, max_prompt_chars, max_messages,
                                      max_prompt_tokens)
    worker = _Worker(max_queue)
    tok = getattr(backend, "tokenizer", None)  # a Hugging Face tokenizer, or something else (then unused)
    if not (callable(tok) and hasattr(tok, "__len__") and hasattr(tok, "decode")):
        tok = None
    scores = callable(getattr(backend, "complete", None))  # the in-process model: finish reasons, logprobs
    vocab = len(tok) if tok is not None else None  # ids /detokenize takes
    model = getattr(backend, "model", None)  # prompt ids must also have a row in the model's embeddings
    rows = model.get_input_embeddings().num_embeddings if hasattr(model, "get_input_embeddings") else None
    prompt_vocab = min(v for v in (vocab, rows) if v is not None) if (vocab or rows) else None

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

    def count(text: str) -> int | None:
        return len(tok(text, add_special_tokens=False)["input_ids"]) if tok is not None else None

    context = getattr(backend, "context_length", None) if scores else None

    def fit(job: _Job, i: int, prompt) -> GenParams:
        """The job's sampling for prompt ``i``, within the model's context: 422 when the prompt plus
        ``max_tokens`` would not fit (a request that left max tokens to the server gets what remains)."""
        if not context:
            return job.params
        n = len(backend.encode(prompt)) if isinstance(prompt, str) else len(prompt)
        room = context - n
        if job.default_tokens and room >= 1:
            return replace(job.params, max_tokens=min(job.params.max_tokens, room))
        if n + job.params.max_tokens > context:
            raise APIError(422, f"the prompt's {n} tokens plus max_tokens {job.params.max_tokens} exceed the model's "
                                f"context of {context} tokens", param="messages" if job.chat else f"prompt.{i}")
        return job.params

    def run_job(job: _Job) -> list[Completed]:
        """On the worker thread: every prompt of the job, through ``complete`` when the backend has it."""
        if scores:
            return [backend.complete(p, job.n, fit(job, i, p), logprobs=job.logprobs, echo=job.echo,
                                     on_text=job.on_text, should_stop=job.cancelled.is_set)
                    for i, p in enumerate(job.prompts)]
        texts = backend.generate(job.prompts, job.n, job.params)
        return [Completed(tok(p)["input_ids"] if tok is not None else [],
                          [Scored(t, "stop", tok(t, add_special_tokens=False)["input_ids"] if tok is not None else [])
                           for t in outs]) for p, outs in zip(job.prompts, texts)]

    def check_job(job: _Job) -> None:
        token_prompts = any(not isinstance(p, str) for p in job.prompts)
        if (token_prompts or job.logprobs is not None or job.echo) and not scores:
            what = "token-id prompts" if token_prompts else "logprobs" if job.logprobs is not None else "echo"
            raise APIError(422, f"this backend does not support {what}", param="prompt" if token_prompts else
                           "logprobs" if job.logprobs is not None else "echo")
        if token_prompts and prompt_vocab is not None:
            for i, p in enumerate(job.prompts):
                if not isinstance(p, str) and max(p) >= prompt_vocab:
                    raise APIError(422, f"prompt.{i}: token ids must be below the vocabulary size {prompt_vocab}",
                                   param=f"prompt.{i}")

    async def run(job: _Job) -> list[Completed]:
        try:
            return await worker.run(run_job, job)
        except APIError:
            raise
        except Exception:
            log.exception("generation failed")
            raise APIError(500, "the model failed to generate a completion", type="server_error") from None

    def usage(done: list[Completed]) -> dict | None:
        if tok is None and not scores:
            return None
        p = sum(len(c.prompt_ids) for c in done)
        c = sum(len(ch.token_ids) for d in done for ch in d.choices)
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def piece(i: int) -> str:
        return tok.decode([i]) if tok is not None else str(i)

    def completion_logprobs(d: Completed, ch: Scored, echo: bool) -> dict:
        ids = (d.prompt_ids if echo else []) + ch.token_ids
        lps = ((d.prompt_logprobs or [None] * len(d.prompt_ids)) if echo else []) + (ch.logprobs or [])
        tops = ((d.prompt_top or [None] * len(d.prompt_ids)) if echo else []) + (ch.top or [])
        tokens = [piece(i) for i in ids]
        offsets, at = [], 0
        for t in tokens:
            offsets.append(at)
            at += len(t)
        top_dicts = [None if t is None else {piece(i): v for i, v in t} for t in tops]
        return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": top_dicts, "text_offset": offsets}

    def chat_logprobs(ch: Scored) -> dict:
        def entry(i, v):
            t = piece(i)
            return {"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))}
        content = [{**entry(i, v), "top_logprobs": [entry(j, w) for j, w in top]}
                   for i, v, top in zip(ch.token_ids, ch.logprobs or [], ch.top or [])]
        return {"content": content, "refusal": None}

    def head(kind: str) -> dict:
        prefix = "chatcmpl" if kind.startswith("chat") else "cmpl"
        return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()), "model": name}

    def stream(job: _Job, kind: str, make_chunk, texts_of) -> StreamingResponse:
        """Server-sent events for ``job``: text deltas as they are generated when one sequence is
        sampled, else each choice whole once done; then the finish reasons, usage if asked, ``[DONE]``."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        incremental = (scores and len(job.prompts) == 1 and not job.echo
                       and (job.n == 1 or job.params.temperature == 0))
        if incremental:
            job.on_text = lambda text: loop.call_soon_threadsafe(queue.put_nowait, text)
        fut = worker.submit(run_job, job)  # 503 here, before the stream starts
        fut.add_done_callback(lambda _f: loop.call_soon_threadsafe(queue.put_nowait, None))
        meta = head(kind)

        async def events():
            try:
                if (first := make_chunk(start=True, n=job.n * len(job.prompts))):
                    yield _sse({**meta, "choices": first})
                held = _Held(job.params.stop)
                while True:
                    text = await queue.get()
                    if text is None:
                        break
                    if (d := held.delta(text)):
                        yield _sse({**meta, "choices": [make_chunk(index=0, text=d)]})
                try:
                    done = fut.result()
                except APIError as e:  # e.g. a prompt longer than the model's context
                    yield _sse(e.body())
                    return
                except Exception:
                    log.exception("generation failed")
                    yield _sse(APIError(500, "the model failed to generate a completion", type="server_error").body())
                    return
                chunks = []
                for i, (text, ch, d) in enumerate(texts_of(done)):
                    rest = held.rest(text) if incremental and i == 0 else text
                    if rest:
                        chunks.append(_sse({**meta, "choices": [make_chunk(index=i, text=rest)]}))
                    chunks.append(_sse({**meta, "choices": [make_chunk(index=i, finish=ch.finish_reason, scored=ch,
                                                                       completed=d)]}))
                for c in chunks:
                    yield c
                if job.stream_usage:
                    yield _sse({**meta, "choices": [], "usage": usage(done)})
                yield "data: [DONE]\n\n"
            finally:
                job.cancelled.set()  # a client that went away ends the generation

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "discern"}]}

    @app.post("/v1/completions")
    async def completions(request: Request):
        req = await parse(request, Completion)
        n = req.n or 1
        job = _Job(req.prompt, n, req.params(16 if req.max_tokens is None else req.max_tokens), req.logprobs,
                   bool(req.echo))
        check_job(job)
        job.stream_usage = bool(req.stream_options and req.stream_options.include_usage)

        def texts_of(done):
            for d in done:
                prefix = (tok.decode(d.prompt_ids) if tok is not None else "") if job.echo else ""
                for ch in d.choices:
                    yield prefix + ch.text, ch, d

        def choice_json(index, text, ch, d):
            lp = completion_logprobs(d, ch, job.echo) if job.logprobs is not None else None
            return {"index": index, "text": text, "finish_reason": ch.finish_reason, "logprobs": lp}

        if req.stream:
            def make_chunk(index=0, text="", finish=None, scored=None, completed=None, start=False, n=1):
                if start:
                    return []
                lp = (completion_logprobs(completed, scored, job.echo)
                      if finish and job.logprobs is not None else None)
                return {"index": index, "text": text, "finish_reason": finish, "logprobs": lp}
            return stream(job, "text_completion", make_chunk, texts_of)
        done = await run(job)
        choices = [choice_json(i, text, ch, d) for i, (text, ch, d) in enumerate(texts_of(done))]
        return {**head("text_completion"), "choices": choices, "usage": usage(done)}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        req = await parse(request, Chat)
        n = req.n or 1
        try:
            prompt = render_chat(backend, [m.model_dump() for m in req.messages])
        except Exception as e:  # e.g. a template that insists on alternating roles
            raise APIError(422, f"the messages do not fit the model's chat template: {e}", param="messages") from None
        limit = req.max_completion_tokens or req.max_tokens or max_tokens_limit
        job = _Job([prompt], n, req.params(limit), (req.top_logprobs or 0) if req.logprobs else None,
                   chat=True, default_tokens=not (req.max_completion_tokens or req.max_tokens))
        check_job(job)
        job.stream_usage = bool(req.stream_options and req.stream_options.include_usage)

        def texts_of(done):
            for ch in done[0].choices:
                yield ch.text, ch, done[0]

        if req.stream:
            def make_chunk(index=0, text="", finish=None, scored=None, completed=None, start=False, n=1):
                if start:
                    return [{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                             "logprobs": None} for i in range(n)]
                lp = chat_logprobs(scored) if finish and job.logprobs is not None else None
                return {"index": index, "delta": {"content": text} if text else {}, "finish_reason": finish,
                        "logprobs": lp}
            return stream(job, "chat.completion.chunk", make_chunk, texts_of)
        done = await run(job)
        choices = [{"index": j, "message": {"role": "assistant", "content": text, "refusal": None},
                    "finish_reason": ch.finish_reason,
                    "logprobs": chat_logprobs(ch) if job.logprobs is not None else None}
                   for j, (text, ch, _d) in enumerate(texts_of(done))]
        return {**head("chat.completion"), "choices": choices, "usage": usage(done)}

    class TokenizeBody(BaseModel):
        model_config = ConfigDict(strict=True, extra="ignore")

        prompt: Annotated[str, Field(max_length=max_prompt_chars)]
        add_special_tokens: bool = True

    class DetokenizeBody(BaseModel):
        model_config = ConfigDict(strict=True, extra="ignore")

        tokens: Annotated[list[Annotated[int, Field(ge=0, le=2**31 - 1)]], Field(max_length=max_prompt_tokens)]

    def need_tokenizer():
        if tok is None:
            raise APIError(404, "this backend has no tokenizer to serve")

    @app.get("/tokenizer_info")
    async def tokenizer_info():
        need_tokenizer()
        return {"tokenizer_class": type(tok).__name__, "eos_token": tok.eos_token, "bos_token": tok.bos_token,
                "pad_token": tok.pad_token, "chat_template": getattr(tok, "chat_template", None),
                "model_max_length": min(int(getattr(tok, "model_max_length", 0) or 0), 2**31 - 1) or None,
                "vocab_size": vocab}

    @app.post("/tokenize")
    async def tokenize(request: Request):
        need_tokenizer()
        body = await parse(request, TokenizeBody)
        ids = tok(body.prompt, add_special_tokens=body.add_special_tokens)["input_ids"]
        return {"tokens": ids, "count": len(ids), "max_model_len": max_prompt_tokens}

    @app.post("/detokenize")
    async def detokenize(request: Request):
        need_tokenizer()
        body = await parse(request, DetokenizeBody)
        if body.tokens and max(body.tokens) >= vocab:
            raise APIError(422, f"tokens: token ids must be below the vocabulary size {vocab}", param="tokens")
        return {"prompt": tok.decode(body.tokens)}

    return app


def serve(backend, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None, **limits) -> None:
    """Serve ``make_app(backend, model_name, **limits)`` (``api_key``, ``max_tokens_limit``, ...) with uvicorn."""
    import uvicorn

    uvicorn.run(make_app(backend, model_name, **limits), host=host, port=port, log_level="warning")
