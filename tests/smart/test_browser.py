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


# The redirect URI follows the loopback address; FHIR time limits suit a busy shared CI machine
# (a deadline missed would make criteria unknown, which these tests would read as a regression).
LOADED_MACHINE = {"public_base_url": "", "fhir_deadline": 20.0, "fhir_read_timeout": 15.0}


class _QuietHandler(WSGIRequestHandler):
    """No werkzeug request lines: they would print the callback's one-time code (gunicorn, which
    `mecasermin-cds serve` runs, has its access log off and the app logs paths only)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture
def service(make_app):
    app = make_app(**LOADED_MACHINE)            # the redirect URI follows the loopback address
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


# ----------------------------------------------------------------------------- issue 17

def _serve(app, ssl_context=None):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler, ssl_context=ssl_context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if ssl_context else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_port}"


def _page(browser, **context_options):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, **context_options)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return context, page, problems


def test_standalone_launch_in_a_browser(service, browser):
    ehr = FakeEhr().start()
    try:
        context, page, problems = _page(browser)
        page.goto(f"{service}/smart/launch?iss={ehr.iss}")
        page.wait_for_url(f"{service}/smart/app")
        assert ehr.authorize_requests[-1]["scope"].startswith("launch/patient openid fhirUser")
        assert page.locator("#determination h1").inner_text() == "Meets the policy's criteria"
        assert page.locator("#critical").count() == 0
        assert problems == []
        context.close()
    finally:
        ehr.stop()


def test_patient_launch_in_a_browser_is_plain_and_read_only(service, browser):
    ehr = FakeEhr(fhir_user="Patient/p1").start()
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        context, page, problems = _page(browser)
        page.goto(f"{service}/smart/launch?iss={ehr.iss}&launch=patient-portal-1")
        page.wait_for_url(f"{service}/smart/app")
        assert page.locator("h1").first.inner_text() == "Where the review of mecasermin (Increlex) stands"
        text = page.locator("main").inner_text()
        assert "letter" not in text.lower() and "Observation/" not in text
        assert page.locator("a[href*='packet'], form[action*='write-back']").count() == 0
        assert page.locator("svg.growth-chart").is_visible()
        page.screenshot(path=str(ARTIFACTS / "smart-patient.png"), full_page=True)
        assert page.goto(f"{service}/smart/packet").status == 403
        assert problems == [] or all("403" in p for p in problems)
        context.close()
    finally:
        ehr.stop()


def test_write_back_then_reload_saves_one_document(make_app, browser):
    app = make_app(**LOADED_MACHINE, smart_request_write=True)
    server, base = _serve(app)
    ehr = FakeEhr(app_context="order=MedicationRequest/mr-1").start()
    try:
        context, page, problems = _page(browser)
        page.goto(f"{base}/smart/launch?iss={ehr.iss}&launch=write-1")
        page.wait_for_url(f"{base}/smart/app")
        page.click("text=Prior-authorization letter")
        page.wait_for_url(f"{base}/smart/packet")
        page.click("text=Save the draft to the patient's chart")
        page.wait_for_url(f"{base}/smart/packet/written/**")
        assert "saved to the chart" in page.locator("h1").inner_text()
        for _ in range(2):
            page.reload()
            page.wait_for_load_state("load")
            assert "DocumentReference/doc-1" in page.locator("main").inner_text()
        page.go_back()                                     # back to the letter: a fresh key, nothing resent
        page.wait_for_url(f"{base}/smart/packet")
        assert len(ehr.documents) == 1
        assert ehr.documents[0]["author"][0]["reference"] == "Practitioner/dr-7"
        assert problems == []
        context.close()
    finally:
        ehr.stop()
        server.shutdown()


def test_letter_with_and_without_a_contraindication_in_a_browser(service, browser):
    from tests.fixtures import condition

    clean = FakeEhr(app_context="order=MedicationRequest/mr-1").start()
    sick = FakeEhr(app_context="order=MedicationRequest/mr-1").start()
    sick.prefetch["conditions"]["entry"].append(
        {"resource": condition("c9", "C71.9", "Malignant neoplasm of brain, unspecified")})
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        context, page, problems = _page(browser, accept_downloads=True)
        page.goto(f"{service}/smart/launch?iss={clean.iss}&launch=clean-1")
        page.wait_for_url(f"{service}/smart/app")
        page.goto(f"{service}/smart/packet")
        letter = page.locator("article.letter")
        assert "NOT TO BE SENT" not in letter.inner_text()
        assert "NPI 1234567893" in letter.inner_text()
        assert letter.locator("svg.growth-chart").is_visible()
        with page.expect_download() as download:
            page.click("text=Download PDF")
        pdf = Path(download.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF-")
        context.close()

        context, page, problems = _page(browser)
        page.goto(f"{service}/smart/launch?iss={sick.iss}&launch=sick-1")
        page.wait_for_url(f"{service}/smart/app")
        critical = page.locator("#critical")
        assert critical.is_visible() and critical.bounding_box()["y"] < page.locator("#determination").bounding_box()["y"]
        assert critical.evaluate("e => getComputedStyle(e).borderTopColor") == "rgb(164, 38, 44)"
        page.screenshot(path=str(ARTIFACTS / "smart-contraindication.png"))
        page.goto(f"{service}/smart/packet")
        assert "NOT TO BE SENT" in page.locator("article.letter").inner_text()
        assert page.locator("text=Download PDF").count() == 0
        page.emulate_media(media="print")
        assert page.locator("article.letter .not-to-send").first.is_visible()     # printed too
        page.screenshot(path=str(ARTIFACTS / "smart-packet-blocked-print.png"), full_page=True)
        assert problems == []
        context.close()
    finally:
        clean.stop()
        sick.stop()


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 and ehr.example, made here: no file from elsewhere."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mecasermin-cds test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("ehr.example"), x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _FramingEhr:
    """A page on https://ehr.example (or http) that frames the app's launch URL, as an EHR does."""

    def __init__(self, launch_url: str, tls=None):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        body = (f'<!doctype html><title>EHR</title><h1>Fake EHR chart</h1>'
                f'<iframe id="app" src="{launch_url}" width="1100" height="800"></iframe>').encode()

        class Frame(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Frame)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://ehr.example:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def _cross_site_browser(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM),
                                      args=CHROMIUM_ARGS + ["--host-resolver-rules=MAP ehr.example 127.0.0.1"])


def test_cross_site_iframe_launch_over_https(make_app, tmp_path):
    """The EHR (https://ehr.example) frames the app (https://127.0.0.1): another site. The sign-in
    completes inside the frame because the cookie is SameSite=None; Secure; Partitioned."""
    import ssl

    from playwright.sync_api import sync_playwright

    cert, key = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    ehr = FakeEhr(tls=tls).start()
    app = make_app(**LOADED_MACHINE, fhir_allowlist=("https://127.0.0.1:*",),
                   smart_frame_ancestors=("https://ehr.example:*",))
    app.extensions["mecasermin"].fhir_client.session.verify = str(cert)
    server, base = _serve(app, ssl_context=tls)
    framing = _FramingEhr(f"{base}/smart/launch?iss={ehr.iss}&launch=framed-1", tls)
    try:
        with sync_playwright() as playwright:
            chromium = _cross_site_browser(playwright)
            context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900})
            page = context.new_page()
            page.goto(framing.url)
            frame = page.frame_locator("#app")
            frame.locator("#determination h1").wait_for(timeout=30000)
            assert frame.locator("#determination h1").inner_text() == "Meets the policy's criteria"
            assert page.frames[1].url == f"{base}/smart/app"
            cookie = [c for c in context.cookies() if c["name"] == "mecasermin_smart_session"]
            assert len(cookie) == 1 and cookie[0]["sameSite"] == "None" and cookie[0]["secure"]
            assert cookie[0]["partitionKey"] == "https://ehr.example"        # CHIPS: this EHR's partition only
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "smart-cross-site-frame.png"))
            chromium.close()
    finally:
        framing.stop()
        server.shutdown()
        ehr.stop()


def test_cross_site_iframe_over_plain_http_says_the_cookie_was_withheld(make_app):
    """The control: over http the cookie must stay Lax, the browser withholds it in the cross-site
    frame, and the callback says so (not "expired")."""
    from playwright.sync_api import sync_playwright

    ehr = FakeEhr().start()
    app = make_app(**LOADED_MACHINE, smart_frame_ancestors=("http://ehr.example:*",))
    server, base = _serve(app)
    framing = _FramingEhr(f"{base}/smart/launch?iss={ehr.iss}&launch=framed-2")
    try:
        with sync_playwright() as playwright:
            chromium = _cross_site_browser(playwright)
            page = chromium.new_page()
            page.goto(framing.url)
            frame = page.frame_locator("#app")
            frame.locator("section.error-page h1").wait_for(timeout=30000)
            assert frame.locator("section.error-page h1").inner_text() == \
                "The browser did not send the app's sign-in cookie"
            assert ehr.token_requests == []
            chromium.close()
    finally:
        framing.stop()
        server.shutdown()
        ehr.stop()
