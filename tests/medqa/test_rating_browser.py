"""The rating page in headless Chromium: a physician opens their invitation link, rates a pairwise item by
clicking the radio buttons and submitting, and the rating lands in the database exactly as clicked."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from discern.core.serving import LocalServer
from discern.medqa.rating.app import make_app

ADMIN = "browser-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
RECORDS = [
    {"question": "Can I take ibuprofen with lisinopril? <b>daily</b>",
     "answers": [{"text": "Model answer about NSAIDs. <img src=x onerror=\"window.hacked = 1\">",
                  "source": "model:smollm2"},
                 {"text": "Physician answer about NSAIDs.", "source": "physician"}]},
    {"question": "What causes night sweats?",
     "answers": [{"text": "Model answer on night sweats.", "source": "model:smollm2"},
                 {"text": "Physician answer on night sweats.", "source": "physician"}]},
    {"question": "When should a fever in a toddler be checked by a doctor?",
     "answers": [{"text": "Single model answer about fever.", "source": "model:smollm2"}]},
]
CLICKS = {"consensus": "B", "comprehension": "A", "recall": "tie", "reasoning": "B", "irrelevant": "A",
          "omission": "tie", "bias": "tie", "harm_extent": "A", "harm_likelihood": "B"}


@pytest.fixture
def server(tmp_path):
    path = tmp_path / "ratings.db"
    with LocalServer(make_app(str(path), ADMIN)) as url:
        yield url, path


def test_physician_rates_a_pairwise_item_in_the_browser(server):
    base, path = server
    with httpx.Client(base_url=base, headers=AUTH, timeout=10) as admin:
        sid = admin.post("/api/admin/studies", json={"name": "browser study"}).json()["id"]
        ids = admin.post(f"/api/admin/studies/{sid}/items", json=RECORDS).json()["ids"]
        r1 = admin.post(f"/api/admin/studies/{sid}/raters", json={"name": "rater1", "role": "physician"}).json()
        r2 = admin.post(f"/api/admin/studies/{sid}/raters", json={"name": "rater2", "role": "physician"}).json()
        assert admin.post(f"/api/admin/studies/{sid}/assign",
                          json={"rater_id": r1["id"], "item_ids": [ids[0], ids[2]]}).json() == {"assigned": 2}
        assert admin.post(f"/api/admin/studies/{sid}/assign",
                          json={"rater_id": r2["id"], "item_ids": [ids[1], ids[2]]}).json() == {"assigned": 2}
        assert r1["link"] == f"{base}/rate?token={r1['token']}"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(r1["link"])
            expect(page.locator("#who")).to_contain_text("rater1 (physician)")
            assert page.url == f"{base}/rate"  # the token is dropped from the address bar
            items = page.locator("#items button")
            expect(items).to_have_count(2)
            expect(items.nth(0)).to_contain_text("ibuprofen with lisinopril")
            expect(page.locator("#items .badge")).to_have_text(["to rate", "to rate"])
            expect(page.locator("#progress")).to_have_text("0 of 2 items rated")

            items.nth(0).click()
            expect(page.locator("#question")).to_have_text(RECORDS[0]["question"])
            expect(page.locator("#answers h3")).to_have_text(["Answer A", "Answer B"])
            shown = page.locator("#answers .text").all_text_contents()
            assert sorted(shown) == sorted(a["text"] for a in RECORDS[0]["answers"])
            expect(page.locator("#rubric fieldset")).to_have_count(9)
            body = page.locator("body").inner_text()
            assert "model:smollm2" not in body and "source" not in body.lower()

            # submitting with a question left out is refused in the page and stores nothing
            for axis, value in list(CLICKS.items())[:-1]:
                page.check(f'#rubric input[name="{axis}"][value="{value}"]')
            page.click("#submit")
            expect(page.locator("#status")).to_contain_text("Please answer every question (1 left)")
            page.check(f'#rubric input[name="harm_likelihood"][value="{CLICKS["harm_likelihood"]}"]')
            page.click("#submit")
            expect(page.locator("#status")).to_contain_text("Saved")
            # the page moves on to the next unrated item: the single answer, with the physician rubric
            expect(page.locator("#question")).to_have_text(RECORDS[2]["question"])
            expect(page.locator("#rubric fieldset")).to_have_count(12)
            expect(page.locator("#items .badge")).to_have_text(["rated", "to rate"])
            expect(page.locator("#progress")).to_have_text("1 of 2 items rated")

            con = sqlite3.connect(path)
            try:
                rows = con.execute('SELECT rater_id, item_id, kind, "values" FROM ratings').fetchall()
            finally:
                con.close()
            assert [(a, b, c, json.loads(v)) for a, b, c, v in rows] == [(r1["id"], ids[0], "pairwise", CLICKS)]

            # reopening the rated item shows the stored choices
            items.nth(0).click()
            expect(page.locator("#question")).to_have_text(RECORDS[0]["question"])
            for axis, value in CLICKS.items():
                expect(page.locator(f'#rubric input[name="{axis}"][value="{value}"]')).to_be_checked()

            assert page.evaluate("window.hacked === undefined")  # text is shown as text, never as markup
            assert page.locator("#answers img").count() == 0
            assert errors == []  # no script error, nothing blocked by the Content-Security-Policy

            # the session cannot reach an item assigned only to rater2, by either request API
            assert page.request.get(f"{base}/api/items/{ids[1]}").status == 403
            assert page.request.post(f"{base}/api/items/{ids[1]}/rating", data={"values": CLICKS}).status == 403
            status = page.evaluate("async (id) => (await fetch('/api/items/' + id)).status", ids[1])
            assert status == 403
            assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly
        finally:
            browser.close()
