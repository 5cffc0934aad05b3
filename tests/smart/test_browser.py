"""A real browser through the whole SMART launch: Debian's Chromium driven by Playwright, the
service on a werkzeug server thread and the fake EHR, all on loopback. Screenshots are kept in
test-artifacts/ (git-ignored)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.smart.fake_ehr import FakeEhr

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed; "
                                                      "`make test` installs it with apt-get"),
]


class _QuietHandler(WSGIRequestHandler):
    """No werkzeug request lines: they would print the callback's one-time code (gunicorn, which
    `mecasermin-cds serve` runs, has its access log off and the app logs paths only)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture
def service(make_app):
    app = make_app(public_base_url="")          # the redirect URI follows the loopback address
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_ehr_launch_in_a_browser_renders_checklist_and_chart(service, browser):
    ehr = FakeEhr(app_context="order=MedicationRequest/mr-1").start()
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))

        page.goto(f"{service}/smart/launch?iss={ehr.iss}&launch=browser-launch-1")
        page.wait_for_url(f"{service}/smart/app")
        assert page.title().startswith("Coverage checklist")
        assert page.locator("#determination h1").inner_text() == "Meets the policy's criteria"

        criteria = page.locator("li.criterion")
        assert criteria.count() == 5
        assert [criteria.nth(i).get_attribute("data-status") for i in range(5)] == ["met"] * 5
        assert "Observation/igf1" in page.locator("#criteria").inner_text()

        chart = page.locator("svg.growth-chart")
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box["width"] > 500 and box["height"] > 250
        assert chart.locator("path.centile").count() == 3
        assert chart.locator("path.threshold").count() == 1
        points = chart.locator("circle.measurement")
        assert points.count() == 3
        assert all(points.nth(i).is_visible() for i in range(3))

        assert "0.8 mg per dose" in page.locator("#order").inner_text()
        assert "within the starting range" in page.locator("#label").inner_text()
        # The stylesheet loaded under the page's Content-Security-Policy (the banner is styled).
        assert page.locator(".app-header").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(22, 50, 79)"
        page.screenshot(path=str(ARTIFACTS / "smart-app.png"), full_page=True)
        chart.screenshot(path=str(ARTIFACTS / "smart-growth-chart.png"))

        cookies = context.cookies()
        assert [c["name"] for c in cookies] == ["mecasermin_smart_session"]
        assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Lax" and cookies[0]["path"] == "/smart"
        assert not any(secret in cookies[0]["value"] for secret in ehr.secrets_seen())
        assert page.evaluate("document.cookie") == ""                # invisible to scripts

        page.click("text=Prior-authorization letter")
        page.wait_for_url(f"{service}/smart/packet")
        letter = page.locator("article.letter")
        assert "Tobi Okafor" in letter.inner_text()
        page.screenshot(path=str(ARTIFACTS / "smart-packet.png"), full_page=True)
        page.emulate_media(media="print")
        assert not page.locator(".toolbar").is_visible() and not page.locator(".app-header").is_visible()
        assert letter.is_visible()
        page.screenshot(path=str(ARTIFACTS / "smart-packet-print.png"), full_page=True)

        assert problems == []
        context.close()
    finally:
        ehr.stop()


def test_denied_consent_in_a_browser(service, browser):
    ehr = FakeEhr(authorize_mode="deny").start()
    try:
        page = browser.new_page()
        response_statuses = []
        page.on("response", lambda r: response_statuses.append((r.url.split("?")[0], r.status)))
        page.goto(f"{service}/smart/launch?iss={ehr.iss}&launch=browser-launch-2")
        page.wait_for_selector("section.error-page")
        assert page.locator("h1").inner_text() == "Access was not granted"
        assert (f"{service}/smart/callback", 403) in response_statuses
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "smart-denied.png"))
        page.close()
    finally:
        ehr.stop()
