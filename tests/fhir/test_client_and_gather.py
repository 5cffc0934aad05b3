"""Data gathering against a mocked FHIR server: partial prefetch, OperationOutcome, paging,
timeouts, errors and invalid resources."""
import re

import pytest
import requests
import responses

from service.fhir.client import FhirClient
from service.fhir.gather import PatientUnavailable, gather
from service.fhir.prefetch import templates
from service.settings import Settings
from tests.fixtures import (fhir_bundle, height_observation, order_select_request, patient_resource, practitioner_resource,
                            practitioner_role)

BASE = "http://127.0.0.1:9999/fhir"


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/t.db", fhir_deadline=2.0,
                             fhir_read_timeout=1.0, fhir_retries=2)


@pytest.fixture
def client(settings):
    c = FhirClient(settings)
    yield c
    c.close()


def empty_bundle():
    return {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}


def mock_everything_empty(rsps, **bodies):
    rsps.add(responses.GET, re.compile(rf"{BASE}/Patient/p1"), json=bodies.get("patient", patient_resource()))
    rsps.add(responses.GET, f"{BASE}/Practitioner/dr-7", json=bodies.get("Practitioner", practitioner_resource()))
    for resource_type in ("Condition", "Observation", "MedicationRequest", "MedicationStatement",
                          "MedicationDispense", "MedicationAdministration", "AllergyIntolerance", "Coverage",
                          "DiagnosticReport", "PractitionerRole"):
        rsps.add(responses.GET, re.compile(rf"{BASE}/{resource_type}\?.*"),
                 json=bodies.get(resource_type, empty_bundle()))


def request_without_prefetch(**extra):
    body = order_select_request(prefetch=None)
    body.update({"fhirServer": BASE, "fhirAuthorization": {
        "access_token": "secret-token", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "cds-service"}})
    body.update(extra)
    return body


@responses.activate
def test_full_prefetch_makes_no_request(settings, client):
    gathered = gather(order_select_request(), settings, client)
    assert len(responses.calls) == 0
    assert gathered.gaps == () and "patient" in gathered.prefetched
    assert any(r["resourceType"] == "Patient" for r in gathered.resources)


@responses.activate
def test_missing_keys_are_fetched_with_the_bearer_token(settings, client):
    mock_everything_empty(responses)
    gathered = gather(request_without_prefetch(), settings, client)
    assert gathered.gaps == ()
    assert len(responses.calls) == len(templates())
    assert all(c.request.headers["Authorization"] == "Bearer secret-token" for c in responses.calls)
    observation_call = next(c for c in responses.calls if "/Observation?" in c.request.url)
    assert "_sort=-date" in observation_call.request.url and "patient=p1" in observation_call.request.url


@responses.activate
def test_partial_prefetch_fetches_only_the_rest(settings, client):
    body = request_without_prefetch()
    body["prefetch"] = {"patient": patient_resource(), "conditions": empty_bundle(),
                        "observations": fhir_bundle([height_observation("h1", "2026-10-01", 100.0)])}
    mock_everything_empty(responses)
    gathered = gather(body, settings, client)
    fetched_types = sorted(c.request.url.split("/fhir/")[1].split("?")[0] for c in responses.calls)
    assert fetched_types == ["AllergyIntolerance", "Coverage", "DiagnosticReport", "DiagnosticReport",
                             "MedicationAdministration", "MedicationDispense", "MedicationRequest",
                             "MedicationStatement", "Observation", "Practitioner/dr-7", "PractitionerRole"]
    assert set(gathered.prefetched) == {"patient", "conditions", "observations"}


@responses.activate
def test_operation_outcome_in_prefetch_counts_as_missing(settings, client):
    body = request_without_prefetch()
    body["prefetch"] = {"observations": {"resourceType": "OperationOutcome",
                                         "issue": [{"severity": "error", "code": "timeout"}]}}
    mock_everything_empty(responses)
    gather(body, settings, client)
    assert any("/Observation?" in c.request.url for c in responses.calls)


@responses.activate
def test_null_prefetch_means_no_data_and_is_not_fetched(settings, client):
    body = request_without_prefetch()
    body["prefetch"] = {"coverage": None}
    mock_everything_empty(responses)
    gather(body, settings, client)
    assert not any("/Coverage?" in c.request.url for c in responses.calls)


@responses.activate
def test_next_links_are_followed_up_to_the_page_cap(settings, client):
    pages = []
    for n in range(8):
        page = fhir_bundle([height_observation(f"h{n}", f"2026-0{1 + n % 9}-01", 100.0 + n)])
        page["link"] = [{"relation": "next", "url": f"{BASE}/Observation?page={n + 1}"}]
        pages.append(page)
    responses.add(responses.GET, f"{BASE}/Patient/p1", json=patient_resource())
    for resource_type in ("Condition", "MedicationRequest", "MedicationStatement", "MedicationDispense",
                          "MedicationAdministration", "AllergyIntolerance", "Coverage", "DiagnosticReport"):
        responses.add(responses.GET, re.compile(rf"{BASE}/{resource_type}\?.*"), json=empty_bundle())
    responses.add(responses.GET, re.compile(rf"{BASE}/Observation\?patient=.*"), json=pages[0])
    for n in range(1, 8):
        responses.add(responses.GET, f"{BASE}/Observation?page={n}", json=pages[n])
    gathered = gather(request_without_prefetch(), settings, client)
    heights = [r for r in gathered.resources if r["resourceType"] == "Observation"]
    assert len(heights) == settings.fhir_max_pages


@responses.activate
def test_next_link_to_another_host_is_not_followed(settings, client):
    page = fhir_bundle([height_observation("h1", "2026-01-01", 100.0)])
    page["link"] = [{"relation": "next", "url": "http://attacker.example/steal?page=2"}]
    mock_everything_empty(responses, Observation=page)
    gather(request_without_prefetch(), settings, client)
    assert not any("attacker" in c.request.url for c in responses.calls)


@responses.activate
def test_timeout_and_server_errors_are_technical_gaps(settings, client):
    responses.add(responses.GET, f"{BASE}/Patient/p1", json=patient_resource())
    responses.add(responses.GET, re.compile(rf"{BASE}/Observation\?.*"), body=requests.ReadTimeout())
    responses.add(responses.GET, re.compile(rf"{BASE}/Condition\?.*"), status=500)
    responses.add(responses.GET, re.compile(rf"{BASE}/Coverage\?.*"), status=401)
    for resource_type in ("MedicationRequest", "MedicationStatement", "MedicationDispense",
                          "MedicationAdministration", "AllergyIntolerance", "DiagnosticReport", "PractitionerRole"):
        responses.add(responses.GET, re.compile(rf"{BASE}/{resource_type}\?.*"), json=empty_bundle())
    responses.add(responses.GET, f"{BASE}/Practitioner/dr-7", status=404)
    gathered = gather(request_without_prefetch(), settings, client)
    assert sorted(gathered.gaps) == ["conditions: HTTP 500", "coverage: HTTP 401", "imagingresults: timeout",
                                     "observations: timeout", "prescriber: HTTP 404"]


@responses.activate
def test_503_is_retried_then_succeeds(settings, client):
    mock_everything_empty(responses)
    responses.replace(responses.GET, f"{BASE}/Patient/p1", status=503, headers={"Retry-After": "0"})
    responses.add(responses.GET, f"{BASE}/Patient/p1", json=patient_resource())
    gathered = gather(request_without_prefetch(), settings, client)
    assert gathered.gaps == ()
    assert sum("/Patient/p1" in c.request.url for c in responses.calls) == 2


@responses.activate
def test_invalid_resources_are_skipped_and_counted(settings, client):
    broken = height_observation("bad", "2026-01-01", 100.0)
    broken["effectiveDateTime"] = "last Tuesday"
    body = order_select_request()
    body["prefetch"]["observations"] = fhir_bundle([broken, height_observation("ok", "2026-02-01", 101.0)])
    gathered = gather(body, settings, client)
    assert gathered.invalid == 1
    assert [r["id"] for r in gathered.resources if r["resourceType"] == "Observation"] == ["ok"]


def test_patient_neither_prefetched_nor_fetchable_is_412_material(settings, client):
    body = order_select_request()
    del body["prefetch"]["patient"]
    with pytest.raises(PatientUnavailable, match="no fhirServer"):
        gather(body, settings, client)


@responses.activate
def test_server_outside_the_allowlist_gets_no_request(settings, client):
    body = request_without_prefetch(fhirServer="https://ehr.elsewhere.example/fhir")
    body["prefetch"] = {"patient": patient_resource()}
    gathered = gather(body, settings, client)
    assert len(responses.calls) == 0
    assert all("no FHIR server may be called" in gap for gap in gathered.gaps)


def test_irrelevant_observations_are_dropped_before_validation(settings, client):
    body = order_select_request()
    blood_pressure = height_observation("bp", "2026-01-01", 120.0)
    blood_pressure["code"] = {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}
    body["prefetch"]["observations"] = fhir_bundle([blood_pressure])
    gathered = gather(body, settings, client)
    assert not any(r["id"] == "bp" for r in gathered.resources)


# ------------------------------------------------------------------------------------ the prescriber

def test_the_user_template_is_a_reference_and_nothing_else():
    from service.fhir.prefetch import applies, fill
    assert fill("{{context.userId}}", {"userId": "Practitioner/dr-7"}) == "Practitioner/dr-7"
    for hostile in ("Practitioner/../Patient/p1", "Practitioner/dr 7", "http://evil.example/Practitioner/1", "", 7):
        assert fill("{{context.userId}}", {"userId": hostile}) is None
    roles = templates()["prescriberroles"]
    assert fill(roles, {"userId": "Practitioner/dr-7"}, "Practitioner/dr-7") == \
        "PractitionerRole?practitioner=dr-7&_count=50"
    assert not applies(roles, "PractitionerRole/r1") and applies(roles, "Practitioner/dr-7")


@responses.activate
def test_a_practitioner_role_user_is_read_as_it_is_and_its_practitioners_roles_are_not_asked(settings, client):
    mock_everything_empty(responses)
    responses.add(responses.GET, f"{BASE}/PractitionerRole/r1", json=practitioner_role("r1"))
    body = request_without_prefetch()
    body["context"]["userId"] = "PractitionerRole/r1"
    body["context"]["draftOrders"]["entry"][0]["resource"]["requester"] = {"reference": "PractitionerRole/r1"}
    gathered = gather(body, settings, client)
    assert gathered.gaps == ()
    asked = [c.request.url.split("/fhir/")[1] for c in responses.calls]
    assert "PractitionerRole/r1" in asked and not any(a.startswith("PractitionerRole?") for a in asked)
    assert any(r.get("id") == "r1" for r in gathered.resources)


@responses.activate
def test_a_requester_other_than_the_user_is_read_with_its_roles(settings, client):
    mock_everything_empty(responses)
    responses.add(responses.GET, f"{BASE}/Practitioner/dr-9", json=practitioner_resource("dr-9"))
    responses.replace(responses.GET, re.compile(rf"{BASE}/PractitionerRole\?.*"),
                      json=fhir_bundle([practitioner_role("role-dr-9", pid="dr-9")]), match=[
                          responses.matchers.query_param_matcher({"practitioner": "dr-9", "_count": "50"})])
    responses.add(responses.GET, re.compile(rf"{BASE}/PractitionerRole\?.*"), json=empty_bundle())
    body = request_without_prefetch()
    body["context"]["draftOrders"]["entry"][0]["resource"]["requester"] = {
        "reference": "https://ehr.example.org/fhir/Practitioner/dr-9"}
    gathered = gather(body, settings, client)
    assert gathered.gaps == ()
    asked = sorted(c.request.url.split("/fhir/")[1] for c in responses.calls if "ractitioner" in c.request.url)
    assert asked == ["Practitioner/dr-7", "Practitioner/dr-9", "PractitionerRole?practitioner=dr-7&_count=50",
                     "PractitionerRole?practitioner=dr-9&_count=50"]
    assert {"dr-9", "role-dr-9"} <= {r.get("id") for r in gathered.resources}


def test_a_requester_nobody_may_fetch_is_a_prescriber_gap(settings, client):
    body = order_select_request()
    body["context"]["draftOrders"]["entry"][0]["resource"]["requester"] = {"reference": "PractitionerRole/r-elsewhere"}
    gathered = gather(body, settings, client)
    assert gathered.gaps == ("prescriber: PractitionerRole/r-elsewhere was not prefetched and no FHIR server may be called",)


def _unresolved_as_before(resources: list, drafts: list, user) -> list:
    """`unresolved_references` as it was written before the chart's keys were limited to the types a
    reference can name: every resource's "Type/id" held."""
    from service.fhir.gather import MEDICATION_SOURCES, _relative, roles_query
    held = {f"{r.get('resourceType')}/{r.get('id')}" for r in resources}
    with_roles = {_relative(r.get("practitioner"), "Practitioner") for r in resources
                  if r.get("resourceType") == "PractitionerRole"}
    of_resources = []
    for resource in resources:
        rtype = resource.get("resourceType")
        referrer = f"{rtype}/{resource.get('id')}"
        if rtype in MEDICATION_SOURCES:
            refs = [resource.get("medicationReference")]
        elif rtype == "Coverage":
            refs = [p for p in resource.get("payor") or () if isinstance(p, dict) and not p.get("display")]
        else:
            continue
        for ref in refs:
            target = _relative(ref, "Organization" if rtype == "Coverage" else "Medication")
            named = bool(isinstance(ref, dict) and isinstance(ref.get("display"), str) and ref["display"].strip())
            if target and target not in held and all(w[:2] != (referrer, target) for w in of_resources):
                of_resources.append((referrer, target, named))
    wanted = []
    for draft in drafts:
        requester = draft.get("requester")
        rtype = str(requester.get("reference", "")).split("/_history/")[0].rstrip("/").split("/")[-2:-1]
        target = _relative(requester, rtype[0]) if rtype and rtype[0] in ("Practitioner", "PractitionerRole") else None
        if target and target != user and target not in held and all(w[1] != target for w in wanted):
            wanted.append(("prescriber", target, False))
        if target and target.startswith("Practitioner/") and target != user and target not in with_roles:
            wanted.append(("prescriber", roles_query(target), False))
    return wanted + of_resources


def test_the_references_left_to_read_are_those_of_every_resource_held():
    """Over the corpus, the demo patients and mutated resources (ids missing, of other types, made up;
    references changed), with drafts whose requesters name resources held and not held."""
    import json
    import random

    from service.fhir.gather import unresolved_references
    from service.record.resources import resources_from_bundle
    from tests.fhir.test_validation_corpus import PATIENTS, _mutations
    from tests.fhir.validation_corpus import CORPUS
    resources = [r for _, r, _ in CORPUS] + list(_mutations(seed=29, count=2000))
    for path in sorted(PATIENTS.glob("*.json")):
        resources += resources_from_bundle(json.loads(path.read_text()))
    named = [f"{r.get('resourceType')}/{r.get('id')}" for r in resources] + [
        "Practitioner/None", "PractitionerRole/5", "Medication/None", "Practitioner/nobody", "PractitionerRole/pr1",
        "Practitioner/pp1"]
    rng = random.Random(29)
    for _ in range(300):
        chart = rng.sample(resources, 30) + [
            {"resourceType": "Medication"}, {"resourceType": "Practitioner", "id": 5},
            {"resourceType": "PractitionerRole", "id": "pr1", "practitioner": {"reference": "Practitioner/pp1"}},
            {"resourceType": "Practitioner", "id": "pp1"}, {"resourceType": "Medication", "id": "x"},
            {"resourceType": "MedicationRequest", "id": "m", "medicationReference": {"reference": "Medication/None"}},
            {"resourceType": "Coverage", "id": "c", "payor": [{"reference": f"Organization/{rng.choice(['x', 'None'])}"}]},
            {"resourceType": "MedicationStatement", "id": "s", "medicationReference": {"reference": "Medication/x"}}]
        drafts = [{"resourceType": "MedicationRequest", "requester": {"reference": rng.choice(rng.choice(
            [named, named[-6:], [f"{r.get('resourceType')}/{r.get('id')}" for r in chart]]))}} for _ in range(3)]
        user = rng.choice([None, rng.choice(named)])
        assert unresolved_references(chart, drafts, user) == _unresolved_as_before(chart, drafts, user)
