"""``discern bench nureality``: the study server's event throughput with p50/p99 latency (concurrent
simulated participants posting over HTTP to a server process on 127.0.0.1, SQLite in WAL mode, at 16 and at
200 participants), and the scene's frame time in headless Chromium (software WebGL, so a floor for a real
GPU)."""

from __future__ import annotations

import secrets
import ssl
import tempfile
import time
from pathlib import Path


_SERVE = """
import sys
from discern.nureality.server import serve
db, token, port, wal = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
serve(db, token, port=port, wal=wal)
"""


def _start(db: Path, token: str, wal: bool):
    """The study server in its own process (so the load generator does not share its interpreter)."""
    import subprocess
    import sys

    import httpx

    from discern.core.serving import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(db), token, str(port), "1" if wal else "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bench server exited: {proc.stderr.read().decode()[-500:]}")
        try:
            httpx.get(f"{url}/api/scenarios/baseline", timeout=2, trust_env=False)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the bench server did not start within 120 s")


def server_throughput(participants: int = 16, events_each: int = 120, batch: int = 4, wal: bool = True) -> dict:
    """``participants`` simulated participants join (all at once), then all post their events in batches, each
    one request after the other as the page does, to a server in another process on 127.0.0.1.  Returns
    events/s over the posting phase, its request latency percentiles (ms), the joins' latency, and the count
    of failed requests (any status but 200, a wrong ack, or no answer)."""
    import asyncio

    import httpx
    import numpy as np

    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start(Path(tmp) / "bench.sqlite", token, wal)
        try:
            with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
                study = http.post("/api/admin/studies", headers={"Authorization": f"Bearer {token}"},
                                  json={"name": "bench", "scenarios": ["baseline"], "order": "random",
                                        "repetitions": 1, "likert": []}).json()
            lat: list[float] = []
            join_lat: list[float] = []
            errors: list[str] = []

            async def join(http, j: int) -> dict | None:
                t0 = time.perf_counter()
                try:
                    r = await http.post("/api/join", json={"code": study["code"], "participant": f"B{j:03d}"})
                    join_lat.append(time.perf_counter() - t0)
                    return {"Authorization": f"Bearer {r.json()['token']}"}
                except (httpx.HTTPError, KeyError, ValueError) as e:
                    errors.append(f"B{j:03d} join: {type(e).__name__}")
                    return None

            async def participant(http, j: int, auth: dict | None) -> None:
                if auth is None:
                    return
                for s in range(1, events_each + 1, batch):
                    ev = [{"seq": k, "trial": 0, "type": "onset", "t_ms": float(k), "data": {}}
                          for k in range(s, min(s + batch, events_each + 1))]
                    t0 = time.perf_counter()
                    try:
                        r = await http.post("/api/events", headers=auth, json={"events": ev})
                    except httpx.HTTPError as e:
                        errors.append(f"B{j:03d}: {type(e).__name__}")
                        continue
                    lat.append(time.perf_counter() - t0)
                    if r.status_code != 200 or r.json().get("acked") != ev[-1]["seq"]:
                        errors.append(f"B{j:03d}: {r.status_code} {r.text[:80]}")

            async def run() -> float:
                # one client (one connection) per participant, as each has their own browser; one TLS context
                # for all, or creating 200 clients costs seconds
                tls = ssl.create_default_context()
                clients = [httpx.AsyncClient(base_url=url, timeout=120, verify=tls, trust_env=False,
                                             limits=httpx.Limits(max_connections=1)) for _ in range(participants)]
                try:
                    # everyone joins first (a burst of joins is its own phase), then all post at once
                    auths = await asyncio.gather(*(join(c, j) for j, c in enumerate(clients)))
                    t0 = time.perf_counter()
                    await asyncio.gather(*(participant(c, j, a) for j, (c, a) in enumerate(zip(clients, auths))))
                    return time.perf_counter() - t0
                finally:
                    await asyncio.gather(*(c.aclose() for c in clients))

            wall = asyncio.run(run())
        finally:
            proc.kill()
            proc.wait()
    ms = 1000 * np.asarray(lat) if lat else np.asarray([float("nan")])
    jms = 1000 * np.asarray(join_lat) if join_lat else np.asarray([float("nan")])
    n_requests = participants * -(-events_each // batch)
    return {"sqlite": "WAL, synchronous=FULL" if wal else "rollback journal, synchronous=FULL (SQLite's defaults)",
            "participants": participants, "events": participants * events_each, "batch": batch,
            "requests": n_requests, "errors": len(errors), "error_examples": errors[:3], "seconds": wall,
            "events_per_second": participants * events_each / wall,
            "latency_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                           "max": float(ms.max())},
            "join_latency_ms": {"p50": float(np.percentile(jms, 50)), "max": float(jms.max())}}


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
                deadline = time.monotonic() + 60  # polled: the page's CSP forbids wait_for_function's eval
                while not page.evaluate("window.__nureality && window.__nureality.frameTimes.length > 3"):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the scene drew no frames within 60 s")
                    page.wait_for_timeout(100)
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
    """Ratios at 16 and at 200 concurrent participants: the server's events per second and p99 latency
    against SQLite's defaults (rollback journal) in the same run, the p99 goal of 50 ms at 16 participants as
    50 / p99, and the share of requests answered correctly at 200; then the scene's frame rate without
    antialiasing and shadows against the full setting (only when a browser is there).  Everything measured
    is under ``details``."""
    m = 40 if quick else 120
    details: dict = {}
    ratios: dict = {}
    for n, each in ((16, 4 * m), (200, m)):  # about the same number of requests at both sizes
        base = server_throughput(n, each, wal=False)  # the baseline: SQLite's default journal, same run
        ours = server_throughput(n, each, wal=True)
        details[f"server_baseline_{n}"], details[f"server_{n}"] = base, ours
        ratios[f"events_per_s_vs_sqlite_defaults_at_{n}"] = ours["events_per_second"] / base["events_per_second"]
        ratios[f"p99_sqlite_defaults_over_ours_at_{n}"] = base["latency_ms"]["p99"] / ours["latency_ms"]["p99"]
    ratios["p99_goal_50ms_over_p99_at_16"] = 50.0 / details["server_16"]["latency_ms"]["p99"]
    ratios["answered_share_at_200"] = 1 - details["server_200"]["errors"] / details["server_200"]["requests"]
    for name, query in (("scene_full", ""), ("scene_light", "?aa=0&shadows=0")):
        try:
            details[name] = frame_time(seconds=4.0 if quick else 8.0, query=query)
        except Exception as e:  # no browser here: report the server figures alone, and why
            details[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    if "fps" in details["scene_full"] and "fps" in details["scene_light"]:
        ratios["scene_light_fps_vs_full"] = details["scene_light"]["fps"] / details["scene_full"]["fps"]
    return {"bench": "nureality", "ratios": ratios, "details": details,
            "goals": {"p99_goal_50ms_over_p99_at_16": ">= 1", "answered_share_at_200": ">= 1"}}
