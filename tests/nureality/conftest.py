"""Fixtures of the browser test (tests/nureality/test_browser.py): the real study server on a loopback port with
a fresh SQLite file, and Debian's headless Chromium through Playwright."""

from __future__ import annotations

import pytest

BROWSER_ADMIN = "browser-admin-token"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def study_server(tmp_path):
    """``(base_url, db_path, admin_token)`` of discern.nureality.server on 127.0.0.1, serving the package's
    scenarios and web page (three.js vendored first: a missing npm install fails here with the command to run)."""
    from discern.core.serving import LocalServer
    from discern.nureality.server import make_app
    from discern.nureality.webassets import ensure_vendor

    ensure_vendor()
    db = tmp_path / "study.db"
    with LocalServer(make_app(str(db), BROWSER_ADMIN)) as url:
        yield url, db, BROWSER_ADMIN


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
