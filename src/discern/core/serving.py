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
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
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
