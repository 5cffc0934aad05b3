"""The demo FHIR R4 server (fhir-server/server.mjs) as a real process on a loopback port.

It must serve every demo patient, answer the searches the service sends (patient + LOINC codes,
newest first, with paging), speak CORS to a browser, and load or reject Bundles as FHIR says.
"""
from __future__ import annotations

import json
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.integration.conftest import DEMO_PATIENTS, SERVER_DIR, ensure_installed

pytestmark = pytest.mark.integration

BUNDLES = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DEMO_PATIENTS.glob("demo-*.json"))}
FHIR_JSON = "application/fhir+json"
HEIGHT_AND_IGF1 = "http://loinc.org|8302-2,http://loinc.org|2484-4"


def resources(pid: str, resource_type: str) -> list[dict]:
    return [e["resource"] for e in BUNDLES[pid]["entry"] if e["resource"]["resourceType"] == resource_type]


def get(url: str, **params) -> requests.Response:
    response = requests.get(url, params=params or None, headers={"Accept": FHIR_JSON}, timeout=10)
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    return response


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def when(resource: dict) -> datetime:
    return datetime.fromisoformat(resource["effectiveDateTime"])


def test_capability_statement(fhir_server):
    response = get(f"{fhir_server}/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"
    assert statement["implementation"]["url"] == fhir_server
    rest = statement["rest"][0]
    assert {"code": "transaction"} in rest["interaction"]
    by_type = {r["type"]: r for r in rest["resource"]}
    observation_params = {p["name"] for p in by_type["Observation"]["searchParam"]}
    assert {"patient", "code", "date", "category"} <= observation_params
    assert {"beneficiary", "patient", "status", "payor"} <= {p["name"] for p in by_type["Coverage"]["searchParam"]}


@pytest.mark.parametrize("pid", sorted(BUNDLES))
def test_every_demo_patient_can_be_read(fhir_server, pid):
    response = get(f"{fhir_server}/Patient/{pid}")
    assert response.status_code == 200
    patient = response.json()
    assert response.headers["ETag"] == f'W/"{patient["meta"]["versionId"]}"'
    patient.pop("meta")
    assert patient == resources(pid, "Patient")[0]


def test_unknown_patient_is_404_with_an_operation_outcome(fhir_server):
    response = get(f"{fhir_server}/Patient/no-such-patient")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("pid", sorted(BUNDLES))
def test_observation_search_by_patient_and_loinc_codes_newest_first(fhir_server, pid):
    expected = sorted((o for o in resources(pid, "Observation")
                       if o["code"]["coding"][0]["code"] in {"8302-2", "2484-4"}), key=when, reverse=True)
    response = get(f"{fhir_server}/Observation", patient=pid, code=HEIGHT_AND_IGF1, _sort="-date", _count="100")
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["type"] == "searchset" and bundle["total"] == len(expected)
    assert ids(bundle) == [o["id"] for o in expected]
    dates = [when(e["resource"]) for e in bundle["entry"]]
    assert dates == sorted(dates, reverse=True)
    assert all(e["fullUrl"] == f"{fhir_server}/Observation/{e['resource']['id']}" for e in bundle["entry"])
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_observation_search_pages_follow_next_links(fhir_server):
    pid = "demo-reauth-poor"
    full = get(f"{fhir_server}/Observation", patient=pid, code=HEIGHT_AND_IGF1, _sort="-date", _count="100").json()
    url, pages, collected = f"{fhir_server}/Observation", 0, []
    params = {"patient": pid, "code": HEIGHT_AND_IGF1, "_sort": "-date", "_count": "4"}
    while url:
        page = get(url, **params).json()
        assert len(ids(page)) <= 4
        collected += ids(page)
        pages += 1
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        params = {}
    assert collected == ids(full) and pages == -(-len(collected) // 4)


def test_search_without_count_is_paged_by_default(fhir_server):
    bundle = get(f"{fhir_server}/Observation", patient="demo-turner").json()
    assert bundle["total"] > 20 and len(ids(bundle)) == 20
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert parse_qs(urlsplit(next_url).query)["_offset"] == ["20"]


@pytest.mark.parametrize("pid", ["demo-reauth-good", "demo-malignancy-history", "demo-turner", "demo-gh-deficiency"])
def test_the_other_searches_the_service_sends(fhir_server, pid):
    def search(resource_type, **params):
        response = get(f"{fhir_server}/{resource_type}", **params)
        assert response.status_code == 200, response.text
        return ids(response.json())

    def stored(resource_type, keep=lambda r: True):
        return sorted(r["id"] for r in resources(pid, resource_type) if keep(r))

    assert sorted(search("Condition", patient=pid, _count="100")) == stored("Condition")
    active = lambda r: r["clinicalStatus"]["coding"][0]["code"] == "active"   # noqa: E731
    assert sorted(search("Condition", patient=pid, **{"clinical-status": "active"})) == stored("Condition", active)
    assert sorted(search("MedicationRequest", patient=pid, _count="100")) == stored("MedicationRequest")
    assert search("MedicationRequest", patient=pid, status="draft") == [f"{pid}-mecasermin-draft"]
    prior = lambda r: r["status"] in {"active", "completed"}   # noqa: E731
    assert sorted(search("MedicationRequest", patient=pid, status="active,completed")) == stored("MedicationRequest", prior)
    assert sorted(search("AllergyIntolerance", patient=pid, _count="50")) == stored("AllergyIntolerance")
    coverage = stored("Coverage", lambda r: r["status"] == "active")
    assert sorted(search("Coverage", patient=pid, status="active")) == coverage
    assert sorted(search("Coverage", beneficiary=f"Patient/{pid}")) == coverage
    reports = search("DiagnosticReport", patient=pid, _sort="-date", _count="20")
    assert sorted(reports) == stored("DiagnosticReport")


@pytest.mark.parametrize("pid", sorted(BUNDLES))
def test_the_service_prefetch_queries_are_answered(fhir_server, pid):
    from service.fhir.prefetch import fill, templates

    (doctor,) = resources(pid, "Practitioner")          # the ordering physician, the hook's user
    user = f"Practitioner/{doctor['id']}"
    for key, template in templates().items():
        query = fill(template, {"patientId": pid, "userId": user}, user)
        response = get(f"{fhir_server}/{query}")
        assert response.status_code == 200, (key, response.text)
        body = response.json()
        if "?" not in query:                               # a read: the patient, the user
            assert f"{body['resourceType']}/{body['id']}" in (f"Patient/{pid}", user), key
            continue
        resource_type = query.split("?")[0]
        found = ids(body)
        assert set(found) <= {r["id"] for r in resources(pid, resource_type)}, key
        if resource_type == "Observation" and "code" in parse_qs(urlsplit(query).query):
            codes = {c.split("|")[-1] for c in parse_qs(urlsplit(query).query)["code"][0].split(",")}
            wanted = [o for o in resources(pid, "Observation") if o["code"]["coding"][0]["code"] in codes]
            assert body["total"] == len(wanted) and len(found) == len(wanted)
            assert [when(e["resource"]) for e in body["entry"]] == sorted(map(when, wanted), reverse=True)


def test_unknown_search_parameters_are_rejected_not_ignored(fhir_server):
    response = get(f"{fhir_server}/Observation", patient="demo-iss", colour="blue")
    assert response.status_code == 400
    assert "colour" in response.json()["issue"][0]["details"]["text"]
    assert get(f"{fhir_server}/Observation", patient="demo-iss", _sort="-shoe-size").status_code == 400


def test_cors_preflight_for_the_browser_sandbox(fhir_server):
    response = requests.options(f"{fhir_server}/Observation", timeout=10, headers={
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


def test_transactions_are_all_or_nothing(fhir_server_factory):
    base = fhir_server_factory(data=[])
    headers = {"Content-Type": FHIR_JSON}
    patient = {"resourceType": "Patient", "id": "tx-child", "gender": "female", "birthDate": "2019-05-01"}
    height = {"resourceType": "Observation", "id": "tx-height", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
              "subject": {"reference": "Patient/tx-child"}, "effectiveDateTime": "2026-11-01",
              "valueQuantity": {"value": 101.2, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"}}
    broken = {k: v for k, v in height.items() if k != "status"}          # Observation.status is 1..1

    def transaction(*entries):
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in entries]}
        return requests.post(base, data=json.dumps(bundle), headers=headers, timeout=10)

    failed = transaction(patient, broken)
    assert failed.status_code == 400 and failed.json()["resourceType"] == "OperationOutcome"
    assert get(f"{base}/Patient/tx-child").status_code == 404, "the first entry was rolled back"

    done = transaction(patient, height)
    assert done.status_code == 200
    assert done.json()["type"] == "transaction-response"
    assert [e["response"]["status"][:1] for e in done.json()["entry"]] == ["2", "2"]
    assert done.json()["entry"][0]["response"]["location"].startswith(f"{base}/Patient/tx-child")
    found = get(f"{base}/Observation", patient="tx-child", code="http://loinc.org|8302-2").json()
    assert ids(found) == ["tx-height"]


def test_start_up_fails_on_a_bundle_that_does_not_load(tmp_path: Path):
    node = ensure_installed()
    (tmp_path / "a-notes.json").write_text('{"not": "a bundle"}', encoding="utf-8")
    (tmp_path / "broken.json").write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "id": "x", "code": {"text": "height"}},
         "request": {"method": "PUT", "url": "Observation/x"}}]}), encoding="utf-8")
    result = subprocess.run([str(node), str(SERVER_DIR / "server.mjs"), "--port", "0", "--data", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == "", "no 'listening' line for a server that did not load its data"
    assert "skipped a-notes.json: not a FHIR Bundle" in result.stderr
    assert "broken.json" in result.stderr and "Observation.status" in result.stderr


# ----------------------------------------------------------------------------- date-relative demo charts

def _days(value: str) -> date:
    return date.fromisoformat(value[:10])


def test_demo_charts_are_dated_to_the_day_they_are_loaded(fhir_server_factory, tmp_path: Path):
    """A date-relative Bundle moves every date by the days from its anchor (Bundle.timestamp) to
    --today; a Bundle without the tag loads as written."""
    plain = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "plain-child", "birthDate": "2018-02-09"},
         "request": {"method": "PUT", "url": "Patient/plain-child"}}]}
    (tmp_path / "plain.json").write_text(json.dumps(plain), encoding="utf-8")
    bundle = BUNDLES["demo-laron-icd10"]
    anchor = date.fromisoformat(bundle["timestamp"][:10])
    today = anchor + timedelta(days=400)            # across a 29 February
    base = fhir_server_factory(data=[DEMO_PATIENTS, tmp_path], extra=["--today", today.isoformat()])
    shift = today - anchor

    (patient,) = resources("demo-laron-icd10", "Patient")
    assert get(f"{base}/Patient/demo-laron-icd10").json()["birthDate"] == (_days(patient["birthDate"]) + shift).isoformat()
    (order,) = [r for r in resources("demo-laron-icd10", "MedicationRequest") if r["status"] == "draft"]
    served = get(f"{base}/MedicationRequest/{order['id']}").json()
    assert served["authoredOn"] == today.isoformat()
    heights = get(f"{base}/Observation", patient="demo-laron-icd10", code="http://loinc.org|8302-2",
                  _sort="-date", _count="1").json()["entry"][0]["resource"]
    written = max((r for r in resources("demo-laron-icd10", "Observation")
                   if r["code"]["coding"][0]["code"] == "8302-2"), key=when)
    assert heights["id"] == written["id"]
    # The time of day and its offset stay; only the day moves.
    assert heights["effectiveDateTime"][10:] == written["effectiveDateTime"][10:]
    assert _days(heights["effectiveDateTime"]) == _days(written["effectiveDateTime"]) + shift
    assert get(f"{base}/Observation", patient="demo-laron-icd10",
               date=f"ge{(today - timedelta(days=90)).isoformat()}").json()["total"] > 0
    assert get(f"{base}/Patient/plain-child").json()["birthDate"] == "2018-02-09"


def test_a_bad_today_stops_the_server(tmp_path: Path):
    node = ensure_installed()
    result = subprocess.run([str(node), str(SERVER_DIR / "server.mjs"), "--port", "0", "--today", "2027-02-30"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "--today: not a calendar day (YYYY-MM-DD): 2027-02-30" in result.stderr


def test_without_smart_the_smart_endpoints_say_so(fhir_server):
    for answer in (requests.get(f"{fhir_server}/.well-known/smart-configuration", timeout=10),
                   requests.post(f"{fhir_server}/_services/smart/Launch", json={"parameters": {"patient": "x"}},
                                 timeout=10)):
        assert answer.status_code == 404
        assert "start it with --smart" in answer.json()["issue"][0]["details"]["text"]
    # Open mode: no token needed (the CDS service's fetch tests and the public sandbox rely on it).
    assert get(f"{fhir_server}/Patient/demo-iss").status_code == 200
