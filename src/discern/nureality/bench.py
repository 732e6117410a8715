"""``discern bench nureality``: the study server's event throughput with p50/p99 latency (concurrent
simulated participants posting over HTTP to a server on 127.0.0.1, SQLite in WAL mode), and the scene's
frame time in headless Chromium (software WebGL, so a floor for a real GPU)."""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from pathlib import Path


def server_throughput(participants: int = 16, events_each: int = 120, batch: int = 4, wal: bool = True) -> dict:
    """Each participant joins and posts its events in batches from its own thread; every request's latency
    is recorded.  Returns events/s over the whole run and request latency percentiles (ms)."""
    import httpx
    import numpy as np

    from discern.core.serving import LocalServer

    from .server import make_app

    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalServer(make_app(Path(tmp) / "bench.sqlite", token, wal=wal))
        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                study = http.post("/api/admin/studies", headers={"Authorization": f"Bearer {token}"},
                                  json={"name": "bench", "scenarios": ["baseline"], "order": "random",
                                        "repetitions": 1, "likert": []}).json()
            lat: list[float] = []
            lock = threading.Lock()
            errors: list[str] = []

            def participant(j: int) -> None:
                with httpx.Client(base_url=server.url, timeout=60) as http:
                    tok = http.post("/api/join", json={"code": study["code"], "participant": f"B{j:03d}"}).json()
                    auth = {"Authorization": f"Bearer {tok['token']}"}
                    mine = []
                    for s in range(1, events_each + 1, batch):
                        ev = [{"seq": k, "trial": 0, "type": "onset", "t_ms": float(k), "data": {}}
                              for k in range(s, min(s + batch, events_each + 1))]
                        t0 = time.perf_counter()
                        r = http.post("/api/events", headers=auth, json={"events": ev})
                        mine.append(time.perf_counter() - t0)
                        if r.status_code != 200 or r.json()["acked"] != ev[-1]["seq"]:
                            errors.append(f"B{j:03d}: {r.status_code} {r.text[:80]}")
                    with lock:
                        lat.extend(mine)

            threads = [threading.Thread(target=participant, args=(j,)) for j in range(participants)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.stop()
    ms = 1000 * np.asarray(lat)
    return {"sqlite": "WAL, synchronous=NORMAL" if wal else "rollback journal, synchronous=FULL (SQLite's defaults)",
            "participants": participants, "events": participants * events_each, "batch": batch,
            "errors": len(errors), "seconds": wall, "events_per_second": participants * events_each / wall,
            "requests": len(lat), "latency_ms": {"p50": float(np.percentile(ms, 50)),
                                                 "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}}


def frame_time(seconds: float = 6.0, query: str = "", size: tuple[int, int] = (960, 540)) -> dict:
    """Load the scene in headless Chromium (software WebGL) and read the page's own frame-time record
    (``window.__nureality.frameTimes``: ms between consecutive frames)."""
    import numpy as np
    from playwright.sync_api import sync_playwright

    from discern.core.serving import LocalServer

    from .server import make_app
    from .webassets import ensure_vendor

    ensure_vendor()
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalServer(make_app(Path(tmp) / "frames.sqlite", token))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
                page = browser.new_page(viewport={"width": size[0], "height": size[1]})
                page.goto(f"{server.url}/{query}")
                page.wait_for_function("window.__nureality && window.__nureality.frameTimes.length > 3",
                                       timeout=60000)
                page.wait_for_timeout(int(1000 * seconds))
                times = page.evaluate("window.__nureality.frameTimes.slice(3)")
                browser.close()
        finally:
            server.stop()
    dt = np.asarray(times, dtype=float)
    return {"frames": len(times), "frame_ms": {"mean": float(np.mean(dt)), "p50": float(np.percentile(dt, 50)),
                                               "p99": float(np.percentile(dt, 99))},
            "fps": float(1000 / np.mean(dt)), "page": f"/{query}",
            "renderer": f"Chromium headless, SwiftShader (CPU) WebGL, {size[0]}x{size[1]}"}


def bench(quick: bool = False) -> dict:
    """Ratios: the server's events per second and its p99 latency, WAL (discern's setting) against SQLite's
    defaults in the same run, and the scene's frame rate without antialiasing and shadows against the full
    setting (only when a browser is there).  Everything measured is under ``details``."""
    n, m = (8, 60) if quick else (16, 120)
    base = server_throughput(n, m, wal=False)  # the baseline: SQLite's default journal, same run
    wal = server_throughput(n, m, wal=True)
    ratios = {"server_events_per_s_vs_sqlite_defaults": wal["events_per_second"] / base["events_per_second"],
              "server_p99_latency_sqlite_defaults_over_wal": base["latency_ms"]["p99"] / wal["latency_ms"]["p99"]}
    details = {"server_baseline": base, "server": wal}
    for name, query in (("scene_full", ""), ("scene_light", "?aa=0&shadows=0")):
        try:
            details[name] = frame_time(seconds=4.0 if quick else 8.0, query=query)
        except Exception as e:  # no browser here: report the server figures alone, and why
            details[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    if "fps" in details["scene_full"] and "fps" in details["scene_light"]:
        ratios["scene_light_fps_vs_full"] = details["scene_light"]["fps"] / details["scene_full"]["fps"]
    return {"bench": "nureality", "ratios": ratios, "goals": {}, "details": details}
