"""Paths a server could resolve outside the allowed FHIR base never receive the bearer token:
encoded dot segments in a Bundle's next link, "..;" matrix segments, encoded slashes."""
from __future__ import annotations

import re

import pytest
import responses

from service.fhir.client import FhirClient
from service.fhir.gather import gather
from service.security.fhir_allowlist import check_allowlist, fhir_server_allowed
from service.settings import Settings
from tests.fixtures import fhir_bundle, height_observation, order_select_request, patient_resource

BASE = "http://127.0.0.1:9999/fhir"
TOKEN = "secret-token-for-the-ehr"


@pytest.mark.parametrize("url", [
    "https://ehr.example.org/fhir/..;/R4",            # Tomcat/Jetty: "..;" is ".."
    "https://ehr.example.org/fhir/tenant;x=1/R4",
    "https://ehr.example.org/fhir/.../R4",
    "https://ehr.example.org/fhir/%2e%2e/R4",
    "https://ehr.example.org/fhir/%2E%2E/R4",
])
def test_a_star_segment_never_matches_a_dot_or_parameter_segment(url):
    assert not fhir_server_allowed(url, ("https://ehr.example.org/fhir/*/R4",))
    assert fhir_server_allowed("https://ehr.example.org/fhir/tenant-42/R4", ("https://ehr.example.org/fhir/*/R4",))


@pytest.mark.parametrize("pattern", ["https://ehr.example.org/fhir/..;", "https://ehr.example.org/a;b/fhir",
                                     "https://ehr.example.org/.../fhir"])
def test_allowlist_entries_with_dot_or_parameter_segments_are_invalid(pattern):
    with pytest.raises(ValueError, match="allowlist entry"):
        check_allowlist([pattern])


@pytest.mark.parametrize("next_url", [
    f"{BASE}/%2e%2e/admin/export",
    f"{BASE}/%2E%2E/%2E%2E/internal",
    f"{BASE}/..;/admin",
    f"{BASE}/Observation/..;/..;/admin",
    f"{BASE}/%2e%2e%2fadmin",
    f"{BASE}/Observation%2f..%2f..%2fadmin",
    f"{BASE}/%252e%252e/admin",
    f"{BASE}/./Observation",
    f"{BASE}x/Observation?page=2",
])
@responses.activate
def test_a_next_link_that_escapes_the_base_is_not_followed(tmp_path, next_url):
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/t.db")
    page = fhir_bundle([height_observation("h1", "2026-01-01", 100.0)])
    page["link"] = [{"relation": "next", "url": next_url}]
    responses.add(responses.GET, re.compile(rf"{BASE}/Patient/p1"), json=patient_resource())
    responses.add(responses.GET, re.compile(rf"{BASE}/Observation\?patient=.*"), json=page)
    responses.add(responses.GET, re.compile(r"http://127\.0\.0\.1:9999/.*"),
                  json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    body = order_select_request(prefetch=None)
    body.update({"fhirServer": BASE, "fhirAuthorization": {
        "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
        "subject": "cds-service"}})
    client = FhirClient(settings)
    try:
        gather(body, settings, client)
    finally:
        client.close()
    followed = [c.request.url for c in responses.calls if c.request.url == next_url or "admin" in c.request.url
                or "internal" in c.request.url or "/fhirx/" in c.request.url or "/./" in c.request.url]
    assert followed == [], followed


@responses.activate
def test_a_next_link_below_the_base_is_followed(tmp_path):
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/t.db")
    page = fhir_bundle([height_observation("h1", "2026-01-01", 100.0)])
    page["link"] = [{"relation": "next", "url": f"{BASE}?_getpages=abc&_getpagesoffset=20"}]
    responses.add(responses.GET, re.compile(rf"{BASE}/Patient/p1"), json=patient_resource())
    responses.add(responses.GET, re.compile(rf"{BASE}/Observation\?patient=.*"), json=page)
    responses.add(responses.GET, re.compile(r"http://127\.0\.0\.1:9999/.*"),
                  json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    body = order_select_request(prefetch=None)
    body["fhirServer"] = BASE
    client = FhirClient(settings)
    try:
        gather(body, settings, client)
    finally:
        client.close()
    assert any("_getpages=abc" in c.request.url for c in responses.calls)
