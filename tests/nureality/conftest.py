"""Fixtures of the browser test (tests/nureality/test_browser.py): the real study server on a loopback port with
a fresh SQLite file, and Debian's headless Chromium through Playwright."""

from __future__ import annotations

import socket
import threading
import time

import pytest

BROWSER_ADMIN = "browser-admin-token"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def study_server(tmp_path):
    """``(base_url, db_path, admin_token)`` of discern.nureality.server on 127.0.0.1, serving the package's
    scenarios and web page (three.js vendored first: a missing npm install fails here with the command to run)."""
    import uvicorn

    from discern.nureality.server import make_app
    from discern.nureality.webassets import ensure_vendor

    ensure_vendor()
    db = tmp_path / "study.db"
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(make_app(str(db), BROWSER_ADMIN), host="127.0.0.1", port=port,
                                        log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "the study server did not start"
        assert thread.is_alive(), "the study server thread died"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", db, BROWSER_ADMIN
    srv.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def chromium():
    """A headless Chromium (Debian's /usr/bin/chromium; WebGL runs on SwiftShader there)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
