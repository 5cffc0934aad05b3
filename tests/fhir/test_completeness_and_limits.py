"""What one call gathers is complete or says what it is missing: incomplete prefetched searches
are completed (or become gaps), references are followed, and the call's time, bytes and resources
are bounded across all its fetches — with a gap naming what was left unread."""
import re
import socket
import threading
import time
from urllib.parse import unquote

import pytest
import responses

from service.fhir.client import Budget, FhirClient, incomplete_search
from service.fhir.gather import gather, referenced_medications
from service.fhir.prefetch import templates
from service.settings import Settings
from tests.fixtures import condition, coverage, fhir_bundle, height_observation, order_select_request

BASE = "http://127.0.0.1:9999/fhir"
TOKEN = {"access_token": "tok-abc", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
         "subject": "mecasermin-cds"}


def make_settings(tmp_path, **overrides):
    return Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/t.db", fhir_read_timeout=1.0, **overrides)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, fhir_deadline=2.0)


@pytest.fixture
def client(settings):
    c = FhirClient(settings)
    yield c
    c.close()


def with_server(body):
    body.update({"fhirServer": BASE, "fhirAuthorization": TOKEN})
    return body


def leukaemia_history():
    return condition("c3", "Z85.6", "Personal history of leukemia", status="resolved")


def partial_conditions():
    """Page 1 of 2 of a Condition search: total 3, two entries, a next link (page 2 holds Z85.6)."""
    page = fhir_bundle([condition("c1", "E34.321", "Primary IGF-1 deficiency"),
                        condition("c2", "R62.52", "Short stature (child)")])
    page["total"] = 3
    page["link"] = [{"relation": "next", "url": f"{BASE}/Condition?patient=p1&_page=2"}]
    return page


@pytest.mark.parametrize("bundle,incomplete", [
    (fhir_bundle([condition("c1", "E34.321", "x")]), None),
    ({**fhir_bundle([condition("c1", "E34.321", "x")]), "total": 3}, "it holds 1 of 3 matches"),
    ({**fhir_bundle([]), "link": [{"relation": "next", "url": f"{BASE}/Condition?page=2"}]}, "it has a next page"),
    # an `_include`d resource is not a match: one match of total 1 is complete
    ({"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [
        {"resource": coverage(), "search": {"mode": "match"}},
        {"resource": {"resourceType": "Organization", "id": "o1"}, "search": {"mode": "include"}}]}, None),
    ({"resourceType": "Bundle", "type": "collection", "total": 9, "entry": []}, None),
])
def test_incomplete_search_is_told_by_total_and_next_link(bundle, incomplete):
    assert incomplete_search(bundle) == incomplete


@responses.activate
def test_incomplete_prefetch_is_completed_from_the_server(settings, client):
    body = with_server(order_select_request())
    body["prefetch"]["conditions"] = partial_conditions()
    responses.add(responses.GET, re.compile(rf"{BASE}/Condition\?patient=p1&_count=100"),
                  json=fhir_bundle([condition("c1", "E34.321", "Primary IGF-1 deficiency"),
                                    condition("c2", "R62.52", "Short stature (child)"), leukaemia_history()]))
    gathered = gather(body, settings, client)
    assert gathered.gaps == ()
    assert "conditions" in gathered.fetched and "conditions" not in gathered.prefetched
    assert {r["id"] for r in gathered.resources if r["resourceType"] == "Condition"} == {"c1", "c2", "c3"}
    assert [c.request.headers["Authorization"] for c in responses.calls] == ["Bearer tok-abc"]


def test_incomplete_prefetch_without_a_server_is_a_gap_naming_it(settings, client):
    body = order_select_request()
    body["prefetch"]["conditions"] = partial_conditions()
    gathered = gather(body, settings, client)
    (gap,) = gathered.gaps
    assert gap.startswith("conditions: the prefetched search is incomplete (it holds 2 of 3 matches)")
    assert "no FHIR server may be called" in gap
    # what was prefetched is still read
    assert {r["id"] for r in gathered.resources if r["resourceType"] == "Condition"} == {"c1", "c2"}


@responses.activate
def test_incomplete_prefetch_that_cannot_be_completed_keeps_its_data_and_says_why(settings, client):
    body = with_server(order_select_request())
    body["prefetch"]["conditions"] = partial_conditions()
    responses.add(responses.GET, re.compile(rf"{BASE}/Condition\?.*"), status=503)
    gathered = gather(body, settings, client)
    (gap,) = gathered.gaps
    assert gap.startswith("conditions: the prefetched search is incomplete") and gap.endswith("HTTP 503")
    assert {r["id"] for r in gathered.resources if r["resourceType"] == "Condition"} == {"c1", "c2"}


@responses.activate
def test_payor_organization_without_a_name_is_read(settings, client):
    body = with_server(order_select_request())
    body["prefetch"]["coverage"] = fhir_bundle([{**coverage(), "payor": [{"reference": "Organization/org-7"}]}])
    responses.add(responses.GET, f"{BASE}/Organization/org-7",
                  json={"resourceType": "Organization", "id": "org-7", "name": "Premera Blue Cross"})
    gathered = gather(body, settings, client)
    assert gathered.gaps == ()
    assert any(r["resourceType"] == "Organization" and r["name"] == "Premera Blue Cross" for r in gathered.resources)


def test_unreadable_payor_without_a_server_is_a_coverage_gap(settings, client):
    body = order_select_request()
    body["prefetch"]["coverage"] = fhir_bundle([{**coverage(), "payor": [{"reference": "Organization/org-7"}]}])
    assert gather(body, settings, client).gaps == (
        "Coverage/cov1: Organization/org-7 was not prefetched and no FHIR server may be called",)


@responses.activate
def test_medication_of_a_statement_is_read_by_id(settings, client):
    statement = {"resourceType": "MedicationStatement", "id": "ms-1", "status": "completed",
                 "medicationReference": {"reference": "Medication/med-9"}, "subject": {"reference": "Patient/p1"},
                 "effectivePeriod": {"start": "2025-03-01", "end": "2026-03-01"}}
    body = with_server(order_select_request())
    body["prefetch"]["medicationstatements"] = fhir_bundle([statement])
    responses.add(responses.GET, f"{BASE}/Medication/med-9", json={
        "resourceType": "Medication", "id": "med-9",
        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.69", "code": "15054-1040-05"}]}})
    gathered = gather(body, settings, client)
    assert gathered.gaps == ()
    assert any(r["resourceType"] == "Medication" for r in gathered.resources)


@responses.activate
def test_draft_medication_reference_is_fetched_for_the_trigger(settings, client):
    order = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
             "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/m-incr"}}
    body = with_server(order_select_request(order=order))
    medication = {"resourceType": "Medication", "id": "m-incr", "code": {"text": "Increlex 40 mg/4 mL"}}
    responses.add(responses.GET, f"{BASE}/Medication/m-incr", json=medication)
    budget = Budget(2.0, 10**6, 100)
    assert referenced_medications(body, settings, client, budget) == {"Medication/m-incr": medication}
    # held in draftOrders: no request
    body["context"]["draftOrders"]["entry"].append({"resource": medication})
    responses.calls.reset()
    assert referenced_medications(body, settings, client, budget) == {"Medication/m-incr": medication}
    assert len(responses.calls) == 0


@responses.activate
def test_resource_limit_counts_the_prefetch_and_says_what_was_left_unread(tmp_path):
    body = with_server(order_select_request())
    del body["prefetch"]["observations"]
    already = sum(len(v.get("entry", [])) if isinstance(v, dict) and "entry" in v else 1
                  for v in body["prefetch"].values()) + 1          # + the draft order
    settings = make_settings(tmp_path, fhir_deadline=2.0, max_resources=already + 3)
    client = FhirClient(settings)
    pages = []
    for n in range(3):
        page = fhir_bundle([height_observation(f"h{n}{i}", f"2026-0{n + 1}-0{i + 1}", 100.0) for i in range(2)])
        page["total"] = 6
        page["link"] = [{"relation": "next", "url": f"{BASE}/Observation?page={n + 1}"}] if n < 2 else []
        pages.append(page)
    responses.add(responses.GET, re.compile(rf"{BASE}/Observation\?patient=.*"), json=pages[0])
    for n in (1, 2):
        responses.add(responses.GET, f"{BASE}/Observation?page={n}", json=pages[n])
    gathered = gather(body, settings, client)
    client.close()
    (gap,) = gathered.gaps
    assert gap == (f"observations: the search was not read to the end: the call's limit of {already + 3} resources "
                   f"was reached; pages after the first 1 were left unread (4 of 6 matches unread)")
    assert len([r for r in gathered.resources if r["resourceType"] == "Observation"]) == 2


@responses.activate
def test_byte_limit_is_for_the_whole_call(tmp_path):
    settings = make_settings(tmp_path, fhir_deadline=2.0, fhir_max_call_bytes=30_000)
    client = FhirClient(settings)
    body = with_server(order_select_request())
    del body["prefetch"]["conditions"], body["prefetch"]["allergies"]
    padded = {**fhir_bundle([]), "padding": "x" * 20_000}        # 20 kB each: the second passes 30 kB
    responses.add(responses.GET, re.compile(rf"{BASE}/(Condition|AllergyIntolerance)\?.*"), json=padded)
    gathered = gather(body, settings, client)
    client.close()
    assert len(gathered.gaps) == 1
    assert "the call's limit of 30000 bytes was reached; the rest of this response was left unread" in gathered.gaps[0]


@responses.activate
def test_page_cap_is_a_gap_not_a_silent_stop(settings, client):
    body = with_server(order_select_request())
    del body["prefetch"]["observations"]
    for n in range(settings.fhir_max_pages + 1):
        page = fhir_bundle([height_observation(f"h{n}", f"2026-01-{n + 1:02d}", 100.0)])
        page["link"] = [{"relation": "next", "url": f"{BASE}/Observation?page={n + 1}"}]
        url = re.compile(rf"{BASE}/Observation\?patient=.*") if n == 0 else f"{BASE}/Observation?page={n}"
        responses.add(responses.GET, url, json=page)
    (gap,) = gather(body, settings, client).gaps
    assert gap == (f"observations: the search was not read to the end: pages after the first "
                   f"{settings.fhir_max_pages} were left unread")


def test_templates_are_percent_encoded_and_name_every_code_form():
    for key, template in templates().items():
        query = template.split("?", 1)[1] if "?" in template else ""
        assert "//" not in template and "|" not in template, key
        for part in query.split("&"):
            name, _, value = part.partition("=")
            assert value in ("{{context.patientId}}", "{{userPractitionerId}}") or not re.search(
                r"[^A-Za-z0-9%,._:\-]", value), (key, part)
    codes = unquote(templates()["observations"]).split("code=")[1].split("&")[0].split(",")
    assert "http://loinc.org|2484-4" in codes and "urn:oid:2.16.840.1.113883.6.1|2484-4" in codes
    assert "urn:oid:2.16.840.1.113883.6.96|1153604005" in codes
    reports = unquote(templates()["reports"])
    assert "category=http://terminology.hl7.org/CodeSystem/v2-0074|RAD" in reports
    assert "http://loinc.org|37362-1" in unquote(templates()["boneagereports"])


class HeaderDripServer:
    """Sends its status line one byte at a time, every 0.1 s: no socket read ever times out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/fhir"
        self.cut_off = 0                         # connections the client closed on us
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\n" * 100:
                conn.send(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            with self.lock:
                self.cut_off += 1
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def test_a_server_dripping_headers_cannot_outlive_the_deadline_nor_hold_the_pool(tmp_path):
    settings = make_settings(tmp_path, fhir_deadline=0.6, fhir_retries=0)
    client = FhirClient(settings, max_workers=2)
    drip = HeaderDripServer()
    try:
        for _ in range(6):
            started = time.monotonic()
            results = client.fetch_all(drip.url, None, {"a": "Patient/p1", "b": "Condition?patient=p1"},
                                       Budget(0.6, 10**6, 100))
            assert time.monotonic() - started < 1.0
            assert {r.error for r in results.values()} == {"deadline exceeded"}
        time.sleep(0.3)
        with drip.lock:
            assert drip.cut_off == 12            # every abandoned request's socket was shut, none left reading
        with responses.RequestsMock() as mock:   # the two pool threads are free for a healthy server
            mock.add(responses.GET, f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
            started = time.monotonic()
            result = client.fetch_all(BASE, None, {"patient": "Patient/p1"}, Budget(0.6, 10**6, 100))["patient"]
            assert result.error is None and time.monotonic() - started < 0.3
    finally:
        drip.close()
        client.close()


@responses.activate
def test_a_draft_reference_with_a_display_costs_no_request(settings, client):
    order = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
             "subject": {"reference": "Patient/p1"},
             "medicationReference": {"reference": "Medication/amox", "display": "Amoxicillin 250 mg capsule"}}
    body = with_server(order_select_request(order=order))
    assert referenced_medications(body, settings, client, Budget(2.0, 10**6, 100)) == {}
    assert len(responses.calls) == 0
