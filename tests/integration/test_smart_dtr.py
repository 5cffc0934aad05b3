"""The DTR questionnaire in a real browser: Debian's Chromium through Playwright, the demo EHR (the FHIR
server with its SMART authorization server) and the service as real processes (`make smart-demo`).

A demo patient whose chart lacks documentation (sandbox-config/patients/expected.json) opens the form
rendered by LHC-Forms, sees the criteria the chart settles read-only, answers the open question, and
the determination shown changes from "documentation needed" to "criteria met". Screenshots go to
test-artifacts/ (git-ignored), or to $DTR_SHOTS when set.
"""
from __future__ import annotations

import json
import os
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import DEMO_PATIENTS, ensure_installed
from tests.integration.test_smart_demo import PRACTITIONER, smart_demo
from tests.smart.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PATIENT = "demo-no-bone-age"
SHOTS = Path(os.environ.get("DTR_SHOTS") or ARTIFACTS)


@pytest.fixture(scope="module")
def running():
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed; `make test` installs it with apt-get")
    ensure_installed()
    with ExitStack() as stack:
        yield smart_demo.start(stack, date.today())


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.on("console", lambda message: page.problems.append(message.text) if message.type == "error" else None)
        yield page
        browser.close()


def _sign_in(running, page):
    page.goto(running.ehr_launch(PATIENT))
    page.wait_for_selector("#approve")
    page.select_option("#practitioner", PRACTITIONER)
    page.click("#approve")
    page.wait_for_url(f"{running.service_base}/smart/app")


def test_the_demo_patient_answers_what_the_chart_lacks_and_the_determination_changes(running, page):
    assert json.loads((DEMO_PATIENTS / "expected.json").read_text())[PATIENT]["determination"] == "documentation-needed"
    SHOTS.mkdir(parents=True, exist_ok=True)
    _sign_in(running, page)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "(window.cspViolations = window.cspViolations || []).push(e.violatedDirective))")
    page.click("text=Prior-authorization questionnaire")
    page.wait_for_url(f"{running.service_base}/smart/dtr")
    status = page.locator("#dtr-status")
    assert status.get_attribute("data-determination") == "documentation-needed"
    assert page.locator("#dtr-determination").inner_text() == "Documentation needed"

    # Step 1: what the chart settles, drawn by LHC-Forms, read-only, with its evidence.
    page.wait_for_selector("#dtr[data-groups='1'] lhc-item")
    form = page.locator("#dtr-form")
    assert "Already in the chart" in form.inner_text()
    settled = form.locator("lhc-item[id^='item-on-file.'] input")
    assert settled.count() >= 8 and all(settled.nth(i).is_disabled() for i in range(settled.count()))
    evidence = form.locator("input[id^='on-file.igf1.evidence/']")
    assert "SDS" in evidence.first.input_value() and "ng/mL" in evidence.first.input_value()
    assert page.locator("link[href$='webcomponent/styles.css']").count() == 1
    # The renderer's styles took effect under the page's nonce policy, and nothing was refused.
    assert page.evaluate("window.cspViolations || []") == []
    assert form.locator("lhc-item[id*='.source/']").first.evaluate("e => getComputedStyle(e).display") == "none"
    page.screenshot(path=str(SHOTS / "dtr-1-chart-settled.png"), full_page=True)

    # Step 2: the one open question (bone age); nothing else is asked.
    page.click("#dtr-continue")
    page.wait_for_selector("#dtr[data-groups='2']")
    asked = form.locator("lhc-item[id^='item-q-']")
    assert asked.count() >= 3
    assert {asked.nth(i).get_attribute("id").split(".")[0].split("/")[0] for i in range(asked.count())} == \
        {"item-q-bone-age"}
    value = form.locator("input[id^='q-bone-age.value/']")
    assert value.is_enabled()
    value.fill("6.5")
    taken = form.locator("[id^='q-bone-age.date/'] input, input[id^='q-bone-age.date/']").first   # the date picker
    taken.click()
    taken.fill((date.today() - timedelta(days=20)).strftime("%m/%d/%Y"))
    taken.press("Enter")
    page.screenshot(path=str(SHOTS / "dtr-2-question-answered.png"), full_page=True)

    # A reload resumes the questionnaire at the open question (the session keeps it), not from the start.
    page.reload()
    page.wait_for_selector("#dtr[data-groups='2']")
    assert page.locator("#dtr-restart").is_visible()
    value = form.locator("input[id^='q-bone-age.value/']")
    value.fill("6.5")
    taken = form.locator("[id^='q-bone-age.date/'] input, input[id^='q-bone-age.date/']").first
    taken.click()
    taken.fill((date.today() - timedelta(days=20)).strftime("%m/%d/%Y"))
    taken.press("Enter")

    # Step 3: the determination, with the answer: criteria met.
    page.click("#dtr-continue")
    page.wait_for_selector("#dtr[data-status='completed']")
    assert page.locator("#dtr-message").is_hidden(), page.locator("#dtr-message").inner_text()
    assert status.get_attribute("data-determination") == "meets-criteria"
    assert page.locator("#dtr-determination").inner_text() == "Meets the criteria"
    assert "with the answers given" in page.locator("#dtr-determination-basis").inner_text()
    assert form.locator("lhc-item[id^='item-determination']").count() > 0
    assert value.input_value() == "6.5" and value.is_disabled()      # completed: nothing typed now would count
    page.screenshot(path=str(SHOTS / "dtr-3-criteria-met.png"), full_page=True)

    # The letter lists the questions and answers; the prescriber's answer is marked as theirs.
    page.click("#dtr-letter")
    page.wait_for_url(f"{running.service_base}/smart/packet")
    section = page.locator("#letter-questionnaire")
    text = section.inner_text()
    assert "Meets the criteria" in text and "6.5 years" in text and "prescriber" in text
    section.screenshot(path=str(SHOTS / "dtr-4-letter-section.png"))
    # The letter as a whole says what the questionnaire decided: the bone age criterion met on the
    # prescriber's attestation, nothing left to complete, and the conclusion that asks for approval.
    bone_age = page.locator(".letter-criteria li", has_text="Bone age below").inner_text()
    assert "Met: Bone age 6.5" in bone_age and "attested by the prescriber in the plan's questionnaire" in bone_age
    assert page.locator(".to-complete").count() == 0
    assert "I ask that it be approved" in page.locator(".conclusion").inner_text()
    assert "attested by the prescriber" in page.locator("ul.supporting").inner_text()
    page.locator(".letter-criteria").screenshot(path=str(SHOTS / "dtr-5-letter-criteria.png"))
    assert page.problems == []
