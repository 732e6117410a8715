"""The nuReality page in headless Chromium against the real study server: a participant joins, watches the
baseline vehicle approach and brake, presses SPACE when it is safe to cross, answers the decision and the
Likert items; the events reach the server exactly once even when the responses are lost and the page is
reloaded.  Also: the scene renders (and its tree limbs sway), and the vendored three.js is produced and
git-ignored as documented."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from discern.core.errors import DataError, DiscernError
from discern.nureality import webassets

WEB = Path(webassets.__file__).resolve().parent / "web"
SCENARIO = json.loads((WEB.parent / "scenarios" / "baseline.json").read_text(encoding="utf-8"))
LIKERT = ["I felt safe crossing in front of this vehicle.", "The vehicle's intention was clear to me."]
ANSWERS = [6, 3]
TYPES = ["trial_start", "onset", "safe", "decision", "likert", "likert", "trial_end"]



def _wait(page, expression: str, timeout: int = 30000) -> None:
    """Poll ``expression`` in the page until it is true (page.wait_for_function compiles its predicate with
    eval, which the page's Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} ms for {expression}")
        page.wait_for_timeout(50)

def _brake_onset_ms(s: dict) -> float:
    return (s["start_distance_m"] - s["braking"]["onset_distance_m"]) / s["v0_mps"] * 1000.0


def test_participant_runs_a_trial_and_every_event_reaches_the_server_once(study_server, chromium, tmp_path):
    base, db, admin_token = study_server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10) as admin:
        study = admin.post("/api/admin/studies", json={"name": "browser", "scenarios": ["baseline"], "order": "latin",
                                                       "repetitions": 1, "likert": LIKERT}).json()

    context = chromium.new_context(viewport={"width": 320, "height": 180})
    lose = {"on": False}
    lost: list[int] = []

    def events_route(route):   # while "on", the server stores what the page sends but the page never hears back
        if not lose["on"]:
            route.continue_()
            return
        lost.append(route.fetch().status)
        route.abort()

    context.route("**/api/events", events_route)
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None)
    page.goto(f"{base}/?autostart=1&aa=0&shadows=0&code={study['code']}")
    expect(page.locator("#join")).to_be_visible()
    expect(page.locator("#code")).to_have_value(study["code"])   # a study link fills in the code
    assert page.evaluate("__nureality.state") == "join"
    expect(page.locator("#enter-vr")).to_be_hidden()   # no WebXR device here: the desktop mode only

    # the scene is rendered (many colours, contrast) and deterministic; only the tree limbs move with time
    a, a_again, b = (page.evaluate("t => __nureality.sample(t)", t) for t in (1.0, 1.0, 2.7))
    assert (a["width"], a["height"]) == (320, 180)
    assert a["colours"] > 100 and a["sd"] > 20, a
    assert a["hash"] == a_again["hash"]
    assert a["hash"] != b["hash"]
    assert a["calls"] < 60, a   # the static city is merged into a few meshes

    # the in-headset panel's buttons: the hit test matches the layout, 7 Likert buttons left to right
    hits = page.evaluate("""async () => {
        const { panelLayout, panelHit } = await import('/xr.js');
        const opts = [1, 2, 3, 4, 5, 6, 7].map((v) => ({ label: String(v), value: v }));
        const layout = panelLayout(opts);
        return [layout.map((b) => panelHit(layout, (b.u0 + b.u1) / 2, 0.2)), panelHit(layout, 0.5, 0.8),
                panelHit(layout, 0.01, 0.2)];
    }""")
    assert hits == [[1, 2, 3, 4, 5, 6, 7], None, None]

    page.fill("#participant", "P01")
    page.click("#join-button")
    _wait(page, "__nureality.state === 'running'")
    _wait(page, "__nureality.vehicle !== null && __nureality.vehicle.a < 0", timeout=15000)
    page.keyboard.press("Space")
    _wait(page, "__nureality.lastSafe !== null")
    safe = page.evaluate("__nureality.lastSafe")
    assert safe["type"] == "safe" and safe["seq"] == 3 and safe["trial"] == 0
    assert _brake_onset_ms(SCENARIO) < safe["t_ms"] < SCENARIO["duration_s"] * 1000.0
    ndc = page.evaluate("__nureality.vehicleNdc")   # the vehicle is in view from the default viewpoint
    assert -1 < ndc["x"] < 1 and -1 < ndc["y"] < 1 and ndc["z"] < 1, ndc
    page.keyboard.press("Space")                     # a second press is not a second response
    _wait(page, "__nureality.acked === 3")

    lose["on"] = True   # from now on the responses to /api/events are lost
    _wait(page, "__nureality.state === 'decision'", timeout=20000)
    end = page.evaluate("[__nureality.vehicle, __nureality.vehicleWorld]")
    assert end[0] == {"t": SCENARIO["duration_s"], "x": SCENARIO["stop_distance_m"], "v": 0, "a": 0, "pitch": 0}
    assert end[1] == {"x": -1.75, "y": 0, "z": -SCENARIO["stop_distance_m"]}
    # the render loop kept going; the vehicle's sounds started with it and braking played the brake sound once
    run = page.evaluate("({frames: __nureality.frames, audio: __nureality.audio.state, "
                        "counts: __nureality.audio.counts})")
    assert run["frames"] > 30
    assert run["audio"] == "running"
    counts = run["counts"]
    assert (counts["engine"], counts["brake"], counts["squeal"], counts["low_frequency"]) == (1, 1, 0, 0)
    shot = tmp_path / "nureality-decision.png"
    page.screenshot(path=str(shot))
    with Image.open(io.BytesIO(shot.read_bytes())) as im:
        assert im.size == (320, 180)
        assert len(im.convert("RGB").getcolors(320 * 180)) > 500

    expect(page.locator("#prompt-text")).to_have_text("Would you have crossed the street in front of this vehicle?")
    page.click('#prompt-options button[data-value="true"]')
    for k, value in enumerate(ANSWERS):
        expect(page.locator("#prompt-title")).to_have_text(f"Question {k + 1} of 2")
        expect(page.locator("#prompt-text")).to_have_text(LIKERT[k])
        expect(page.locator("#prompt-options button")).to_have_text([str(v) for v in range(1, 8)])
        page.click(f'#prompt-options button[data-value="{value}"]')
    _wait(page, "__nureality.state === 'done'")
    _wait(page, "__nureality.lastError !== null")
    sent = page.evaluate("__nureality.events")
    assert [e["type"] for e in sent] == TYPES
    assert [e["seq"] for e in sent] == list(range(1, 8))
    assert [e["trial"] for e in sent] == [0] * 7
    assert sent[0]["t_ms"] == -1000 and sent[1]["t_ms"] == 0
    assert sent[3]["data"] == {"cross": True}
    assert [e["data"] for e in sent[4:6]] == [{"item": 0, "value": 6}, {"item": 1, "value": 3}]
    assert sent[6]["data"] == {"safe_ms": safe["t_ms"]}
    assert page.evaluate("[__nureality.acked, __nureality.pending]") == [3, 4]
    kept = page.evaluate("JSON.parse(localStorage.getItem('nureality.session.v1')).queue")
    assert kept == sent[3:]
    expect(page.locator("#done-text")).to_contain_text("Saving your answers (4 left)")
    assert lost and set(lost) == {200}   # the server did store them

    # the network comes back and the participant reloads: the page re-sends, the server keeps one copy
    lose["on"] = False
    page.reload()
    _wait(page, "__nureality.state === 'done' && __nureality.pending === 0")
    expect(page.locator("#done-text")).to_have_text("All your answers are saved. Thank you for taking part!")
    assert page.evaluate("[__nureality.acked, __nureality.events.length]") == [7, 0]
    # the only console errors are the browser's reports of the requests whose responses were lost (or were cut
    # off by the reload)
    failed = f"Failed to load resource: net::ERR_FAILED ({base}/api/events)"
    aborted = f"Failed to load resource: net::ERR_ABORTED ({base}/api/events)"
    assert [e for e in errors if e not in (failed, aborted)] == []
    assert errors.count(failed) >= 1
    # everything comes from the study server (no CDN), three.js from the vendored copy
    assert [u for u in requested if not u.startswith(base + "/")] == []
    assert f"{base}/vendor/three.module.js" in requested and f"{base}/vendor/three.core.js" in requested

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10) as admin:
        rows = admin.get(f"/api/admin/studies/{study['id']}/trials").json()
    assert rows == [{"participant": "P01", "participant_id": rows[0]["participant_id"], "trial": 0, "block": 0,
                     "scenario": "baseline", "attempts": 1, "decision_time_s": safe["t_ms"] / 1000.0, "cross": True,
                     "likert": ANSWERS, "complete": True}]
    con = sqlite3.connect(db)
    try:
        stored = con.execute("SELECT seq, trial, type, t_ms, data FROM nureality_events ORDER BY seq").fetchall()
    finally:
        con.close()
    assert [(s, t, ty, ms, json.loads(d)) for s, t, ty, ms, d in stored] == [
        (e["seq"], e["trial"], e["type"], e["t_ms"], e["data"]) for e in sent]


# ---- vendored three.js ----

def _fake_web(tmp_path: Path, pinned: str = "0.187.0", installed: str | None = "0.187.0",
              split: bool = True) -> Path:
    web = tmp_path / "web"
    web.mkdir(parents=True)
    (web / "package.json").write_text(json.dumps({"dependencies": {"three": pinned}}))
    if installed is not None:
        build = web / "node_modules" / "three" / "build"
        build.mkdir(parents=True)
        (web / "node_modules" / "three" / "package.json").write_text(json.dumps({"version": installed}))
        (build / "three.module.js").write_text("export * from './three.core.js';\n")
        if split:
            (build / "three.core.js").write_text("export const REVISION = '187';\n")
    return web


def test_ensure_vendor_copies_the_pinned_build(tmp_path):
    web = _fake_web(tmp_path)
    assert webassets.vendor_status(web) == {"pinned": "0.187.0", "installed": "0.187.0", "vendored": None, "files": []}
    vendor = webassets.ensure_vendor(web)
    assert vendor == web / "vendor"
    assert (vendor / "three.module.js").read_text() == "export * from './three.core.js';\n"
    assert (vendor / "three.core.js").read_text() == "export const REVISION = '187';\n"
    assert (vendor / "three.version").read_text() == "0.187.0\n"
    assert sorted(p.name for p in vendor.iterdir()) == ["three.core.js", "three.module.js", "three.version"]
    (vendor / "three.module.js").write_text("kept")      # vendored at the pinned version: left alone
    webassets.ensure_vendor(web)
    assert (vendor / "three.module.js").read_text() == "kept"


def test_ensure_vendor_refreshes_a_stale_copy_and_drops_a_stale_split_file(tmp_path):
    web = _fake_web(tmp_path, split=False)
    vendor = web / "vendor"
    vendor.mkdir()
    (vendor / "three.module.js").write_text("old")
    (vendor / "three.core.js").write_text("old core")
    (vendor / "three.version").write_text("0.160.0\n")
    webassets.ensure_vendor(web)
    assert sorted(p.name for p in vendor.iterdir()) == ["three.module.js", "three.version"]
    assert (vendor / "three.version").read_text() == "0.187.0\n"


def test_ensure_vendor_without_npm_install_says_what_to_run(tmp_path):
    web = _fake_web(tmp_path, installed=None)
    with pytest.raises(DiscernError, match=r"package\.json: three 0\.187\.0 is not installed "
                                           r"\(node_modules/three is missing\); run `npm ci` in "):
        webassets.ensure_vendor(web)
    web2 = _fake_web(tmp_path / "b", installed="0.186.0")
    with pytest.raises(DiscernError, match=r"node_modules has three 0\.186\.0"):
        webassets.ensure_vendor(web2)


def test_pinned_version_must_be_exact(tmp_path):
    web = _fake_web(tmp_path, pinned="^0.187.0")
    with pytest.raises(DataError, match=r"package\.json: dependencies\.three must pin an exact version "
                                        r".* got '\^0\.187\.0'"):
        webassets.pinned_three_version(web)


def test_the_package_pins_three_and_ignores_the_vendored_files():
    pkg = json.loads((WEB / "package.json").read_text())
    assert pkg["dependencies"] == {"three": "0.187.0"}
    assert pkg["scripts"]["postinstall"] == "node copy-vendor.mjs"
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/three"]["version"] == "0.187.0"
    for path in ("vendor/three.module.js", "vendor/three.core.js", "node_modules/three/package.json"):
        done = subprocess.run(["git", "check-ignore", "-q", str(WEB / path)], cwd=WEB)
        assert done.returncode == 0, f"{path} is not git-ignored"
    done = subprocess.run(["git", "check-ignore", "-q", str(WEB / "app.js")], cwd=WEB)
    assert done.returncode == 1
