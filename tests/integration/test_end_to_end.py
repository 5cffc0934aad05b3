"""End to end, as an EHR would use it: the demo FHIR server and the service as real processes.

The service runs under gunicorn through its console script (the `cds_service` fixture, one per
module, its clock pinned to 2026-11-21, the date the demo data were built for) and reads from the
demo FHIR server (`fhir_server`). Every demo patient goes through
order-select and order-sign twice:

- prefetch mode: the test plays the EHR and fulfils the discovery document's prefetch templates by
  querying the FHIR server, then calls without `fhirServer`, so the prefetch alone must do;
- fetch mode: no prefetch, `fhirServer` and a bearer token, so the service fetches every key.

Both must give the same determination (read from the service's audit log), the same cards, and
what sandbox-config/patients/expected.json says. The `patient-view` screen is driven the same way,
and its suggested order is sent back through order-select. The demo script (`make demo`) is run
once for one patient.
"""
from __future__ import annotations

import importlib.util
import json
import re
import socket
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from typing import Iterator
from datetime import date, timedelta
from urllib.parse import quote

import pytest
import requests
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cards.coverage_information import CRD_CODES
from service.validation import violations
from tests.conftest import assert_valid_cds_response
from tests.integration.conftest import DEMO_PATIENTS, DEMO_TODAY, ROOT, CdsServiceProcess

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("mecasermin_demo", ROOT / "sandbox-config" / "demo.py")
demo = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("mecasermin_demo", demo)     # dataclasses look their module up there
_spec.loader.exec_module(demo)

CHARTS = {chart.patient_id: chart for chart in demo.load_charts()}
EXPECTED = json.loads((DEMO_PATIENTS / "expected.json").read_text(encoding="utf-8"))
ORDER_SERVICES = {"order-select": "mecasermin-order-select", "order-sign": "mecasermin-order-sign"}
SCREEN = "mecasermin-screen"
SCREEN_ORDER_ENTRY = "mecasermin-screen-order-entry"
# The screen fires only where the chart leads to mecasermin (docs/clinical-rules.md, "Screening that earns
# its place"): not under 2, with mecasermin on file, a contraindication, another documented cause or a
# normal IGF-1 (patients/expected.json `screening`).
NOT_SCREENED = {pid: "no screening card expected" for pid, want in EXPECTED.items() if not want["screening"]}
# How the coverage card's headline starts for each determination (cards/DESIGN.md).
HEADLINES = {"meets-criteria": ("Prior authorization required — criteria met", "Within the labelled indication",
                                "Coverage moot until the contraindication is resolved"),
             "documentation-needed": ("Prior authorization required — ", "Labelled indication: ", "Ask ",
                                      "Coverage moot until the contraindication is resolved"),
             "does-not-meet": ("Not covered: ", "Outside the labelled indication: ")}
FHIR_JSON = "application/fhir+json"
_CONTEXT_TOKEN = re.compile(r"\{\{\s*context\.(\w+)\s*\}\}")
_USER_TOKEN = re.compile(r"\{\{\s*(userPractitionerId|userPractitionerRoleId|userPatientId|userRelatedPersonId)\s*\}\}")
_USER_TYPES = {"userPractitionerId": "Practitioner", "userPractitionerRoleId": "PractitionerRole",
               "userPatientId": "Patient", "userRelatedPersonId": "RelatedPerson"}


def test_every_demo_chart_has_an_expected_outcome():
    assert set(CHARTS) == set(EXPECTED) == set(demo.load_expected())


# ----------------------------------------------------------------------------- playing the EHR

def fill_template(template: str, context: dict) -> str | None:
    """A prefetch template with its tokens replaced as an EHR does; None when a token has no value."""
    missing = False

    def context_value(match: re.Match) -> str:
        nonlocal missing
        value = context.get(match.group(1))
        if not isinstance(value, str):
            missing = True
            return ""
        # `context.userId` is a reference ("Practitioner/123"): an EHR puts it in the URL as a path.
        return value if match.group(1) == "userId" else quote(value, safe="")

    def user_value(match: re.Match) -> str:
        nonlocal missing
        kind, _, user_id = str(context.get("userId", "")).partition("/")
        if kind != _USER_TYPES[match.group(1)]:
            missing = True
        return quote(user_id, safe="")

    filled = _USER_TOKEN.sub(user_value, _CONTEXT_TOKEN.sub(context_value, template))
    return None if missing else filled


def ehr_prefetch(fhir_base: str, templates: dict[str, str], context: dict) -> dict:
    """Each template filled for this patient and run against the FHIR server: what an EHR sends."""
    prefetch = {}
    for key, template in templates.items():
        query = fill_template(template, context)
        assert query is not None, f"{key}: a token of {template!r} has no value in the context"
        response = requests.get(f"{fhir_base}/{query}", headers={"Accept": FHIR_JSON}, timeout=10)
        if response.status_code == 404 and "?" not in query:
            prefetch[key] = None            # a read with no data is null
            continue
        assert response.status_code == 200, (key, query, response.text[:300])
        prefetch[key] = response.json()
    return prefetch


def call(service, service_id: str, body: dict) -> dict:
    response = requests.post(f"{service.base_url}/cds-services/{service_id}", json=body, timeout=30)
    assert response.status_code == 200, response.text[:1000]
    result = response.json()
    assert_valid_cds_response(result)
    return result


def audit(service, hook_instance: str, service_id: str | None = None) -> dict:
    """The audit row of one call (an EHR sends one hookInstance to every service of the hook)."""
    with closing(sqlite3.connect(service.database, timeout=10)) as db:
        rows = db.execute("SELECT service, determination, counts FROM audit WHERE hook_instance = ?",
                          (hook_instance,)).fetchall()
    rows = [row for row in rows if service_id is None or row[0] == service_id]
    assert len(rows) == 1, f"{len(rows)} audit rows for {hook_instance} {service_id or ''}"
    return {"service": rows[0][0], "determination": rows[0][1], "counts": json.loads(rows[0][2])}


def topic(card: dict) -> str:
    return card["source"]["topic"]["code"]


def card_view(result: dict) -> list[tuple[str, str, str]]:
    """What a clinician sees, without the per-call uuids."""
    return [(card["indicator"], topic(card), card["summary"]) for card in result["cards"]]


def screen_request(chart, hook: str = "patient-view", fhir_base: str | None = None, prefetch: dict | None = None,
                   draft: dict | None = None) -> dict:
    body = {"hookInstance": str(uuid.uuid4()), "hook": hook}
    if fhir_base:
        body["fhirServer"] = fhir_base
        body["fhirAuthorization"] = {"access_token": "opaque-ehr-token", "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "mecasermin-cds", "patient": chart.patient_id}
    body["context"] = {"userId": chart.user_id, "patientId": chart.patient_id}
    if draft is not None:
        body["context"]["selections"] = [f"MedicationRequest/{draft['id']}"]
        body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": draft}]}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


@pytest.fixture(scope="module")
def discovery(cds_service) -> dict[str, dict]:
    body = requests.get(f"{cds_service.base_url}/cds-services", timeout=10).json()
    assert not violations("discovery.schema.json", body)
    return {service["id"]: service for service in body["services"]}


# ----------------------------------------------------------------------------- order-select and order-sign

@pytest.mark.parametrize("pid", sorted(CHARTS))
def test_both_hooks_in_prefetch_and_fetch_mode_give_the_expected_determination(pid, fhir_server, cds_service,
                                                                                discovery):
    chart, expected = CHARTS[pid], EXPECTED[pid]
    has_coverage = '"Coverage"' in (DEMO_PATIENTS / f"{pid}.json").read_text(encoding="utf-8")
    for hook, service_id in ORDER_SERVICES.items():
        templates = discovery[service_id]["prefetch"]
        context = demo.hook_request(chart, hook)["context"]
        by_mode = {
            "prefetch": demo.hook_request(chart, hook, prefetch=ehr_prefetch(fhir_server, templates, context)),
            "fetch": demo.hook_request(chart, hook, fhir_base=fhir_server),
        }
        results, audits = {}, {}
        for mode, body in by_mode.items():
            results[mode] = call(cds_service, service_id, body)
            audits[mode] = audit(cds_service, body["hookInstance"])
        assert audits["prefetch"]["counts"]["prefetched_keys"] == len(templates)
        assert audits["prefetch"]["counts"]["fetched_keys"] == 0
        assert audits["fetch"]["counts"]["fetched_keys"] == len(templates)
        assert audits["fetch"]["counts"]["prefetched_keys"] == 0
        assert audits["prefetch"]["counts"]["gaps"] == audits["fetch"]["counts"]["gaps"] == 0
        assert audits["prefetch"]["counts"]["resources"] == audits["fetch"]["counts"]["resources"]

        determination = audits["fetch"]["determination"]
        assert audits["prefetch"]["determination"] == determination, (hook, audits)
        assert card_view(results["prefetch"]) == card_view(results["fetch"]), hook

        for mode, result in results.items():
            cards = result["cards"]
            coverage = [c for c in cards if topic(c) == "coverage-info"]
            assert len(coverage) == 1, (mode, hook)
            assert coverage[0]["summary"].startswith(HEADLINES[expected["determination"]]), (mode, hook)
            covered = demo.crd_covered(result)
            assert covered == (CRD_CODES[expected["determination"]][0] if has_coverage else None), (mode, hook)
            critical = {topic(c) for c in cards if c["indicator"] == "critical"}
            assert ("contraindication" in critical) == expected["contraindication"], (mode, hook, critical)
            assert ("off-guideline" in critical) == expected["dose_critical"], (mode, hook, critical)
        assert determination == expected["determination"], hook


# ----------------------------------------------------------------------------- patient-view screen

@pytest.mark.parametrize("pid", sorted(CHARTS))
def test_patient_view_screen_and_its_draft_order(pid, fhir_server, cds_service, discovery):
    chart = CHARTS[pid]
    templates = discovery[SCREEN]["prefetch"]
    # What the order services read, but the prescriber (no order is being prescribed yet).
    assert templates == {key: query for key, query in discovery[ORDER_SERVICES["order-select"]]["prefetch"].items()
                         if not key.startswith("prescriber")}
    context = screen_request(chart)["context"]
    prefetched = screen_request(chart, prefetch=ehr_prefetch(fhir_server, templates, context))
    fetched = screen_request(chart, fhir_base=fhir_server)
    results = {"prefetch": call(cds_service, SCREEN, prefetched), "fetch": call(cds_service, SCREEN, fetched)}
    assert audit(cds_service, prefetched["hookInstance"])["counts"]["prefetched_keys"] == len(templates)
    assert audit(cds_service, fetched["hookInstance"])["counts"]["fetched_keys"] == len(templates)
    assert card_view(results["prefetch"]) == card_view(results["fetch"])
    if pid in NOT_SCREENED:
        assert results["fetch"] == {"cards": []}, NOT_SCREENED[pid]
        return

    (card,) = results["fetch"]["cards"]
    assert card["indicator"] == "info" and topic(card) == "clinical-reminder"
    assert card["summary"].startswith("Short stature: height \u2212")
    if "work up" in card["summary"]:        # no qualifying IGF-1 and GH yet: the work-up, never the drug
        assert {s["actions"][0]["resource"]["resourceType"] for s in card["suggestions"]} == {"ServiceRequest"}
        return
    (action,) = card["suggestions"][0]["actions"]
    order = action["resource"]
    assert action["type"] == "create" and order["status"] == "draft"
    MedicationRequest.model_validate(order)
    assert order["subject"] == {"reference": f"Patient/{pid}"}
    assert order["medicationCodeableConcept"]["coding"][0]["code"] == "15054-1040-05"

    # Accepting the suggestion puts the order in the EHR's draft orders: order-select then fires for it.
    body = demo.hook_request(demo.Chart(chart.patient, order), "order-select", fhir_base=fhir_server)
    result = call(cds_service, ORDER_SERVICES["order-select"], body)
    assert audit(cds_service, body["hookInstance"])["determination"] in HEADLINES
    assert any(topic(c) == "coverage-info" for c in result["cards"])
    # The suggested starting dose is inside the label's starting range: no dose card.
    assert not [c for c in result["cards"] if topic(c) == "off-guideline"], result["cards"]
    if pid == "demo-laron-icd10":
        assert audit(cds_service, body["hookInstance"])["determination"] == "meets-criteria"


def test_empty_order_form_is_filled_in_as_mecasermin(fhir_server, cds_service, discovery):
    """The CDS Hooks sandbox's Rx View fires order-select before a drug is chosen (no Bundle.type)."""
    chart = CHARTS["demo-laron-icd10"]
    empty = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
             "subject": {"reference": f"Patient/{chart.patient_id}"}, "authoredOn": DEMO_TODAY.isoformat()}
    body = screen_request(chart, hook="order-select", fhir_base=fhir_server, draft=empty)
    assert call(cds_service, ORDER_SERVICES["order-select"], body) == {"cards": []}
    (card,) = call(cds_service, SCREEN_ORDER_ENTRY, body)["cards"]
    (action,) = card["suggestions"][0]["actions"]
    assert action["type"] == "update" and action["resource"]["id"] == "request-123"

    filled = screen_request(chart, hook="order-select", fhir_base=fhir_server, draft=action["resource"])
    assert call(cds_service, SCREEN_ORDER_ENTRY, filled) == {"cards": []}      # silent once a drug is named
    result = call(cds_service, ORDER_SERVICES["order-select"], filled)
    assert audit(cds_service, filled["hookInstance"], ORDER_SERVICES["order-select"])["determination"] == "meets-criteria"
    assert [topic(c) for c in result["cards"]] == ["coverage-info"]


@pytest.fixture
def own_cds_service(fhir_server, tmp_path) -> Iterator[CdsServiceProcess]:
    """A service with a database of its own: a dismissed screening card stops the screen for that child
    (docs/clinical-rules.md), which must not leak into the module's other tests."""
    service = CdsServiceProcess(tmp_path / "own.sqlite3", fhir_server, today=DEMO_TODAY, workers=1)
    try:
        yield service
    finally:
        service.stop()
        service.stderr.close()


def test_browser_preflight_and_feedback_on_the_screen(fhir_server, own_cds_service):
    cds_service = own_cds_service
    # Feedback is taken only for cards the service issued: two screening cards first.
    cards = [call(cds_service, SCREEN, screen_request(CHARTS["demo-laron-icd10"], fhir_base=fhir_server))["cards"][0]
             for _ in range(2)]
    preflight = requests.options(f"{cds_service.base_url}/cds-services/{SCREEN}", timeout=10, headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
    # What the sandbox posts when a suggestion is accepted, and when a card is dismissed with a reason.
    feedback = {"feedback": [
        {"card": cards[0]["uuid"], "outcome": "accepted",
         "acceptedSuggestions": [{"id": cards[0]["suggestions"][0]["uuid"]}],
         "outcomeTimestamp": "2026-11-21T10:15:00.000Z"},
        {"card": cards[1]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:16:00.000Z",
         "overrideReason": {"reason": {"code": "cause-known", "system": "urn:mecasermin-cds:CodeSystem:override-reason"}}},
    ]}
    response = requests.post(f"{cds_service.base_url}/cds-services/{SCREEN}/feedback", json=feedback, timeout=10,
                             headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert response.status_code == 200 and response.json() == {"stored": 2}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_serve_today_pins_the_evaluation_date(fhir_server, tmp_path):
    later = CdsServiceProcess(tmp_path / "later.sqlite3", fhir_server, today=date(2027, 6, 1), workers=1)
    try:
        (card,) = call(later, SCREEN, screen_request(CHARTS["demo-laron-icd10"], fhir_base=fhir_server))["cards"]
    finally:
        later.stop()
        later.stderr.close()
    order = card["suggestions"][0]["actions"][0]["resource"]
    assert order["authoredOn"] == "2027-06-01"
    # The chart's latest weight (2026-11-05) is over 90 days old by then: no dose in mg.
    assert card["suggestions"][0]["label"] == "Draft mecasermin 0.04 mg/kg twice daily"


# ----------------------------------------------------------------------------- make demo

def _refused(port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_demo_script_prints_cards_and_determination_and_stops_its_servers(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "sandbox-config" / "demo.py"), "--patient", "demo-overdose",
                             "--today", DEMO_TODAY.isoformat(), "--no-color", "--cards", str(tmp_path / "cards")],
                            capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "order-select" in out and "order-sign" in out
    assert "[CRITICAL] Mecasermin dose" in out and "(off-guideline)" in out
    assert "determination meets-criteria; CRD covered: covered" in out
    assert "\u2713 IGF-1 SDS: 20 ng/mL" in out                          # the coverage checklist
    assert "both servers stopped" in out
    assert re.search(r"demo-overdose +meets-criteria +covered +off-guideline +card +meets-criteria ✓", out), out[-800:]
    ports = [int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)/", out)]
    assert len(set(ports)) == 2 and all(_refused(port) for port in ports)
    # --cards: each card alone, as the sandbox's Card Demo takes it (a card object, not a response)
    saved = sorted(p.name for p in (tmp_path / "cards").iterdir())
    assert saved == ["demo-overdose.order-select.1.json", "demo-overdose.order-select.2.json",
                     "demo-overdose.order-sign.1.json", "demo-overdose.order-sign.2.json",
                     "demo-overdose.order-sign.3.json", "demo-overdose.patient-view.1.json"], saved
    dose = json.loads((tmp_path / "cards" / "demo-overdose.order-select.1.json").read_text(encoding="utf-8"))
    assert dose["indicator"] == "critical" and dose["summary"].startswith("Mecasermin dose") and "cards" not in dose


def test_demo_a_year_ahead_checks_every_outcome_and_passes():
    """The charts are dated relative to the day they are loaded: a year from now the demo's
    outcomes are still the expected ones, and the sandbox walkthrough's screening card still reads
    as sandbox-config/README.md says."""
    ahead = date.today() + timedelta(days=366)
    result = subprocess.run([sys.executable, str(ROOT / "sandbox-config" / "demo.py"), "--today", ahead.isoformat(),
                             "--no-color"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    summary_table = out.split("\nSummary")[-1]      # the checklists above use ✓ and ✗ as criterion marks
    assert f"today {ahead}" in out and "✗" not in summary_table
    assert summary_table.count(" ✓") == len(EXPECTED)
    walkthrough = (ROOT / "sandbox-config" / "README.md").read_text(encoding="utf-8")
    section = out.split("━━ demo-laron-icd10")[1].split("━━")[0]
    summary = re.search(r"patient-view .* screening: (.+)", section).group(1)
    assert summary.startswith("Short stature") and summary in " ".join(walkthrough.split())
    # The draft order moved with the chart: authored on the pinned day, the patient born a year later.
    born = re.search(r"━━ demo-laron-icd10 — male, born (\S+)", out).group(1)
    assert date.fromisoformat(born) == date.fromisoformat(CHARTS["demo-laron-icd10"].patient["birthDate"]) + (
        ahead - DEMO_TODAY)


def _outcome(**changes):
    base = {"patient_id": "demo-overdose", "determinations": {"order-select": "meets-criteria",
                                                              "order-sign": "meets-criteria"},
            "covered": "covered", "critical": ["off-guideline"], "screening": True}
    return demo.Outcome(**{**base, **changes})


def test_demo_check_reports_every_kind_of_difference():
    want = EXPECTED["demo-overdose"]
    assert demo.differences(_outcome(), want) == []
    assert demo.differences(_outcome(critical=["contraindication", "off-guideline"]), want) == [
        "unexpected critical card (contraindication)"]
    assert demo.differences(_outcome(critical=[]), want) == ["missing critical card (off-guideline)"]
    assert demo.differences(_outcome(determinations={"order-select": "meets-criteria",
                                                     "order-sign": "documentation-needed"}, covered="conditional"),
                            want) == ["order-sign: determination documentation-needed, expected meets-criteria",
                                      "CRD covered conditional, expected covered"]
    assert demo.differences(_outcome(screening=False), want) == ["no screening card, expected one"]
    assert demo.differences(_outcome(), None) == ["no expected outcome in patients/expected.json"]


PATIENTS_README = (DEMO_PATIENTS / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("pid", sorted(set(CHARTS) - set(NOT_SCREENED)))
def test_patients_readme_quotes_the_screening_card(pid, fhir_server, cds_service):
    """patients/README's height figures are the ones the card shows, not typed beside them."""
    (card,) = call(cds_service, SCREEN, screen_request(CHARTS[pid], fhir_base=fhir_server))["cards"]
    sds, age = re.match(r"Short stature: height (\u2212\d\.\d\d) SD at (\d+\.\d) y", card["summary"]).groups()
    (row,) = [line for line in PATIENTS_README.splitlines() if line.startswith(f"| `{pid}` |")]
    assert f"height {sds} SD at {age} y" in row


def test_demo_exits_1_on_a_difference(tmp_path):
    """An outcome that differs from the expected file fails `make demo`, and says how."""
    changed = json.loads(json.dumps(EXPECTED))
    changed["demo-overdose"]["dose_critical"] = False          # the dose card is then an unexpected extra
    changed["demo-overdose"]["determination"] = "documentation-needed"
    expected_file = tmp_path / "expected.json"
    expected_file.write_text(json.dumps(changed), encoding="utf-8")
    result = subprocess.run([sys.executable, str(ROOT / "sandbox-config" / "demo.py"), "--patient", "demo-overdose",
                             "--expected", str(expected_file), "--no-color"],
                            capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "✗ unexpected critical card (off-guideline)" in result.stdout
    assert "✗ order-select: determination meets-criteria, expected documentation-needed" in result.stdout
    assert "1 patient differs from the expected outcomes" in result.stderr
