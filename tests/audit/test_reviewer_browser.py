"""Reviewer pages in Debian's Chromium: sign in, dashboard in Japanese and English, a
table's CSV, search, event proof, report.

``COMMONID_REVIEWER_SCREENSHOTS=docs/reviewer`` refreshes the documentation's screenshots.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from commonid.audit.log import AuditLog
from tests.audit.seed import seed_poc_log
from tests.audit.test_reviewer import REVIEWER, reviewer_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_pages(audit_log: AuditLog, clock, signer, tmp_path: Path) -> Iterator[str]:
    from commonid.audit.report_signing import create_test_organisation

    seed_poc_log(audit_log, clock)
    app = reviewer_app(audit_log, signer, create_test_organisation(tmp_path / "report-signing"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_reviewer_walks_through_the_pages_in_chromium(live_pages: str, tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("COMMONID_REVIEWER_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{live_pages}/reviewer/")
            assert page.url.endswith("/reviewer/login")
            page.screenshot(path=str(shots / "01-sign-in.png"))
            assert page.locator("h1").inner_text() == "レビュアーのサインイン"
            page.fill("input[name=token]", REVIEWER)
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_pages}/reviewer/")
            page.fill("input[name=start]", "2026-11-25")
            page.fill("input[name=end]", "2026-12-02")
            page.click("text=表示")
            assert page.locator("svg").count() == 4
            assert page.locator("svg rect").count() > 7
            assert page.locator("h2").first.inner_text() == "1. 範囲と方法"
            page.screenshot(path=str(shots / "02-dashboard.png"), full_page=True)
            # Every table has its CSV, with the figures the page shows.
            link = page.locator("#table-card_at_kiosk a.csv")
            table_csv = page.request.get(live_pages + link.get_attribute("href"))
            visits = page.locator("#table-card_at_kiosk tbody tr td").nth(1).inner_text()
            assert table_csv.ok and f"kiosk visits,{visits}" in table_csv.text()

            page.click("text=English")  # the same figures, the same period, in English
            assert page.locator("h2").first.inner_text() == "1. Scope and method"
            assert page.locator("input[name=start]").input_value() == "2026-11-25"
            assert page.locator("#table-card_at_kiosk tbody tr td").nth(1).inner_text() == visits
            page.screenshot(path=str(shots / "02-dashboard-en.png"), full_page=True)

            page.click("text=Events")
            page.select_option("select[name=type]", "validation.outcome")
            page.fill("input[name=q]", "invalid")
            page.click("text=Search")
            rows = page.locator("table tr td:nth-child(3)")
            assert rows.count() > 0
            assert set(rows.all_inner_texts()) == {"validation.outcome"}
            page.screenshot(path=str(shots / "03-events.png"), full_page=True)

            page.locator("table tr td a").first.click()
            assert page.locator("text=the proof leads to the signed root").count() == 1
            page.screenshot(path=str(shots / "04-event-proof.png"), full_page=True)

            page.goto(f"{live_pages}/reviewer/report.html?start=2026-11-25&end=2026-12-02")
            title = page.locator("h1").inner_text()
            assert title.split("\n")[0].strip() == "共通ID 実証実験(PoC)結果報告書"
            assert "Common-ID proof of concept: results" in title
            page.screenshot(path=str(shots / "05-report.png"), full_page=True)
        finally:
            browser.close()
    # Everything the pages needed came from the service itself.
    assert requested and all(url.startswith(live_pages) for url in requested)
