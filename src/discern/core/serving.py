"""A web application served by uvicorn on a free loopback port in a background thread: what the tests,
reproductions and benchmarks use to talk to the project's servers over real HTTP (127.0.0.1 only)."""

from __future__ import annotations

import socket
import threading
import time


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``LocalServer(app)`` starts serving at once (``.url``); ``stop()``, or leaving a ``with`` block, shuts it
    down and raises if it does not stop within ``timeout`` seconds."""

    def __init__(self, app, timeout: float = 20.0):
        import uvicorn

        self.port, self.timeout = free_port(), timeout
        # keep-alive longer than uvicorn's 5 s: a pooled client connection that sat idle under load would be
        # closed by the server just as the client reuses it (a ReadError that is no fault of the application)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                    timeout_keep_alive=75))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=self.timeout)
        if self.thread.is_alive():
            raise RuntimeError("the local server did not stop")

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc) -> None:
        self.stop()


def bearer_token(request) -> str | None:
    """The token of a request's ``Authorization: Bearer <token>`` header; None when there is none."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return given.strip()


def json_errors(app, status: dict[type, int]) -> None:
    """Answer each exception class of ``status`` (and its subclasses not listed) with that HTTP status and
    ``{"detail": "<one-line message>"}``: how the study servers turn ``DiscernError``s into responses."""
    from fastapi.responses import JSONResponse

    for cls, code in status.items():
        async def handler(_request, exc, code=code):
            return JSONResponse({"detail": str(exc)}, status_code=code)

        app.add_exception_handler(cls, handler)


class RequestLimits:
    """ASGI middleware that answers 413 to a request body larger than its limit before any route sees (or
    parses) a byte of it: at once when ``Content-Length`` says so, otherwise while the body streams in (a
    body without a length is buffered up to the limit and then replayed to the application).

    ``max_bytes`` is the default limit; ``prefixes`` maps a path prefix to its own limit (the longest match
    wins), e.g. ``{"/api/admin/": 16 << 20}``.  Every response also gets the ``headers`` given (security
    headers such as ``X-Content-Type-Options``) unless the route set them itself.  ``error_body(status,
    message)`` shapes the refusal's JSON (default ``{"detail": message}``), e.g. OpenAI's error object.
    """

    def __init__(self, app, max_bytes: int, prefixes: dict[str, int] | None = None,
                 headers: dict[str, str] | None = None, error_body=None):
        self.app, self.max_bytes = app, int(max_bytes)
        self.error_body = error_body or (lambda status, message: {"detail": message})
        self.prefixes = sorted((prefixes or {}).items(), key=lambda kv: -len(kv[0]))
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]

    def limit(self, path: str) -> int:
        for prefix, n in self.prefixes:
            if path.startswith(prefix):
                return n
        return self.max_bytes

    async def _reply(self, send, status: int, detail: str) -> None:
        import json

        body = json.dumps(self.error_body(status, detail)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), *self.headers]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit(scope.get("path", ""))
        length = None
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    return await self._reply(send, 400, "Content-Length is not a number")
                if length < 0:
                    return await self._reply(send, 400, "Content-Length is negative")
        too_big = f"request body too large: at most {limit} bytes"
        if length is not None and length > limit:
            return await self._reply(send, 413, too_big)
        if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            chunks, total = [], 0
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return None
                chunk = msg.get("body", b"")
                total += len(chunk)
                if total > limit:
                    return await self._reply(send, 413, too_big)
                chunks.append(chunk)
                if not msg.get("more_body", False):
                    break
            replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

            async def receive_replayed():
                return replay.pop() if replay else await receive()

            receive = receive_replayed
        if not self.headers:
            return await self.app(scope, receive, send)

        async def send_with_headers(msg):
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", ())}
                msg = {**msg, "headers": [*msg.get("headers", ()), *((k, v) for k, v in self.headers if k not in have)]}
            await send(msg)

        return await self.app(scope, receive, send_with_headers)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
